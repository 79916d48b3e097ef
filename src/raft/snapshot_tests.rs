//! InstallSnapshot (Raft §7, etcd raft `raft_snap_test.go` and the snapshot cases of
//! `raft_test.go`): the leader's side (when a snapshot is sent, how its outcome moves the
//! progress), the follower's side (restore, stale and ignored snapshots), the Ready/advance
//! contract for a snapshot, restarting over a compacted log, and whole-network catch-up
//! through a snapshot on [`Network`].

use super::testing::{Network, carry_out_ready, msg, new_node, test_config, test_rng};
use super::*;

fn ent(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        ..Default::default()
    }
}

fn app_resp(from: NodeId, to: NodeId, term: u64, index: u64, reject: bool) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::AppendEntriesResponse {
            reject,
            index,
            reject_hint: 0,
            log_term: 0,
        },
    )
}

fn install(from: NodeId, to: NodeId, term: u64, snapshot: SnapshotMeta) -> Message {
    msg(from, to, term, MessageBody::InstallSnapshot { snapshot })
}

/// etcd's `testingSnap`: index 11, term 11, voters (1 2).
fn testing_snap() -> SnapshotMeta {
    SnapshotMeta {
        index: 11,
        term: 11,
        conf_state: ConfState::from_voters([1, 2]),
    }
}

fn snap(index: u64, term: u64, voters: &[NodeId]) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        conf_state: ConfState::from_voters(voters.iter().copied()),
    }
}

/// Carries out one Ready of a bare core (no state machine); returns it.
fn handle(node: &mut RawNode<MemStorage>) -> Ready {
    carry_out_ready(node, &mut Vec::new())
}

/// Carries out one Ready and returns every message it sent, immediate and after-persist.
fn handle_sent(node: &mut RawNode<MemStorage>) -> Vec<Message> {
    let mut sent = Vec::new();
    carry_out_ready(node, &mut sent);
    sent
}

/// Node 1 elected leader of (1 2) in term 1 over a storage that holds only `testing_snap`
/// (its log starts at 12); the no-op at 12 is persisted and node 2's progress is reset to
/// a fresh, active Probe at next 12.
fn leader_over_snapshot() -> RawNode<MemStorage> {
    let mut storage = MemStorage::new();
    storage.apply_snapshot(testing_snap()).unwrap();
    let mut n = new_node(&test_config(1), storage);
    n.campaign().unwrap();
    handle(&mut n);
    let grant = msg(
        2,
        1,
        1,
        MessageBody::RequestVoteResponse {
            pre_vote: false,
            reject: false,
        },
    );
    n.step(grant).unwrap();
    assert_eq!(n.status().soft_state.role, Role::Leader);
    handle(&mut n);
    let pr = n.raft.prs.progress.get_mut(&2).unwrap();
    *pr = Progress::new(12, 256);
    pr.recent_active = true;
    n
}

fn pr2(n: &RawNode<MemStorage>) -> &Progress {
    &n.raft.prs.progress[&2]
}

fn pr2_mut(n: &mut RawNode<MemStorage>) -> &mut Progress {
    n.raft.prs.progress.get_mut(&2).unwrap()
}

// ----- leader side ----------------------------------------------------------------------

#[test]
fn leader_sends_snapshot_when_the_follower_needs_compacted_entries() {
    // etcd TestSendingSnapshotSetPendingSnapshot / TestProvideSnap: the follower rejects
    // 11 with no hint, the leader backs off to 1, whose predecessor is compacted.
    let mut n = leader_over_snapshot();
    n.step(app_resp(2, 1, 1, 11, true)).unwrap();
    let pr = pr2(&n);
    assert_eq!(pr.state, ProgressState::Snapshot);
    assert_eq!((pr.pending_snapshot, pr.next_index), (11, 12));
    assert_eq!(
        n.take_messages(),
        vec![install(1, 2, 1, testing_snap())],
        "InstallSnapshot leaves at once, carrying the storage's snapshot point"
    );
}

#[test]
fn leader_does_not_send_snapshot_to_an_inactive_follower() {
    // etcd TestIgnoreProvidingSnap.
    let mut n = leader_over_snapshot();
    let pr = pr2_mut(&mut n);
    pr.next_index = 11; // prev 10 is compacted
    pr.recent_active = false;
    n.propose(b"x".to_vec()).unwrap();
    assert!(n.take_messages().is_empty());
    assert_eq!(pr2(&n).state, ProgressState::Probe);
    assert_eq!(pr2(&n).pending_snapshot, 0);
}

