//! `ferrokv-bench`: the same put load against a local 3-member ferrokv cluster and a local
//! 3-member etcd 3.4 cluster (or an existing cluster), at several client concurrencies, and a
//! table of throughput, p50/p99 latency and the ferrokv/etcd ratio. See `benchmark/README.md`.

mod cluster;
mod load;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use indicatif::{MultiProgress, ProgressBar};

use cluster::LocalCluster;
use load::{Budget, LevelResult};

/// Which servers to benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Servers {
    Both,
    Ferrokv,
    Etcd,
}

/// Side-by-side put benchmark: ferrokv vs etcd 3.4 on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// ferrokv server binary [default: `ferrokv` next to this binary].
    #[arg(long)]
    ferrokv_bin: Option<PathBuf>,
    /// etcd server binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,
    /// Acknowledged puts per level and server (the default unless --duration-secs is given).
    #[arg(long, conflicts_with = "duration_secs")]
    ops: Option<u64>,
    /// Run each level for this many seconds instead of a fixed op count.
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Client concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,128")]
    clients: Vec<usize>,
    /// Value size of each put, in bytes.
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
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
    /// At most this many gRPC connections per level; clients are spread over them.
    #[arg(long, default_value_t = 16)]
    max_connections: usize,
    /// Unmeasured puts before each level.
    #[arg(long, default_value_t = 200)]
    warmup_ops: u64,
}

const DEFAULT_OPS: u64 = 10_000;

/// One benchmark target: a label and its client URLs (a local cluster is kept alive by
/// `_cluster` and killed on drop).
struct Target {
    label: String,
    endpoints: Vec<String>,
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
            _cluster: Some(c),
        });
    }
    Ok(targets)
}

async fn run(args: &Args, targets: &[Target]) -> Result<Vec<(String, LevelResult)>> {
    let budget = match (args.ops, args.duration_secs) {
        (_, Some(s)) => Budget::Duration(Duration::from_secs(s)),
        (Some(n), None) => Budget::Ops(n),
        (None, None) => Budget::Ops(DEFAULT_OPS),
    };
    let bars = MultiProgress::new();
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
        Some(results) => {
            print_table(&args, &results?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        None => {
            eprintln!("interrupted; servers stopped");
            Ok(std::process::ExitCode::from(130))
        }
    }
}
