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

/// Told "durable" before the fsync, a node applies entries whose commit a crash then takes
/// away: its store reopens ahead of its durable log (90 of seeds 0..300).
#[test]
fn reporting_a_write_durable_before_its_fsync_is_caught() {
    assert_eq!(
        failing_invariant(6, Sabotage::SendBeforePersist),
        "durable apply (docs/durable-log.md)"
    );
}

/// The classic consequence: an append ack for entries a crash then loses lets an entry commit
/// that a later leader does not hold (rarer: seeds 1227 and 1368 of 300..1800).
#[test]
fn acknowledging_before_the_fsync_loses_a_committed_entry() {
    assert_eq!(
        failing_invariant(1227, Sabotage::SendBeforePersist),
        "leader completeness (Raft §5.4)"
    );
}

#[test]
fn a_lying_fsync_loses_a_committed_entry() {
    assert_eq!(
        failing_invariant(60, Sabotage::LyingFsync),
        "leader completeness (Raft §5.4)"
    );
}

/// Most seeds catch it (284 of 0..300); the others lose the damaged watch first (its node crashes
/// and the client does not come back, or comes back from before the gap and re-reads it).
#[test]
fn a_watch_event_dropped_on_the_way_is_a_gap() {
    assert_eq!(
        failing_invariant(1, Sabotage::WatchSkip),
        "watch delivery (etcd watch guarantees)"
    );
}

/// A new leader that does not restart TTLs (rule 2 of docs/lease.md) expires leases that were
/// just renewed on the old leader; 176 of seeds 0..300 catch it.
#[test]
fn a_new_leader_that_keeps_old_deadlines_expires_leases_early() {
    assert_eq!(
        failing_invariant(1, Sabotage::LeaseNoFreshTtl),
        "lease expiry (etcd lessor, docs/lease.md)"
    );
}

/// A compaction made durable on its own outlives the store batches it summarised: the
/// durable log is compacted past the store's durable applied index (every one of seeds 0..40).
#[test]
fn a_compaction_durable_before_the_store_is_caught() {
    assert_eq!(
        failing_invariant(0, Sabotage::CompactBeforeStoreSync),
        "compaction below the durable applied index (docs/snapshots.md §1)"
    );
}

/// Found by the simulator (the server's `StoreActor` behaved so): a leader restarted since its
/// last snapshot point has no image of the point its core offers, and without a fresh point it
/// never can send one; an idle cluster leaves the lagging follower behind. A liveness finding,
/// so only the liveness bound catches it.
#[test]
fn a_leader_without_an_image_of_its_point_never_catches_a_follower_up() {
    assert_eq!(failing_invariant(12, Sabotage::NoPointRefresh), "liveness");
}

/// Found by the simulator (the server's `StoreActor` behaved so): after an install, a lease
/// revoked and granted again with another TTL under the image keeps its old TTL on the
/// follower's clock, which a later leader then expires early.
#[test]
fn an_install_that_keeps_a_regranted_lease_s_old_ttl_expires_it_early() {
    assert_eq!(
        failing_invariant(340, Sabotage::ImageLeasesById),
        "lease expiry (etcd lessor, docs/lease.md)"
    );
}

#[test]
fn the_same_seeds_pass_without_sabotage() {
    for seed in [6, 60, 1, 0, 12, 340] {
        let stats = run_seed(&Options::new(seed)).expect("an honest run passes");
        assert!(
            stats.acks > 0 && stats.crashes > 0 && stats.watch.responses > 0,
            "the seed exercises crashes and watches: {stats:?}"
        );
    }
    let stats = run_seed(&Options::new(1)).expect("an honest run passes");
    assert!(
        stats.lease.renewed > 0 && stats.lease.expired > 0 && stats.lease.revoked > 0,
        "seed 1 exercises keep-alives, expiry and revokes: {:?}",
        stats.lease
    );
}
