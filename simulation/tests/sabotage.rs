//! Checking the checker: with a deliberate bug in how nodes are driven, the invariants must
//! catch it. Each case pins a seed found (with `--sabotage … --keep-going`) to trip a *safety*
//! invariant, not merely the liveness bound (or, for `watch-skip`, the watch checker). Any change to how a run draws from its seed
//! reshuffles schedules: then find new seeds with
//! `cargo run -p simulation --release -- --seeds 1000 --sabotage <mode> --keep-going`.

use simulation::{Options, Sabotage, run_seed};

fn failing_invariant(seed: u64, sabotage: Sabotage) -> &'static str {
    let options = Options {
        sabotage: Some(sabotage),
        ..Options::new(seed)
    };
    run_seed(&options)
        .expect_err("the sabotaged run must fail")
        .violation
        .invariant
}

#[test]
fn acknowledging_before_the_fsync_loses_a_committed_entry() {
    assert_eq!(
        failing_invariant(176, Sabotage::SendBeforePersist),
        "leader completeness (Raft §5.4)"
    );
}

#[test]
fn a_lying_fsync_loses_a_committed_entry() {
    assert_eq!(
        failing_invariant(13, Sabotage::LyingFsync),
        "leader completeness (Raft §5.4)"
    );
}

/// 927 of seeds 0..1000 catch it; the others lose the damaged watch first (its node crashes
/// and the client does not come back, or comes back from before the gap and re-reads it).
#[test]
fn a_watch_event_dropped_on_the_way_is_a_gap() {
    assert_eq!(
        failing_invariant(0, Sabotage::WatchSkip),
        "watch delivery (etcd watch guarantees)"
    );
}

#[test]
fn the_same_seeds_pass_without_sabotage() {
    for seed in [0, 13, 176] {
        let stats = run_seed(&Options::new(seed)).expect("an honest run passes");
        assert!(
            stats.acks > 0 && stats.crashes > 0 && stats.watch.responses > 0,
            "the seed exercises crashes and watches: {stats:?}"
        );
    }
}
