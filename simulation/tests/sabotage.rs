//! Checking the checker: with a deliberate bug in how nodes are driven, the invariants must
//! catch it. Each case pins a seed found (with `--sabotage … --keep-going`) to trip a *safety*
//! invariant, not merely the liveness bound. Any change to how a run draws from its seed
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
        failing_invariant(794, Sabotage::SendBeforePersist),
        "leader completeness (Raft §5.4)"
    );
}

#[test]
fn a_lying_fsync_loses_a_committed_entry() {
    assert_eq!(
        failing_invariant(53, Sabotage::LyingFsync),
        "leader completeness (Raft §5.4)"
    );
}

#[test]
fn the_same_seeds_pass_without_sabotage() {
    for seed in [53, 794] {
        let stats = run_seed(&Options::new(seed)).expect("an honest run passes");
        assert!(
            stats.acks > 0 && stats.crashes > 0,
            "the seed exercises crashes: {stats:?}"
        );
    }
}
