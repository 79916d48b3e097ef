//! `ferrokv-bench`: the same workloads against a local 3-member ferrokv cluster and a local
//! 3-member etcd 3.4 cluster (or an existing cluster), side by side with ferrokv/etcd ratios.
//! Workloads: `put` (throughput and latency at several client concurrencies), `range`
//! (linearizable and serializable single-key reads), `txn-put` (transactions of several puts),
//! `watch` (fan-out latency of one key to many watchers, and memory per idle watcher) and
//! `lease` (keep-alive throughput). Every row also reports the servers' CPU time per operation,
//! and `--check` turns a read stall or a large throughput gap into exit status 1. See
//! `benchmark/README.md`.

mod check;
mod cluster;
mod cpu;
mod kv;
mod lease;
mod load;
mod memory;
mod report;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use indicatif::MultiProgress;

use check::{Figures, Observed};
use cluster::LocalCluster;
use kv::{KvWorkload, Level, Spread};
use lease::{LeaseConfig, LeaseOutcome};
use load::{Budget, Op};
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
    /// Single-key reads, linearizable and serializable (`--range-clients`).
    Range,
    /// Transactions of `--txn-puts` puts, no compares (`--txn-clients`).
    TxnPut,
    /// Watch fan-out latency and memory per idle watcher.
    Watch,
    /// Lease keep-alive throughput.
    Lease,
    /// put, range, txn-put, watch, then lease, on the same clusters.
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
    /// After the run, exit with status 1 if a ferrokv read or watch p50 is 30 ms or more, if a
    /// ferrokv row's throughput is below half of etcd's, or if a ferrokv row failed.
    #[arg(long)]
    check: bool,

    /// put, range, txn-put: acknowledged operations per row and server (10,000 unless
    /// --duration-secs is given).
    #[arg(
        long,
        conflicts_with = "duration_secs",
        help_heading = "put, range and txn-put workloads"
    )]
    ops: Option<u64>,
    /// put, range, txn-put: run each row for this many seconds instead of a fixed op count.
    #[arg(long, help_heading = "put, range and txn-put workloads")]
    duration_secs: Option<u64>,
    /// put: client concurrency levels, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,128",
        help_heading = "put workload"
    )]
    clients: Vec<usize>,
    /// put, range, txn-put: value size of each put (and of each key range reads), in bytes.
    #[arg(
        long,
        default_value_t = 256,
        help_heading = "put, range and txn-put workloads"
    )]
    value_bytes: usize,
    /// put, txn-put: at most this many gRPC connections per level; clients are spread over
    /// them.
    #[arg(
        long,
        default_value_t = 16,
        help_heading = "put, range and txn-put workloads"
    )]
    max_connections: usize,
    /// put, range, txn-put: unmeasured operations before each row.
    #[arg(
        long,
        default_value_t = 200,
        help_heading = "put, range and txn-put workloads"
    )]
    warmup_ops: u64,

    /// range: client concurrency levels, comma-separated (each runs linearizable, then
    /// serializable).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "64",
        help_heading = "range workload"
    )]
    range_clients: Vec<usize>,
    /// range: at most this many gRPC connections per row; connection c goes to member c mod
    /// members.
    #[arg(long, default_value_t = 8, help_heading = "range workload")]
    range_connections: usize,
    /// range: keys put before the reads (each read picks one at random).
    #[arg(long, default_value_t = 1000, help_heading = "range workload")]
    range_keys: usize,

    /// txn-put: client concurrency levels, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "16",
        help_heading = "txn-put workload"
    )]
    txn_clients: Vec<usize>,
    /// txn-put: puts in each transaction.
    #[arg(long, default_value_t = 4, help_heading = "txn-put workload")]
    txn_puts: usize,

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

    fn budget(&self) -> Budget {
        match (self.ops, self.duration_secs) {
            (_, Some(s)) => Budget::Duration(Duration::from_secs(s)),
            (Some(n), None) => Budget::Ops(n),
            (None, None) => Budget::Ops(DEFAULT_OPS),
        }
    }

    /// `2000 ops per row` or `10 s per row`.
    fn budget_words(&self) -> String {
        match self.budget() {
            Budget::Ops(n) => format!("{n} ops per row"),
            Budget::Duration(d) => format!("{} s per row", d.as_secs()),
        }
    }

    /// Rows of `op` at every concurrency of `clients`, over at most `connections_max`
    /// connections each.
    fn levels(
        clients: &[usize],
        name: &'static str,
        op: &Op,
        connections_max: usize,
        spread: Spread,
    ) -> Vec<Level> {
        clients
            .iter()
            .map(|&clients| Level {
                name,
                op: op.clone(),
                clients,
                connections: clients.min(connections_max),
                spread,
            })
            .collect()
    }

    fn kv_workload(&self, name: &'static str, what: String, levels: Vec<Level>) -> KvWorkload {
        KvWorkload {
            name,
            title: format!("{name}: {what}, {}", self.budget_words()),
            name_header: None,
            levels,
            budget: self.budget(),
            warmup_ops: self.warmup_ops,
        }
    }

    fn put_workload(&self) -> KvWorkload {
        let op = Op::Put {
            value_bytes: self.value_bytes,
        };
        let what = format!(
            "KV.Put of a random key, {} B values, up to {} connections per row balanced over \
             all members",
            self.value_bytes, self.max_connections
        );
        let levels = Self::levels(
            &self.clients,
            "",
            &op,
            self.max_connections,
            Spread::Balanced,
        );
        self.kv_workload("put", what, levels)
    }

    /// The `range` rows: linearizable then serializable at each `--range-clients` level.
    fn range_workload(&self, keys: &std::sync::Arc<Vec<String>>) -> KvWorkload {
        let mut levels = Vec::new();
        for &clients in &self.range_clients {
            for (name, serializable) in [("linearizable", false), ("serializable", true)] {
                let op = Op::Get {
                    keys: keys.clone(),
                    serializable,
                };
                let conns = self.range_connections;
                levels.extend(Self::levels(&[clients], name, &op, conns, Spread::Pinned));
            }
        }
        let what = format!(
            "KV.Range of 1 random key of {} ({} B values), up to {} connections per row, \
             connection c on member c mod members",
            keys.len(),
            self.value_bytes,
            self.range_connections,
        );
        KvWorkload {
            name_header: Some("read"),
            ..self.kv_workload("range", what, levels)
        }
    }

    fn txn_workload(&self) -> KvWorkload {
        let op = Op::TxnPut {
            puts: self.txn_puts,
            value_bytes: self.value_bytes,
        };
        let what = format!(
            "KV.Txn of {} puts of random keys, no compares, {} B values, up to {} connections \
             per row balanced over all members",
            self.txn_puts, self.value_bytes, self.max_connections
        );
        let levels = Self::levels(
            &self.txn_clients,
            "",
            &op,
            self.max_connections,
            Spread::Balanced,
        );
        self.kv_workload("txn-put", what, levels)
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

/// Runs one KV workload against every target and prints its table; returns its rows for
/// `--check`.
async fn run_kv(w: &KvWorkload, targets: &[&Target], bars: &MultiProgress) -> Vec<Observed> {
    let rows = kv::run(w, targets, bars).await;
    print!("{}", kv::table(w, &rows));
    kv::observed(w, &rows)
}

/// The `range` workload: puts the keys on every target, then reads them. A target whose keys
/// could not be put gets an error row for every read row.
async fn run_range(args: &Args, targets: &[Target], bars: &MultiProgress) -> Vec<Observed> {
    let keys = kv::range_keys(args.range_keys.max(1));
    let w = args.range_workload(&keys);
    let mut ready = Vec::new();
    let mut failed = Vec::new();
    for t in targets {
        bars.println(format!("{:<8} range: putting {} keys", t.label, keys.len()))
            .ok();
        match kv::populate(t, &keys, args.value_bytes).await {
            Ok(()) => ready.push(t),
            Err(e) => failed.push((t.label.clone(), format!("{e:#}"))),
        }
    }
    let mut rows = kv::run(&w, &ready, bars).await;
    for (label, why) in failed {
        for level in 0..w.levels.len() {
            rows.push(kv::RowResult {
                server: label.clone(),
                level,
                result: Err(anyhow::anyhow!("populate keys: {why}")),
            });
        }
    }
    print!("{}", kv::table(&w, &rows));
    kv::observed(&w, &rows)
}

/// Runs the selected workloads in order (put, range, txn-put, watch, lease), printing each
/// one's table as soon as it is done, so an error in a later workload keeps the earlier
/// results. Returns every row as `--check` sees it.
async fn run(args: &Args, targets: &[Target]) -> Result<Vec<Observed>> {
    let bars = MultiProgress::new();
    let all: Vec<&Target> = targets.iter().collect();
    let mut observed = Vec::new();
    if args.runs(Workload::Put) {
        observed.extend(run_kv(&args.put_workload(), &all, &bars).await);
    }
    if args.runs(Workload::Range) {
        observed.extend(run_range(args, targets, &bars).await);
    }
    if args.runs(Workload::TxnPut) {
        observed.extend(run_kv(&args.txn_workload(), &all, &bars).await);
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
        observed.push(observe(
            "watch fan-out",
            "events/s",
            true,
            &results,
            |r: &WatchResult| {
                Ok(Figures {
                    rate: r.events_per_sec(),
                    p50_ms: quantile_ms(&r.latency_us, 0.50),
                })
            },
        ));
    }
    if args.runs(Workload::Lease) {
        let cfg = args.lease_config();
        let mut results = Vec::new();
        for t in targets {
            results.push((
                t.label.clone(),
                lease::run(&t.label, &t.endpoints, &t.pids, &cfg, &bars).await,
            ));
        }
        print_lease_table(&cfg, &results);
        observed.push(observe(
            "lease keep-alive",
            "resp/s",
            false,
            &results,
            |r: &LeaseOutcome| match r {
                LeaseOutcome::Measured(r) => Ok(Figures {
                    rate: r.responses_per_sec(),
                    p50_ms: quantile_ms(&r.latency_us, 0.50),
                }),
                LeaseOutcome::Unsupported(why) => Err(format!("unsupported ({why})")),
            },
        ));
    }
    Ok(observed)
}

/// One watch or lease row as `--check` sees it; `figures` is `Err` for a result without numbers.
fn observe<T>(
    row: &str,
    unit: &'static str,
    p50_bounded: bool,
    results: &[(String, Result<T>)],
    figures: impl Fn(&T) -> Result<Figures, String>,
) -> Observed {
    let of = |label: &str| {
        results
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, r)| match r {
                Ok(r) => figures(r),
                Err(e) => Err(format!("{e:#}")),
            })
    };
    Observed {
        row: row.into(),
        unit,
        p50_bounded,
        ferrokv: of("ferrokv"),
        etcd: of("etcd").and_then(Result::ok),
    }
}