/// `MemStorage` whose snapshot is being built: `snapshot()` is temporarily unavailable.
struct SnapshotBusy(MemStorage);

impl Storage for SnapshotBusy {
    fn initial_state(&self) -> Result<(HardState, ConfState)> {
        self.0.initial_state()
    }
    fn entries(&self, low: u64, high: u64, max_size_bytes: Option<u64>) -> Result<Vec<Entry>> {
        self.0.entries(low, high, max_size_bytes)
    }
    fn term(&self, index: u64) -> Result<u64> {
        self.0.term(index)
    }
    fn first_index(&self) -> Result<u64> {
        self.0.first_index()
    }
    fn last_index(&self) -> Result<u64> {
        self.0.last_index()
    }
    fn snapshot(&self) -> Result<SnapshotMeta> {
        Err(RaftError::SnapshotTemporarilyUnavailable)
    }
}

#[test]
fn leader_sends_nothing_while_the_snapshot_is_temporarily_unavailable() {
    // etcd maybeSendSnapshot: ErrSnapshotTemporarilyUnavailable → no message, no state
    // change; a later heartbeat response tries again.
    let mut storage = MemStorage::new();
    storage.apply_snapshot(snap(11, 11, &[1])).unwrap();
    storage.set_hard_state(HardState {
        term: 11,
        vote: 0,
        commit: 11,
    });
    let mut n = RawNode::new(&test_config(1), SnapshotBusy(storage), test_rng(1)).unwrap();
    n.campaign().unwrap();
    while n.has_ready() {
        let rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().0.set_hard_state(hs);
        }
        n.storage_mut().0.append(&rd.entries).unwrap();
        n.advance(rd);
    }
    assert_eq!(n.soft_state().role, Role::Leader);
    // A learner that needs entries before the compaction point.
    n.raft.prs.progress.insert(
        2,
        Progress {
            recent_active: true,
            is_learner: true,
            ..Progress::new(5, 8)
        },
    );
    n.raft.prs.learners.insert(2);
    let heartbeat_resp = msg(2, 1, 12, MessageBody::HeartbeatResponse { ctx: vec![] });
    n.step(heartbeat_resp).unwrap();
    assert!(n.take_messages().is_empty());
    let pr = &n.raft.prs.progress[&2];
    assert_eq!((pr.state, pr.pending_snapshot), (ProgressState::Probe, 0));
}

#[test]
fn pending_snapshot_pauses_replication() {
    // etcd TestPendingSnapshotPauseReplication.
    let mut n = leader_over_snapshot();
    pr2_mut(&mut n).become_snapshot(11);
    n.propose(b"somedata".to_vec()).unwrap();
    assert!(n.take_messages().is_empty());
}

#[test]
fn heartbeat_response_sends_nothing_to_a_follower_waiting_for_a_snapshot() {
    let mut n = leader_over_snapshot();
    pr2_mut(&mut n).become_snapshot(11);
    let heartbeat_resp = msg(2, 1, 1, MessageBody::HeartbeatResponse { ctx: vec![] });
    n.step(heartbeat_resp).unwrap();
    assert!(n.take_messages().is_empty());
    assert_eq!(pr2(&n).state, ProgressState::Snapshot);
}

#[test]
fn snapshot_failure_probes_from_match_and_pauses_until_heartbeat() {
    // etcd TestSnapshotFailure, plus the retry the next heartbeat response starts.
    let mut n = leader_over_snapshot();
    pr2_mut(&mut n).become_snapshot(11);
    n.report_snapshot(2, true);
    let pr = pr2(&n);
    assert_eq!(pr.state, ProgressState::Probe);
    assert_eq!((pr.pending_snapshot, pr.next_index), (0, 1));
    assert!(pr.is_paused(), "paused until the next heartbeat response");
    n.propose(b"x".to_vec()).unwrap();
    assert!(n.take_messages().is_empty());
    // The heartbeat response unpauses; the probe at 1 finds 0 compacted: snapshot again.
    let heartbeat_resp = msg(2, 1, 1, MessageBody::HeartbeatResponse { ctx: vec![] });
    n.step(heartbeat_resp).unwrap();
    assert_eq!(n.take_messages(), vec![install(1, 2, 1, testing_snap())]);
    assert_eq!(pr2(&n).state, ProgressState::Snapshot);
}

