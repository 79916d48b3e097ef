//! `simulation`: runs the deterministic cluster simulator over a range of seeds.
//!
//! ```text
//! cargo run -p simulation --release -- --seeds 1000      # seeds 0..1000
//! cargo run -p simulation --release -- --seed 42 -v      # replay one seed with its trace
//! ```
//! On failure it prints the seed, the violated invariant and the replay command, and exits 1.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use simulation::{Options, RunStats, run_seed};

/// Deterministic whole-cluster simulation of ferrokv (Raft core + MVCC store).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Run seeds 0..N.
    #[arg(long, conflicts_with = "seed", default_value_t = 100)]
    seeds: u64,
    /// Run (replay) only this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// First seed of the range (with --seeds): runs FIRST..FIRST+N.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Ticks of the safety phase (faults on).
    #[arg(long, default_value_t = Options::new(0).safety_ticks)]
    steps: u64,
    /// Bound on the liveness phase, ticks.
    #[arg(long, default_value_t = Options::new(0).liveness_ticks_max)]
    liveness_ticks: u64,
    /// Cluster size (3 or 5); default: drawn from each seed.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["3", "5"]))]
    nodes: Option<String>,
    /// Applied entries between two snapshot points of a node (the server's
    /// `--snapshot-count`); 0 = no snapshots. Default: 10, 20, 30 or 50, drawn from each seed.
    #[arg(long)]
    snapshot_count: Option<u64>,
    /// Entries kept behind each snapshot point for slow followers (the server's
    /// `--experimental-snapshot-catchup-entries`). Default: 0..=10, drawn from each seed.
    #[arg(long)]
    snapshot_catchup: Option<u64>,
    /// Deliberately break how a node's effects are carried out, to check that the invariants
    /// catch it: `send-before-persist`, `lying-fsync`, `watch-skip`, `lease-no-fresh-ttl`,
    /// `compact-before-store-sync`, `no-point-refresh` or `image-leases-by-id`.
    #[arg(long, value_parser = parse_sabotage)]
    sabotage: Option<simulation::Sabotage>,
    /// Run every seed even after a failure; list the failures at the end.
    #[arg(long)]
    keep_going: bool,
    /// Print the trace of every event.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let seeds: Vec<u64> = match cli.seed {
        Some(s) => vec![s],
        None => (cli.first_seed..cli.first_seed + cli.seeds).collect(),
    };
    let nodes = cli.nodes.as_deref().map(|n| n.parse().expect("3 or 5"));
    let started = Instant::now();
    let mut total = RunStats::default();
    let mut failed = Vec::new();
    for &seed in &seeds {
        println!("seed {seed}");
        let options = Options {
            seed,
            nodes,
            safety_ticks: cli.steps,
            liveness_ticks_max: cli.liveness_ticks,
            verbose: cli.verbose,
            sabotage: cli.sabotage,
            snapshot_count: cli.snapshot_count,
            snapshot_catchup_entries: cli.snapshot_catchup,
        };
        match run_seed(&options) {
            Ok(stats) => {
                if seeds.len() == 1 || cli.verbose {
                    println!("{stats:?}");
                }
                add(&mut total, &stats);
            }
            Err(failure) => {
                println!(
                    "FAILED seed {} at tick {}: {}",
                    failure.seed, failure.tick, failure.violation
                );
                let mut replay = format!(
                    "cargo run -p simulation --release -- --seed {} --steps {} --liveness-ticks {}",
                    failure.seed, cli.steps, cli.liveness_ticks
                );
                if let Some(n) = &cli.nodes {
                    replay.push_str(&format!(" --nodes {n}"));
                }
                if let Some(n) = cli.snapshot_count {
                    replay.push_str(&format!(" --snapshot-count {n}"));
                }
                if let Some(n) = cli.snapshot_catchup {
                    replay.push_str(&format!(" --snapshot-catchup {n}"));
                }
                if let Some(s) = &cli.sabotage {
                    replay.push_str(&format!(" --sabotage {}", sabotage_name(*s)));
                }
                println!("replay: {replay} -v");
                if !cli.keep_going {
                    return ExitCode::FAILURE;
                }
                failed.push(failure);
            }
        }
    }
    if !failed.is_empty() {
        println!("FAILED {} of {} seeds:", failed.len(), seeds.len());
        for f in &failed {
            println!(
                "  seed {} tick {}: {}",
                f.seed, f.tick, f.violation.invariant
            );
        }
        return ExitCode::FAILURE;
    }
    println!(
        "PASSED {} seeds in {:.1}s: {} ticks, {} events, {} commits, {} elections, {} crashes \
         ({} unsynced log writes and {} store batches lost), {} partitions, {} message faults, {} faults injected; \
         {} proposals, {} acknowledged, {} linearizable reads, {} leadership transfers; \
         {} watches ({} resumed after a crash) received {} events in {} responses, \
         {} history reads, {} parked, {} canceled as compacted ({} compactions proposed); \
         leases: {} granted, {} renewed ({} by a deposed leader), {} expired, {} revoked ({} keys deleted), \
         least expiry margin {} ms ({} ms after a keep-alive on another node); \
         snapshots: {} points, {} compactions durable ({} lost in crashes), {} sent, {} installed, \
         {} left alone (store ahead), {} failed, {} installs finished at restart",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        total.ticks,
        total.events,
        total.commits,
        total.elections,
        total.crashes,
        total.writes_lost,
        total.store_batches_lost,
        total.partitions,
        total.message_faults,
        total.faults(),
        total.proposals,
        total.acks,
        total.reads,
        total.transfers,
        total.watch.created,
        total.watch.resumed,
        total.watch.events,
        total.watch.responses,
        total.watch.fetches,
        total.watch.parked,
        total.watch.compacted,
        total.watch.compactions,
        total.lease.granted,
        total.lease.renewed,
        total.lease.renewed_deposed,
        total.lease.expired,
        total.lease.revoked,
        total.lease.keys_deleted,
        show(total.lease_margin_min_ms),
        show(total.lease_margin_min_other_ms),
        total.snapshots.points,
        total.snapshots.compactions,
        total.snapshots.compactions_lost,
        total.snapshots.sent,
        total.snapshots.installed,
        total.snapshots.unneeded,
        total.snapshots.failed,
        total.snapshots.finished_at_restart,
    );
    ExitCode::SUCCESS
}

