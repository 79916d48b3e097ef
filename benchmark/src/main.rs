//! `ferrokv-bench`: the same workloads against a local 3-member ferrokv cluster and a local
//! 3-member etcd 3.4 cluster (or an existing cluster), side by side with ferrokv/etcd ratios.
//! Workloads: `put` (throughput and latency at several client concurrencies), `watch` (fan-out
//! latency of one key to many watchers, and memory per idle watcher) and `lease` (keep-alive
//! throughput). See `benchmark/README.md`.

mod cluster;
mod lease;
mod load;
mod memory;
mod report;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use indicatif::{MultiProgress, ProgressBar};

use cluster::LocalCluster;
use lease::{LeaseConfig, LeaseOutcome};
use load::{Budget, LevelResult};
use report::{Table, ratio};
use watch::{Placement, WatchConfig, WatchResult};

/// Which servers to benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Servers {
    Both,
    Ferrokv,
    Etcd,
}

/// Which workload to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Puts at several client concurrencies (`--clients`).
    Put,
    /// Watch fan-out latency and memory per idle watcher.
    Watch,
    /// Lease keep-alive throughput.
    Lease,
    /// put, then watch, then lease, on the same clusters.
    All,
}

/// Side-by-side benchmarks: ferrokv vs etcd 3.4 on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Workload to run.
    #[arg(long, value_enum, default_value_t = Workload::Put)]
    workload: Workload,
    /// ferrokv server binary [default: `ferrokv` next to this binary].
    #[arg(long)]
    ferrokv_bin: Option<PathBuf>,
    /// etcd server binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,
    /// Which local clusters to start and measure.
    #[arg(long, value_enum, default_value_t = Servers::Both)]
    servers: Servers,
    /// Benchmark an existing cluster at these client URLs (comma-separated) instead of
    /// starting local ones.
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Members per local cluster.
    #[arg(long, default_value_t = 3)]
    members: usize,

    /// put: acknowledged puts per level and server (the default unless --duration-secs is
    /// given).
    #[arg(long, conflicts_with = "duration_secs", help_heading = "put workload")]
    ops: Option<u64>,
    /// put: run each level for this many seconds instead of a fixed op count.
    #[arg(long, help_heading = "put workload")]
    duration_secs: Option<u64>,
    /// put: client concurrency levels, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,128",
        help_heading = "put workload"
    )]
    clients: Vec<usize>,
    /// put: value size of each put, in bytes.
    #[arg(long, default_value_t = 256, help_heading = "put workload")]
    value_bytes: usize,
    /// put: at most this many gRPC connections per level; clients are spread over them.
    #[arg(long, default_value_t = 16, help_heading = "put workload")]
    max_connections: usize,
    /// put: unmeasured puts before each level.
    #[arg(long, default_value_t = 200, help_heading = "put workload")]
    warmup_ops: u64,

    /// watch: watchers of the one watched key.
    #[arg(long, default_value_t = 10_000, help_heading = "watch workload")]
    watchers: usize,
    /// watch: Watch streams the watchers are spread over.
    #[arg(long, default_value_t = 100, help_heading = "watch workload")]
    watch_streams: usize,
    /// watch: gRPC connections the streams are spread over.
    #[arg(long, default_value_t = 10, help_heading = "watch workload")]
    watch_connections: usize,
    /// watch: where the connections go.
    #[arg(long, value_enum, default_value_t = Placement::RoundRobin, help_heading = "watch workload")]
    watch_placement: Placement,
    /// watch: puts to the watched key.
    #[arg(long, default_value_t = 100, help_heading = "watch workload")]
    watch_puts: u64,
    /// watch: puts per second [default: paced, each put waits until every watcher has the
    /// previous one's event].
    #[arg(long, help_heading = "watch workload")]
    watch_put_rate: Option<f64>,
    /// watch: seconds to wait for a put's events before giving up.
    #[arg(long, default_value_t = 30, help_heading = "watch workload")]
    event_timeout_secs: u64,
    /// watch: at most this many seconds for the RSS to settle before each memory reading.
    #[arg(long, default_value_t = 10, help_heading = "watch workload")]
    settle_secs: u64,

    /// lease: leases granted and kept alive.
    #[arg(long, default_value_t = 1000, help_heading = "lease workload")]
    leases: usize,
    /// lease: keep-alive streams the leases are spread over.
    #[arg(long, default_value_t = 10, help_heading = "lease workload")]
    lease_streams: usize,
    /// lease: seconds of keep-alive load.
    #[arg(long, default_value_t = 10, help_heading = "lease workload")]
    lease_duration_secs: u64,
    /// lease: TTL of each lease, seconds.
    #[arg(long, default_value_t = 60, help_heading = "lease workload")]
    lease_ttl_secs: i64,
}