#[test]
fn snapshot_success_probes_after_the_snapshot_and_pauses() {
    // etcd TestSnapshotSucceed.
    let mut n = leader_over_snapshot();
    pr2_mut(&mut n).next_index = 1;
    pr2_mut(&mut n).become_snapshot(11);
    n.report_snapshot(2, false);
    let pr = pr2(&n);
    assert_eq!(pr.state, ProgressState::Probe);
    assert_eq!((pr.pending_snapshot, pr.next_index), (0, 12));
    assert!(pr.is_paused(), "paused until the follower's answer");
    // The follower's answer for the snapshot moves it to Replicate and sends the no-op.
    n.step(app_resp(2, 1, 1, 11, false)).unwrap();
    assert_eq!(pr2(&n).state, ProgressState::Replicate);
    assert_eq!(pr2(&n).match_index, 11);
    let sent = n.take_messages();
    assert!(
        matches!(&sent[..], [Message { body: MessageBody::AppendEntries { prev_log_index: 11, entries, .. }, .. }] if entries.len() == 1)
    );
}

#[test]
fn report_snapshot_is_ignored_unless_waiting_for_one() {
    let mut n = leader_over_snapshot();
    pr2_mut(&mut n).become_replicate();
    let before = pr2(&n).clone();
    n.report_snapshot(2, true);
    assert_eq!(pr2(&n), &before);
}

#[test]
fn snapshot_aborts_when_the_follower_acks_past_it() {
    // etcd TestSnapshotAbort: an ack ≥ the pending snapshot ends the wait; the leader goes
    // to Replicate and sends the no-op at 12 (next 13, one message in flight).
    let mut n = leader_over_snapshot();
    pr2_mut(&mut n).next_index = 1;
    pr2_mut(&mut n).become_snapshot(11);
    n.step(app_resp(2, 1, 1, 11, false)).unwrap();
    let pr = pr2(&n);
    assert_eq!(pr.state, ProgressState::Replicate);
    assert_eq!(pr.pending_snapshot, 0);
    assert_eq!(pr.next_index, 13);
    assert_eq!(pr.inflights.last_indexes.len(), 1);
}

#[test]
fn ack_below_the_pending_snapshot_keeps_waiting_when_the_log_cannot_serve_it() {
    let mut n = leader_over_snapshot();
    pr2_mut(&mut n).become_snapshot(11);
    // Index 5 < pending 11, and 6 is compacted (first index 12): still needs the snapshot.
    n.step(app_resp(2, 1, 1, 5, false)).unwrap();
    assert_eq!(pr2(&n).state, ProgressState::Snapshot);
    assert_eq!(pr2(&n).match_index, 5);
    assert!(n.take_messages().is_empty());
}

// ----- follower side --------------------------------------------------------------------

/// A follower of (1 2 3) in term 2 with entries 1..=3 of term 1, commit 1.
fn follower_with_log() -> RawNode<MemStorage> {
    let mut storage = MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]));
    storage.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
    storage.set_hard_state(HardState {
        term: 2,
        vote: 0,
        commit: 1,
    });
    new_node(&test_config(2), storage)
}

#[test]
fn follower_restores_snapshot_and_answers_after_persist() {
    // etcd TestRestore / TestRestoreFromSnapMsg.
    let mut n = follower_with_log();
    let s = snap(11, 2, &[1, 2, 3, 4]);
    n.step(install(1, 2, 2, s.clone())).unwrap();
    assert_eq!(n.soft_state().leader_id, 1);
    let st = n.status();
    assert_eq!((st.last_index, st.hard_state.commit), (11, 11));
    assert_eq!(n.raft.raft_log.term(11), Ok(2));
    assert_eq!(
        st.conf_state, s.conf_state,
        "configuration reset from the snapshot"
    );
    assert!(
        n.take_messages().is_empty(),
        "the answer waits for the persist"
    );
    assert!(n.has_ready());
    let rd = n.ready();
    assert_eq!(rd.snapshot, Some(s.clone()));
    assert!(rd.must_sync());
    assert!(rd.committed_entries.is_empty());
    assert_eq!(rd.hard_state.map(|hs| hs.commit), Some(11));
    assert_eq!(rd.persisted_messages, vec![app_resp(2, 1, 2, 11, false)]);
    n.storage_mut().apply_snapshot(s.clone()).unwrap();
    n.storage_mut().set_hard_state(rd.hard_state.unwrap());
    n.advance(rd);
    assert_eq!(n.status().applied, 11);
    assert!(!n.has_ready());
    assert_eq!(n.storage().first_index(), Ok(12));
    assert_eq!(n.storage().conf_state(), &s.conf_state);
    // The same snapshot again is stale: answered with the commit index, nothing restored.
    n.step(install(1, 2, 2, s)).unwrap();
    let rd = handle(&mut n);
    assert_eq!(rd.snapshot, None);
    assert_eq!(rd.persisted_messages, vec![app_resp(2, 1, 2, 11, false)]);
}

