//! The `ferrokv` server binary: etcd's flags in, a running member out.

fn main() {
    // `ferrokv snapshot save|status|restore`: etcdctl's snapshot commands (docs/snapshots.md §5).
    if std::env::args_os().nth(1).is_some_and(|a| a == "snapshot") {
        std::process::exit(ferrokv::snapshot::cli::main(std::env::args_os().collect()));
    }
    let config = ferrokv::config::ServerConfig::from_args();
    if let Err(e) = ferrokv::logging::init(config.log_level, config.logger, &config.log_outputs) {
        eprintln!("ferrokv: opening the log outputs: {e}");
        std::process::exit(1);
    }
    // Ignored and deprecated flags, one line each, before anything else is logged.
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Err(e) = ferrokv::server::run(config) {
        eprintln!("ferrokv: {e:#}");
        std::process::exit(1);
    }
}