impl Args {
    fn runs(&self, w: Workload) -> bool {
        self.workload == w || self.workload == Workload::All
    }

    fn watch_config(&self) -> WatchConfig {
        WatchConfig {
            watchers: self.watchers,
            streams: self.watch_streams,
            connections: self.watch_connections,
            puts: self.watch_puts,
            put_rate: self.watch_put_rate,
            placement: self.watch_placement,
            event_timeout: Duration::from_secs(self.event_timeout_secs),
            settle_max: Duration::from_secs(self.settle_secs),
        }
    }

    fn lease_config(&self) -> LeaseConfig {
        LeaseConfig {
            leases: self.leases,
            streams: self.lease_streams,
            duration: Duration::from_secs(self.lease_duration_secs),
            ttl_secs: self.lease_ttl_secs,
        }
    }
}

const DEFAULT_OPS: u64 = 10_000;

/// One benchmark target: a label and its client URLs (a local cluster is kept alive by
/// `_cluster` and killed on drop).
struct Target {
    label: String,
    endpoints: Vec<String>,
    /// Member processes, in endpoint order; empty for an existing cluster.
    pids: Vec<u32>,
    _cluster: Option<LocalCluster>,
}

fn default_ferrokv_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("ferrokv")))
        .unwrap_or_else(|| PathBuf::from("ferrokv"))
}

async fn start_targets(args: &Args) -> Result<Vec<Target>> {
    if !args.endpoints.is_empty() {
        return Ok(vec![Target {
            label: "external".into(),
            endpoints: args.endpoints.clone(),
            pids: Vec::new(),
            _cluster: None,
        }]);
    }
    let mut targets = Vec::new();
    let mut want = Vec::new();
    if args.servers != Servers::Etcd {
        want.push((
            "ferrokv",
            args.ferrokv_bin.clone().unwrap_or_else(default_ferrokv_bin),
        ));
    }
    if args.servers != Servers::Ferrokv {
        want.push(("etcd", args.etcd_bin.clone()));
    }
    for (label, bin) in want {
        eprintln!("starting {} x {label} ({})", args.members, bin.display());
        let c = LocalCluster::start(label, &bin, args.members, Duration::from_secs(60)).await?;
        targets.push(Target {
            label: label.into(),
            endpoints: c.endpoints.clone(),
            pids: c.pids(),
            _cluster: Some(c),
        });
    }
    Ok(targets)
}

async fn run_put(
    args: &Args,
    targets: &[Target],
    bars: &MultiProgress,
) -> Result<Vec<(String, LevelResult)>> {
    let budget = match (args.ops, args.duration_secs) {
        (_, Some(s)) => Budget::Duration(Duration::from_secs(s)),
        (Some(n), None) => Budget::Ops(n),
        (None, None) => Budget::Ops(DEFAULT_OPS),
    };
    let mut results = Vec::new();
    // Levels outermost, servers interleaved, so both see the same machine conditions.
    for &clients in &args.clients {
        for t in targets {
            let conns = load::connect_all(&t.endpoints, clients.min(args.max_connections)).await?;
            if args.warmup_ops > 0 {
                let bar = bars.add(ProgressBar::hidden());
                load::run_level(
                    &conns,
                    clients,
                    args.value_bytes,
                    Budget::Ops(args.warmup_ops),
                    bar,
                )
                .await?;
            }
            let bar = bars.add(ProgressBar::new(0));
            bar.set_prefix(format!("{} x{clients}", t.label));
            let r = load::run_level(&conns, clients, args.value_bytes, budget, bar).await?;
            bars.println(format!(
                "{:<8} clients {:>4}: {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} puts, {} errors)",
                t.label,
                clients,
                r.ops_per_sec(),
                r.quantile_ms(0.50),
                r.quantile_ms(0.99),
                r.ops,
                r.errors
            ))?;
            results.push((t.label.clone(), r));
        }
    }
    Ok(results)
}