#[test]
fn follower_ignores_a_snapshot_at_or_below_its_commit() {
    // etcd TestRestoreIgnoreSnapshot, first half.
    let mut n = follower_with_log();
    n.step(install(1, 2, 2, snap(1, 1, &[1, 2, 3]))).unwrap();
    assert_eq!(n.status().last_index, 3, "log kept");
    let rd = handle(&mut n);
    assert_eq!(rd.snapshot, None);
    assert_eq!(rd.persisted_messages, vec![app_resp(2, 1, 2, 1, false)]);
}

#[test]
fn follower_fast_forwards_commit_when_its_log_has_the_snapshot_point() {
    // etcd TestRestoreIgnoreSnapshot, second half: (2, 1) is in the log.
    let mut n = follower_with_log();
    n.step(install(1, 2, 2, snap(2, 1, &[1, 2, 3]))).unwrap();
    let st = n.status();
    assert_eq!((st.hard_state.commit, st.last_index), (2, 3));
    let rd = handle(&mut n);
    assert_eq!(rd.snapshot, None);
    assert_eq!(rd.committed_entries, vec![ent(1, 1), ent(1, 2)]);
    assert_eq!(rd.persisted_messages, vec![app_resp(2, 1, 2, 2, false)]);
}

#[test]
fn follower_restores_when_its_entry_at_the_snapshot_index_has_another_term() {
    let mut n = follower_with_log();
    n.step(install(1, 2, 2, snap(3, 2, &[1, 2, 3]))).unwrap();
    let rd = handle(&mut n);
    assert_eq!(rd.snapshot, Some(snap(3, 2, &[1, 2, 3])));
    assert_eq!(n.storage().term(3), Ok(2));
    assert!(n.storage().all_entries().is_empty());
}

#[test]
fn follower_ignores_a_snapshot_whose_configuration_lacks_it() {
    // etcd restore: "not in the ConfState; should never happen" → ignored, commit answered.
    let mut n = follower_with_log();
    n.step(install(1, 2, 2, snap(11, 2, &[1, 3]))).unwrap();
    let st = n.status();
    assert_eq!((st.last_index, st.hard_state.commit), (3, 1));
    assert_eq!(st.conf_state, ConfState::from_voters([1, 2, 3]));
    let rd = handle(&mut n);
    assert_eq!(rd.snapshot, None);
    assert_eq!(rd.persisted_messages, vec![app_resp(2, 1, 2, 1, false)]);
}

#[test]
fn follower_ignores_a_snapshot_with_a_malformed_configuration() {
    let mut n = follower_with_log();
    let bad = SnapshotMeta {
        index: 11,
        term: 2,
        conf_state: ConfState {
            voters: [1, 2].into(),
            learners: [2].into(),
            ..Default::default()
        },
    };
    n.step(install(1, 2, 2, bad)).unwrap();
    assert_eq!(n.status().last_index, 3);
}

#[test]
fn learner_restores_a_snapshot_that_lists_it_as_learner() {
    // etcd TestRestoreWithLearner / TestLearnerReceiveSnapshot.
    let mut n = follower_with_log();
    let s = SnapshotMeta {
        index: 11,
        term: 2,
        conf_state: ConfState {
            voters: [1, 3].into(),
            learners: [2].into(),
            ..Default::default()
        },
    };
    n.step(install(1, 2, 2, s.clone())).unwrap();
    assert_eq!(n.status().conf_state, s.conf_state);
    assert!(n.raft.prs.progress[&2].is_learner);
    assert!(!n.raft.promotable(), "a learner may not campaign");
}

