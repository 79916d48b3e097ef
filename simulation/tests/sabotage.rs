//! Checking the checker: with a deliberate bug in how nodes are driven, the invariants must
//! catch it. Each case pins a seed found (with `--sabotage … --keep-going`) to trip a *safety*
//! invariant, not merely the liveness bound.

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
        failing_invariant(76, Sabotage::SendBeforePersist),
        "leader completeness (Raft §5.4)"
    );
}

#[test]
fn a_lying_fsync_loses_a_committed_entry() {
    assert_eq!(
        failing_invariant(22, Sabotage::LyingFsync),
        "leader completeness (Raft §5.4)"
    );
}

#[test]
fn the_same_seeds_pass_without_sabotage() {
    for seed in [22, 76] {
        let stats = run_seed(&Options::new(seed)).expect("an honest run passes");
        assert!(
            stats.acks > 0 && stats.crashes > 0,
            "the seed exercises crashes: {stats:?}"
        );
    }
}