fn print_table(args: &Args, results: &[(String, LevelResult)]) {
    println!(
        "\n{:<9} {:>7} {:>10} {:>8} {:>11} {:>9} {:>9} {:>16}",
        "server", "clients", "puts", "errors", "ops/s", "p50 ms", "p99 ms", "ferrokv/etcd"
    );
    for &clients in &args.clients {
        let find = |label: &str| {
            results
                .iter()
                .find(|(l, r)| l == label && r.clients == clients)
                .map(|(_, r)| r)
        };
        let ratio = match (find("ferrokv"), find("etcd")) {
            (Some(f), Some(e)) if e.ops_per_sec() > 0.0 => Some(f.ops_per_sec() / e.ops_per_sec()),
            _ => None,
        };
        for (label, r) in results.iter().filter(|(_, r)| r.clients == clients) {
            let ratio_col = match (label.as_str(), ratio) {
                ("ferrokv", Some(x)) => format!("{x:.2}x ops/s"),
                _ => String::new(),
            };
            println!(
                "{:<9} {:>7} {:>10} {:>8} {:>11.0} {:>9.2} {:>9.2} {:>16}",
                label,
                clients,
                r.ops,
                r.errors,
                r.ops_per_sec(),
                r.quantile_ms(0.50),
                r.quantile_ms(0.99),
                ratio_col
            );
        }
    }
    println!(
        "\n{} B values, {}, {} connection(s) max per level",
        args.value_bytes,
        match (args.ops, args.duration_secs) {
            (_, Some(s)) => format!("{s} s per level"),
            (n, None) => format!("{} puts per level", n.unwrap_or(DEFAULT_OPS)),
        },
        args.max_connections
    );
}

/// Runs the selected workloads in order (put, watch, lease), printing each one's table as soon
/// as it is done, so an error in a later workload keeps the earlier results.
async fn run(args: &Args, targets: &[Target]) -> Result<()> {
    let bars = MultiProgress::new();
    if args.runs(Workload::Put) {
        let results = run_put(args, targets, &bars).await?;
        print_table(args, &results);
    }
    if args.runs(Workload::Watch) {
        let cfg = args.watch_config();
        let mut results = Vec::new();
        for t in targets {
            let r = watch::run(&t.label, &t.endpoints, &t.pids, &cfg, &bars).await;
            if let Ok(r) = &r {
                bars.println(format!(
                    "{:<8} watch: {:.0} events/s  p50 {:.2} ms  p99 {:.2} ms  ({} of {} events)",
                    t.label,
                    r.events_per_sec(),
                    quantile_ms(&r.latency_us, 0.50),
                    quantile_ms(&r.latency_us, 0.99),
                    r.events,
                    r.expected
                ))?;
            }
            results.push((t.label.clone(), r));
        }
        print_watch_tables(&cfg, &results);
    }
    if args.runs(Workload::Lease) {
        let cfg = args.lease_config();
        let mut results = Vec::new();
        for t in targets {
            results.push((
                t.label.clone(),
                lease::run(&t.label, &t.endpoints, &cfg, &bars).await,
            ));
        }
        print_lease_table(&cfg, &results);
    }
    Ok(())
}

/// Quantile `q` of a µs histogram, in ms.
fn quantile_ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// The result of `label` in `results`, when it succeeded.
fn find_ok<'a, T>(results: &'a [(String, Result<T>)], label: &str) -> Option<&'a T> {
    results
        .iter()
        .find(|(l, _)| l == label)
        .and_then(|(_, r)| r.as_ref().ok())
}

