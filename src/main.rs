//! The `ferrokv` server binary: etcd's flags in, a running member out.

fn main() {
    let config = ferrokv::config::ServerConfig::from_args();
    ferrokv::logging::init(config.log_level.tracing_level());
    if let Err(e) = ferrokv::server::run(config) {
        eprintln!("ferrokv: {e:#}");
        std::process::exit(1);
    }
}
