//! Log output: tracing-subscriber to stderr, filtered by `--log-level`
//! (`RUST_LOG` overrides it for finer control, e.g. `RUST_LOG=ferrokv::raft=debug`).

/// Installs the global subscriber. `level` is one of debug, info, warn, error.
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},h2=warn,hyper=warn,tower=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