fn print_watch_tables(cfg: &WatchConfig, results: &[(String, Result<WatchResult>)]) {
    let (f, e) = (find_ok(results, "ferrokv"), find_ok(results, "etcd"));
    let mut fan_out = Table::new(
        format!(
            "watch fan-out: {} watchers of 1 key on {} streams over {} connections ({}), {} puts {} \
             (ratios ferrokv/etcd)",
            cfg.watchers,
            cfg.streams,
            cfg.connections,
            match results.iter().find_map(|(_, r)| r.as_ref().ok()) {
                Some(r) => r.placement.clone(),
                None => format!("{:?}", cfg.placement),
            },
            cfg.puts,
            match cfg.put_rate {
                None => "paced (next put once every watcher has the last)".to_string(),
                Some(r) => format!("at {r} puts/s"),
            }
        ),
        &[
            "server", "puts", "events", "missing", "errors", "events/s", "p50 ms", "p99 ms",
            "max ms", "events/s", "p99",
        ],
    );
    for (label, r) in results {
        match r {
            Err(err) => fan_out.note_row(label, format!("error: {err:#}")),
            Ok(r) => {
                let is_f = label == "ferrokv";
                fan_out.row(vec![
                    label.clone(),
                    r.puts.to_string(),
                    r.events.to_string(),
                    r.expected.saturating_sub(r.events).to_string(),
                    r.errors.to_string(),
                    format!("{:.0}", r.events_per_sec()),
                    format!("{:.2}", quantile_ms(&r.latency_us, 0.50)),
                    format!("{:.2}", quantile_ms(&r.latency_us, 0.99)),
                    format!("{:.2}", r.latency_us.max() as f64 / 1000.0),
                    if is_f {
                        ratio(
                            f.map(WatchResult::events_per_sec),
                            e.map(WatchResult::events_per_sec),
                        )
                    } else {
                        String::new()
                    },
                    if is_f {
                        let p99 = |r: &WatchResult| quantile_ms(&r.latency_us, 0.99);
                        ratio(f.map(p99), e.map(p99))
                    } else {
                        String::new()
                    },
                ]);
            }
        }
    }
    print!("{}", fan_out.render());

    let mut memory = Table::new(
        format!(
            "memory per idle watcher: settled VmRSS of the members holding watchers, before and \
             after creating {} watchers (ratio ferrokv/etcd)",
            cfg.watchers
        ),
        &[
            "server",
            "members",
            "before MiB",
            "after MiB",
            "delta MiB",
            "bytes/watcher",
            "ferrokv/etcd",
        ],
    );
    let per_watcher = |r: &WatchResult| {
        r.memory
            .as_ref()
            .map(|m| m.delta_bytes() as f64 / cfg.watchers as f64)
    };
    let mib = |b: u64| format!("{:.1}", b as f64 / (1024.0 * 1024.0));
    for (label, r) in results {
        match r.as_ref().map(|r| (r, r.memory.as_ref())) {
            Err(err) => memory.note_row(label, format!("error: {err:#}")),
            Ok((_, None)) => memory.note_row(label, "n/a (server processes not started here)"),
            Ok((r, Some(m))) => memory.row(vec![
                label.clone(),
                m.members.len().to_string(),
                mib(m.before.iter().sum()),
                mib(m.after.iter().sum()),
                format!("{:.1}", m.delta_bytes() as f64 / (1024.0 * 1024.0)),
                format!("{:.0}", per_watcher(r).unwrap_or(0.0)),
                if label == "ferrokv" {
                    ratio(f.and_then(per_watcher), e.and_then(per_watcher))
                } else {
                    String::new()
                },
            ]),
        }
    }
    print!("{}", memory.render());
}

fn print_lease_table(cfg: &LeaseConfig, results: &[(String, Result<LeaseOutcome>)]) {
    let measured = |label: &str| match find_ok(results, label) {
        Some(LeaseOutcome::Measured(r)) => Some(r),
        _ => None,
    };
    let (f, e) = (measured("ferrokv"), measured("etcd"));
    let mut table = Table::new(
        format!(
            "lease keep-alive: {} leases on {} streams, one request per lease in flight, {} s \
             (ratios ferrokv/etcd)",
            cfg.leases,
            cfg.streams,
            cfg.duration.as_secs()
        ),
        &[
            "server",
            "responses",
            "errors",
            "resp/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "resp/s",
            "p99",
        ],
    );
    for (label, r) in results {
        match r {
            Err(err) => table.note_row(label, format!("error: {err:#}")),
            Ok(LeaseOutcome::Unsupported(why)) => {
                table.note_row(label, format!("unsupported ({why})"))
            }
            Ok(LeaseOutcome::Measured(r)) => {
                let is_f = label == "ferrokv";
                let p99 = |r: &lease::LeaseResult| quantile_ms(&r.latency_us, 0.99);
                table.row(vec![
                    label.clone(),
                    r.responses.to_string(),
                    r.errors.to_string(),
                    format!("{:.0}", r.responses_per_sec()),
                    format!("{:.2}", quantile_ms(&r.latency_us, 0.50)),
                    format!("{:.2}", p99(r)),
                    format!("{:.2}", r.latency_us.max() as f64 / 1000.0),
                    if is_f {
                        ratio(
                            f.map(lease::LeaseResult::responses_per_sec),
                            e.map(lease::LeaseResult::responses_per_sec),
                        )
                    } else {
                        String::new()
                    },
                    if is_f {
                        ratio(f.map(p99), e.map(p99))
                    } else {
                        String::new()
                    },
                ]);
            }
        }
    }
    print!("{}", table.render());
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode> {
    let args = Args::parse();
    if args.clients.is_empty() || args.clients.contains(&0) {
        bail!("--clients needs positive numbers");
    }
    // Clusters live in `targets`; every exit path below drops them, which SIGKILLs the servers.
    let targets = tokio::select! {
        t = start_targets(&args) => t?,
        _ = interrupted() => {
            eprintln!("interrupted while starting clusters; servers stopped");
            return Ok(std::process::ExitCode::from(130));
        }
    };
    let outcome = tokio::select! {
        r = run(&args, &targets) => Some(r),
        _ = interrupted() => None,
    };
    drop(targets);
    match outcome {
        Some(result) => {
            result?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        None => {
            eprintln!("interrupted; servers stopped");
            Ok(std::process::ExitCode::from(130))
        }
    }
}
