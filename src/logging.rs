//! Log output: tracing-subscriber to stderr, filtered by `--log-level`
//! (`RUST_LOG` overrides it for finer control, e.g. `RUST_LOG=ferrokv::raft=debug`).

/// Installs the global subscriber, letting through `level` and above.
pub fn init(level: tracing::Level) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{},h2=warn,hyper=warn,tower=warn,lsm_tree=warn,fjall=warn",
            level.as_str().to_lowercase()
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