fn add(total: &mut RunStats, s: &RunStats) {
    total.ticks += s.ticks;
    total.events += s.events;
    total.commits += s.commits;
    total.elections += s.elections;
    total.crashes += s.crashes;
    total.partitions += s.partitions;
    total.message_faults += s.message_faults;
    total.writes_lost += s.writes_lost;
    total.store_batches_lost += s.store_batches_lost;
    total.proposals += s.proposals;
    total.acks += s.acks;
    total.reads += s.reads;
    total.transfers += s.transfers;
    let (w, sw) = (&mut total.watch, &s.watch);
    w.created += sw.created;
    w.resumed += sw.resumed;
    w.responses += sw.responses;
    w.events += sw.events;
    w.fetches += sw.fetches;
    w.parked += sw.parked;
    w.compacted += sw.compacted;
    w.compactions += sw.compactions;
    let (l, sl) = (&mut total.lease, &s.lease);
    l.granted += sl.granted;
    l.renewed += sl.renewed;
    l.renewed_deposed += sl.renewed_deposed;
    l.expired += sl.expired;
    l.revoked += sl.revoked;
    l.keys_deleted += sl.keys_deleted;
    let (t, st) = (&mut total.snapshots, &s.snapshots);
    t.points += st.points;
    t.compactions += st.compactions;
    t.compactions_lost += st.compactions_lost;
    t.sent += st.sent;
    t.installed += st.installed;
    t.unneeded += st.unneeded;
    t.failed += st.failed;
    t.finished_at_restart += st.finished_at_restart;
    total.lease_margin_min_ms = min_of(total.lease_margin_min_ms, s.lease_margin_min_ms);
    total.lease_margin_min_other_ms =
        min_of(total.lease_margin_min_other_ms, s.lease_margin_min_other_ms);
}

fn min_of(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn show(v: Option<i64>) -> String {
    v.map_or("-".to_string(), |m| m.to_string())
}

fn parse_sabotage(s: &str) -> Result<simulation::Sabotage, String> {
    match s {
        "send-before-persist" => Ok(simulation::Sabotage::SendBeforePersist),
        "lying-fsync" => Ok(simulation::Sabotage::LyingFsync),
        "watch-skip" => Ok(simulation::Sabotage::WatchSkip),
        "lease-no-fresh-ttl" => Ok(simulation::Sabotage::LeaseNoFreshTtl),
        "compact-before-store-sync" => Ok(simulation::Sabotage::CompactBeforeStoreSync),
        "no-point-refresh" => Ok(simulation::Sabotage::NoPointRefresh),
        "image-leases-by-id" => Ok(simulation::Sabotage::ImageLeasesById),
        _ => Err(
            "expected send-before-persist, lying-fsync, watch-skip, lease-no-fresh-ttl or \
             compact-before-store-sync"
                .into(),
        ),
    }
}

fn sabotage_name(s: simulation::Sabotage) -> &'static str {
    match s {
        simulation::Sabotage::SendBeforePersist => "send-before-persist",
        simulation::Sabotage::LyingFsync => "lying-fsync",
        simulation::Sabotage::WatchSkip => "watch-skip",
        simulation::Sabotage::LeaseNoFreshTtl => "lease-no-fresh-ttl",
        simulation::Sabotage::CompactBeforeStoreSync => "compact-before-store-sync",
        simulation::Sabotage::NoPointRefresh => "no-point-refresh",
        simulation::Sabotage::ImageLeasesById => "image-leases-by-id",
    }
}