/// Server CPU µs per op with one decimal, or `n/a` (not local processes, or no ops).
fn fmt_cpu(us: Option<f64>) -> String {
    us.map_or_else(|| "n/a".into(), |us| format!("{us:.1}"))
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
            "server",
            "puts",
            "events",
            "missing",
            "errors",
            "events/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "cpu µs/event",
            "events/s",
            "p99",
            "cpu/event",
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
                    fmt_cpu(r.cpu_us_per_event()),
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
                    if is_f {
                        ratio(
                            f.and_then(WatchResult::cpu_us_per_event),
                            e.and_then(WatchResult::cpu_us_per_event),
                        )
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
            "cpu µs/resp",
            "resp/s",
            "p99",
            "cpu/resp",
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
                    fmt_cpu(r.cpu_us_per_response()),
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
                    if is_f {
                        ratio(
                            f.and_then(lease::LeaseResult::cpu_us_per_response),
                            e.and_then(lease::LeaseResult::cpu_us_per_response),
                        )
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
    for (flag, list) in [
        ("--clients", &args.clients),
        ("--range-clients", &args.range_clients),
        ("--txn-clients", &args.txn_clients),
    ] {
        if list.is_empty() || list.contains(&0) {
            bail!("{flag} needs positive numbers");
        }
    }
    if args.range_connections == 0 || args.max_connections == 0 || args.txn_puts == 0 {
        bail!("--range-connections, --max-connections and --txn-puts must be positive");
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
            let observed = result?;
            if !args.check {
                return Ok(std::process::ExitCode::SUCCESS);
            }
            let failures = check::failures(&observed);
            if failures.is_empty() {
                eprintln!("\ncheck passed: {} rows", observed.len());
                return Ok(std::process::ExitCode::SUCCESS);
            }
            eprintln!("\ncheck FAILED ({} rows checked):", observed.len());
            for f in &failures {
                eprintln!("  {f}");
            }
            Ok(std::process::ExitCode::from(1))
        }
        None => {
            eprintln!("interrupted; servers stopped");
            Ok(std::process::ExitCode::from(130))
        }
    }
}