#[test]
fn follower_restores_a_joint_configuration() {
    // etcd TestRestoreWithVotersOutgoing.
    let mut n = follower_with_log();
    let s = SnapshotMeta {
        index: 11,
        term: 2,
        conf_state: ConfState {
            voters: [2, 3, 4].into(),
            voters_outgoing: [1, 2, 3].into(),
            ..Default::default()
        },
    };
    n.step(install(1, 2, 2, s.clone())).unwrap();
    assert_eq!(n.status().conf_state, s.conf_state);
    assert_eq!(
        n.raft.prs.progress.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

#[test]
fn candidate_becomes_follower_on_snapshot_from_leader_of_its_term() {
    let mut n = follower_with_log();
    n.campaign().unwrap(); // term 3
    assert_eq!(n.soft_state().role, Role::Candidate);
    n.step(install(1, 2, 3, snap(11, 3, &[1, 2, 3]))).unwrap();
    assert_eq!(n.soft_state().role, Role::Follower);
    assert_eq!(n.soft_state().leader_id, 1);
    assert_eq!(n.status().last_index, 11);
}

#[test]
fn snapshot_from_a_higher_term_makes_its_sender_the_leader() {
    let mut n = follower_with_log();
    n.step(install(1, 2, 5, snap(11, 4, &[1, 2, 3]))).unwrap();
    let st = n.status();
    assert_eq!((st.hard_state.term, st.soft_state.leader_id), (5, 1));
    assert_eq!(st.last_index, 11);
}

#[test]
fn snapshot_from_a_stale_term_is_ignored() {
    let mut n = follower_with_log();
    n.step(install(1, 2, 1, snap(11, 1, &[1, 2, 3]))).unwrap();
    assert_eq!(n.status().last_index, 3);
    assert!(n.take_messages().is_empty());
    assert!(handle(&mut n).persisted_messages.is_empty());
}

// ----- Ready / advance ------------------------------------------------------------------

#[test]
fn entries_after_a_pending_snapshot_wait_for_it_to_be_installed() {
    let mut n = follower_with_log();
    n.step(install(1, 2, 2, snap(11, 2, &[1, 2, 3]))).unwrap();
    let append = msg(
        1,
        2,
        2,
        MessageBody::AppendEntries {
            prev_log_index: 11,
            prev_log_term: 2,
            entries: vec![ent(2, 12)],
            commit: 12,
        },
    );
    n.step(append).unwrap();
    let rd = handle(&mut n);
    assert_eq!(rd.snapshot, Some(snap(11, 2, &[1, 2, 3])));
    assert_eq!(rd.entries, vec![ent(2, 12)]);
    assert_eq!(rd.hard_state.map(|hs| hs.commit), Some(12));
    assert!(rd.committed_entries.is_empty(), "not before the snapshot");
    assert_eq!(
        rd.persisted_messages,
        vec![app_resp(2, 1, 2, 11, false), app_resp(2, 1, 2, 12, false)]
    );
    assert_eq!(n.status().applied, 11);
    // The next Ready applies the entry after the snapshot.
    let rd = handle(&mut n);
    assert_eq!(rd.committed_entries, vec![ent(2, 12)]);
    assert_eq!(n.status().applied, 12);
    assert_eq!(n.storage().all_entries(), &[ent(2, 12)]);
}

#[test]
fn advance_uses_the_recorded_snapshot_when_the_caller_moved_it_out() {
    let mut n = follower_with_log();
    n.step(install(1, 2, 2, snap(11, 2, &[1, 2, 3]))).unwrap();
    let mut rd = n.ready();
    let s = rd.snapshot.take().unwrap();
    n.storage_mut().apply_snapshot(s).unwrap();
    n.storage_mut().set_hard_state(rd.hard_state.unwrap());
    n.advance(rd);
    assert_eq!(n.status().applied, 11);
    assert_eq!(n.raft.raft_log.unstable.snapshot, None);
    assert!(!n.has_ready());
}

// ----- restart over a compacted log -----------------------------------------------------

/// Storage holding the snapshot at 11 plus entries 12 and 13 of term 11, commit 13.
fn compacted_storage() -> MemStorage {
    let mut s = MemStorage::new();
    s.apply_snapshot(testing_snap()).unwrap();
    s.append(&[ent(11, 12), ent(11, 13)]).unwrap();
    s.set_hard_state(HardState {
        term: 11,
        vote: 1,
        commit: 13,
    });
    s
}

#[test]
fn restart_over_a_snapshot_applies_only_entries_after_it() {
    // The state machine is at the snapshot (config.applied = 11): entries 12, 13 follow.
    let mut n = new_node(
        &Config {
            applied: 11,
            ..test_config(1)
        },
        compacted_storage(),
    );
    let st = n.status();
    assert_eq!(
        (st.applied, st.hard_state.commit, st.last_index),
        (11, 13, 13)
    );
    assert_eq!(st.conf_state, ConfState::from_voters([1, 2]));
    let rd = handle(&mut n);
    assert_eq!(
        rd.snapshot, None,
        "a stored snapshot is not handed out again"
    );
    assert_eq!(rd.committed_entries, vec![ent(11, 12), ent(11, 13)]);
    // applied = 0 means "at the storage's snapshot": the same entries follow.
    let mut n = new_node(&test_config(1), compacted_storage());
    assert_eq!(n.status().applied, 11);
    assert_eq!(handle(&mut n).committed_entries.len(), 2);
}

#[test]
fn restart_refuses_an_applied_index_below_the_snapshot() {
    let r = RawNode::new(
        &Config {
            applied: 5,
            ..test_config(1)
        },
        compacted_storage(),
        test_rng(1),
    );
    assert!(matches!(r, Err(RaftError::ConfigInvalid(_))));
}

#[test]
fn restarted_node_over_a_snapshot_can_lead_and_replicate() {
    let mut n = new_node(&test_config(1), compacted_storage());
    n.campaign().unwrap();
    let sent = handle_sent(&mut n);
    assert_eq!(
        sent,
        vec![msg(
            1,
            2,
            12,
            MessageBody::RequestVote {
                pre_vote: false,
                leader_transfer: false,
                last_log_index: 13,
                last_log_term: 11,
            },
        )]
    );
}

// ----- whole network (Raft §7) ----------------------------------------------------------

/// Proposes `n` entries on `leader`, named `prefix-i`.
fn propose_many(net: &mut Network, leader: NodeId, prefix: &str, n: usize) {
    for i in 0..n {
        net.propose(leader, format!("{prefix}-{i}").as_bytes());
    }
}

#[test]
fn test_7_slow_follower_catches_up_through_a_snapshot() {
    // etcd TestSlowNodeRestore: a partitioned follower falls behind a compaction point;
    // after the partition heals it is sent the snapshot, installs it, and then follows
    // the log again; its commit index ends up equal to the leader's.
    let mut net = Network::with_nodes(3);
    net.elect(1);
    net.isolate(3);
    propose_many(&mut net, 1, "w", 100);
    let applied = net.node(1).status().applied;
    let meta = net.compact(1, applied);
    assert_eq!(meta.index, 101);
    net.heal();
    net.heartbeat(1);
    // A new proposal after the catch-up commits everywhere.
    net.propose(1, b"after");
    let commit = |net: &Network, id| net.node(id).status().hard_state.commit;
    assert_eq!(commit(&net, 3), commit(&net, 1));
    assert_eq!(net.installed.get(&3), Some(&vec![meta]));
    assert_eq!(net.applied[&3], net.applied[&1]);
    net.assert_consistent();
}

#[test]
fn test_7_partitioned_follower_is_sent_a_snapshot_and_logs_agree_after_heal() {
    let mut net = Network::with_nodes(3);
    net.elect(1);
    propose_many(&mut net, 1, "a", 3);
    net.isolate(3);
    propose_many(&mut net, 1, "b", 10);
    // The leader compacts past the entry node 3 needs next (its match + 1; `next_index`
    // itself ran ahead optimistically in Replicate).
    let needed = net.node(1).status().progress[&3].match_index + 1;
    let applied = net.node(1).status().applied;
    net.compact(1, applied);
    assert!(net.node(1).raft.raft_log.first_index() > needed);
    net.heal();
    net.delivered.clear();
    net.heartbeat(1);
    let snapshots: Vec<&Message> = net
        .delivered
        .iter()
        .filter(|(m, ok)| *ok && m.body.name() == "InstallSnapshot")
        .map(|(m, _)| m)
        .collect();
    assert_eq!(snapshots.len(), 1, "one InstallSnapshot, to node 3");
    assert_eq!(snapshots[0].to, 3);
    let st1 = net.node(1).status();
    let pr3 = &st1.progress[&3];
    assert_eq!(pr3.state, ProgressState::Replicate);
    assert_eq!(pr3.match_index, st1.last_index);
    assert_eq!(net.node(3).status().applied, st1.applied);
    assert_eq!(net.node(3).storage().first_index(), Ok(applied + 1));
    // Everything written after the heal reaches node 3 through the log again.
    propose_many(&mut net, 1, "c", 3);
    assert_eq!(net.applied[&3], net.applied[&1]);
    assert_eq!(net.applied[&3], net.applied[&2]);
    net.assert_consistent();
}

#[test]
fn test_7_lost_snapshot_is_retried_after_a_heartbeat() {
    let mut net = Network::with_nodes(3);
    net.elect(1);
    net.isolate(3);
    propose_many(&mut net, 1, "w", 5);
    let applied = net.node(1).status().applied;
    net.compact(1, applied);
    net.heal();
    // Heartbeat → node 3 answers → the leader probes, 3 rejects, the leader sends the
    // snapshot — which is lost: the cut comes back just before it is delivered.
    net.node_mut(1).tick();
    for _ in 0..10 {
        for id in [1, 2, 3] {
            while net.process_ready(id).is_some() {}
        }
        let snapshot_queued = net
            .in_flight
            .iter()
            .any(|m| m.body.name() == "InstallSnapshot");
        if snapshot_queued {
            break;
        }
        for id in [1, 2, 3] {
            net.deliver(id);
        }
    }
    net.isolate(3);
    net.deliver(3);
    let pr3 = &net.node(1).status().progress[&3];
    assert_eq!(pr3.state, ProgressState::Probe, "failure reported");
    assert!(pr3.probe_sent, "paused until the next heartbeat response");
    assert_eq!(
        net.node(3).status().applied,
        1,
        "node 3 still has its old state"
    );
    net.heal();
    net.stabilize();
    assert_eq!(
        net.node(3).status().applied,
        1,
        "no retry before a heartbeat"
    );
    net.heartbeat(1);
    assert_eq!(net.node(3).status().applied, applied);
    assert_eq!(net.installed[&3].len(), 1);
    net.assert_consistent();
}

#[test]
fn test_7_follower_restarts_from_an_installed_snapshot() {
    let mut net = Network::with_nodes(3);
    net.elect(1);
    net.isolate(3);
    propose_many(&mut net, 1, "w", 5);
    let applied = net.node(1).status().applied;
    net.compact(1, applied);
    net.heal();
    net.heartbeat(1);
    propose_many(&mut net, 1, "x", 2);
    net.restart(3);
    let st = net.node(3).status();
    assert_eq!(
        st.applied, applied,
        "the state machine restarts at the snapshot"
    );
    assert_eq!(st.conf_state, ConfState::from_voters([1, 2, 3]));
    net.stabilize();
    assert_eq!(net.applied[&3], net.applied[&1]);
    // It keeps following: heartbeats and new entries.
    net.heartbeat(1);
    propose_many(&mut net, 1, "y", 2);
    assert_eq!(net.applied[&3], net.applied[&1]);
    net.assert_consistent();
}

#[test]
fn test_7_learner_catches_up_through_a_snapshot() {
    // etcd TestLearnerReceiveSnapshot: the snapshot's configuration lists the learner.
    let cs = ConfState {
        voters: [1].into(),
        learners: [2].into(),
        ..Default::default()
    };
    let mut net = Network::with_conf_state(cs.clone(), 2);
    net.elect(1);
    net.isolate(2);
    propose_many(&mut net, 1, "w", 4);
    let applied = net.node(1).status().applied;
    net.compact(1, applied);
    net.heal();
    net.heartbeat(1);
    assert_eq!(net.installed[&2].len(), 1);
    assert_eq!(net.installed[&2][0].conf_state, cs);
    assert_eq!(net.node(2).status().applied, applied);
    assert_eq!(net.applied[&2], net.applied[&1]);
    net.assert_consistent();
}
