//! CI runs of the simulator: the fixed seed list `simulation/seeds.txt`, a block of further
//! seeds, and a determinism check. About 20 s for a debug build on two cores with the stores
//! on tmpfs (`/dev/shm`); about 30 s more on a disk-backed temp dir.
//!
//! `SIMULATION_SEEDS_FROM=<n>` moves the block of further seeds to `n..n+50`, so a CI job can
//! feed fresh seeds (e.g. the build number) while a plain `cargo test` stays reproducible.

use simulation::{Options, run_seed};

/// Safety-phase ticks in tests: the CLI default, so a listed seed replays with the plain command.
const TEST_SAFETY_TICKS: u64 = 1000;
const FURTHER_SEEDS: u64 = 50;

fn options(seed: u64, safety_ticks: u64) -> Options {
    Options {
        safety_ticks,
        ..Options::new(seed)
    }
}

fn run(seed: u64, safety_ticks: u64) {
    if let Err(f) = run_seed(&options(seed, safety_ticks)) {
        panic!(
            "seed {seed} failed at tick {}: {}\nreplay: cargo run -p simulation --release -- \
             --seed {seed} --steps {safety_ticks} -v",
            f.tick, f.violation
        );
    }
}

/// `(seed, safety ticks)` from `seeds.txt`.
fn listed_seeds() -> Vec<(u64, u64)> {
    let text = include_str!("../seeds.txt");
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let seed = parts.next().unwrap().parse().expect("seed is a u64");
            let ticks = parts
                .next()
                .map_or(TEST_SAFETY_TICKS, |t| t.parse().expect("ticks is a u64"));
            (seed, ticks)
        })
        .collect()
}

#[test]
fn listed_seeds_pass() {
    let seeds = listed_seeds();
    assert!(!seeds.is_empty(), "seeds.txt lists seeds");
    for (seed, ticks) in seeds {
        run(seed, ticks);
    }
}

#[test]
fn further_seeds_pass() {
    let from = std::env::var("SIMULATION_SEEDS_FROM")
        .ok()
        .map_or(1_000_000, |v| {
            v.parse().expect("SIMULATION_SEEDS_FROM is a u64")
        });
    for seed in from..from + FURTHER_SEEDS {
        run(seed, TEST_SAFETY_TICKS);
    }
}

#[test]
fn a_seed_replays_to_the_identical_trace() {
    let first = run_seed(&options(7, TEST_SAFETY_TICKS)).expect("seed 7 passes");
    let second = run_seed(&options(7, TEST_SAFETY_TICKS)).expect("seed 7 passes");
    assert_eq!(first, second, "same seed, same run (stats and trace hash)");
    let other = run_seed(&options(8, TEST_SAFETY_TICKS)).expect("seed 8 passes");
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "the hash tells runs apart"
    );
}

/// Snapshots are exercised, not merely compiled: over the first seeds, nodes take snapshot
/// points and compact their logs, leaders send InstallSnapshot with an image, followers install
/// it, and some transfers fail (no image at the point, lost, cut or receiver down) and are
/// retried. Fails if a change makes snapshots silently stop happening.
#[test]
fn some_seeds_send_and_install_snapshots() {
    let mut total = simulation::SnapshotStats::default();
    for seed in 0..8 {
        let stats = run_seed(&options(seed, TEST_SAFETY_TICKS)).expect("an honest run passes");
        let s = stats.snapshots;
        total.points += s.points;
        total.compactions += s.compactions;
        total.sent += s.sent;
        total.installed += s.installed;
        total.failed += s.failed;
    }
    assert!(
        total.points > 0 && total.compactions > 0,
        "points and compactions happen: {total:?}"
    );
    assert!(
        total.sent > 0 && total.installed > 0 && total.failed > 0,
        "images are sent, installed, and some transfers fail: {total:?}"
    );
}

#[test]
fn snapshots_can_be_turned_off() {
    let stats = run_seed(&Options {
        snapshot_count: Some(0),
        ..options(3, TEST_SAFETY_TICKS)
    })
    .expect("seed 3 passes without snapshots");
    assert_eq!(stats.snapshots, simulation::SnapshotStats::default());
}
