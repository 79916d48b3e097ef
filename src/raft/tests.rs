//! Unit tests of `Raft`/`RawNode`: return values, resulting state, and the exact messages.

use super::testing::{Cluster, msg, new_node, test_config};
use super::types::NO_NODE;
use super::*;
use crate::node::{Effect, ProposeError};

fn ent(term: u64, index: u64, data: &[u8]) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Normal,
        data: data.to_vec(),
    }
}

fn three_voters() -> MemStorage {
    MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]))
}

fn vote_req(from: NodeId, to: NodeId, term: u64, pre_vote: bool, li: u64, lt: u64) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVote {
            pre_vote,
            leader_transfer: false,
            last_log_index: li,
            last_log_term: lt,
        },
    )
}

fn vote_resp(from: NodeId, to: NodeId, term: u64, pre_vote: bool, reject: bool) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVoteResponse { pre_vote, reject },
    )
}

fn app_resp(from: NodeId, to: NodeId, term: u64, index: u64) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::AppendEntriesResponse {
            reject: false,
            index,
            reject_hint: 0,
            log_term: 0,
        },
    )
}

/// Drives `node` through one Ready following the contract; returns the Ready.
fn handle(node: &mut RawNode<MemStorage>) -> Ready {
    let rd = node.ready();
    if let Some(hs) = rd.hard_state {
        node.storage_mut().set_hard_state(hs);
    }
    node.storage_mut().append(&rd.entries).unwrap();
    let shown = rd.clone();
    node.advance(rd);
    shown
}

#[test]
fn new_node_restores_hard_state_and_starts_as_follower() {
    let mut s = three_voters();
    s.append(&[ent(1, 1, b""), ent(2, 2, b"x")]).unwrap();
    s.set_hard_state(HardState {
        term: 2,
        vote: 3,
        commit: 1,
    });
    let n = new_node(
        &Config {
            applied: 1,
            ..test_config(1)
        },
        s,
    );
    let st = n.status();
    assert_eq!(
        st.hard_state,
        HardState {
            term: 2,
            vote: 3,
            commit: 1
        }
    );
    assert_eq!(
        st.soft_state,
        SoftState {
            leader_id: 0,
            role: Role::Follower
        }
    );
    assert_eq!(st.applied, 1);
    assert!(!n.has_ready(), "restored state is not reported again");
}

#[test]
fn new_node_rejects_commit_beyond_log_and_applied_beyond_commit() {
    let mut s = three_voters();
    s.set_hard_state(HardState {
        term: 1,
        vote: 0,
        commit: 5,
    });
    let err = RawNode::new(&test_config(1), s, super::testing::test_rng(1)).err();
    assert!(matches!(err, Some(RaftError::Storage(_))));
    let err = RawNode::new(
        &Config {
            applied: 1,
            ..test_config(1)
        },
        three_voters(),
        super::testing::test_rng(1),
    )
    .err();
    assert!(matches!(err, Some(RaftError::ConfigInvalid(_))));
}

#[test]
fn campaign_without_prevote_sends_request_votes_and_defers_self_vote() {
    let mut n = new_node(&test_config(1), three_voters());
    n.campaign().unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.soft_state,
        Some(SoftState {
            leader_id: 0,
            role: Role::Candidate
        })
    );
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 1,
            vote: 1,
            commit: 0
        })
    );
    assert_eq!(
        rd.messages,
        vec![
            vote_req(1, 2, 1, false, 0, 0),
            vote_req(1, 3, 1, false, 0, 0)
        ]
    );
    assert!(rd.persisted_messages.is_empty());
    assert_eq!(rd.self_messages, vec![vote_resp(1, 1, 1, false, false)]);
    assert!(!n.has_ready(), "no second Ready while one is outstanding");
    n.advance(rd);
    // Own vote counted: 1 of 3, still a candidate.
    assert_eq!(n.raft.prs.votes.get(&1), Some(&true));
    assert_eq!(n.raft.role, Role::Candidate);
}

#[test]
fn campaign_with_prevote_keeps_term_and_asks_for_next_term() {
    let cfg = Config {
        pre_vote: true,
        ..test_config(1)
    };
    let mut n = new_node(&cfg, three_voters());
    n.campaign().unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.soft_state,
        Some(SoftState {
            leader_id: 0,
            role: Role::PreCandidate
        })
    );
    assert_eq!(
        rd.hard_state, None,
        "pre-vote changes neither term nor vote"
    );
    assert_eq!(
        rd.messages,
        vec![vote_req(1, 2, 1, true, 0, 0), vote_req(1, 3, 1, true, 0, 0)]
    );
    n.advance(rd);
    n.step(vote_resp(2, 1, 1, true, false)).unwrap();
    // Pre-vote won: a real election in term 1.
    assert_eq!(n.raft.role, Role::Candidate);
    assert_eq!(n.raft.term, 1);
    let rd = n.ready();
    assert_eq!(
        rd.messages,
        vec![
            vote_req(1, 2, 1, false, 0, 0),
            vote_req(1, 3, 1, false, 0, 0)
        ]
    );
}

#[test]
fn campaign_on_non_voter_is_an_error() {
    let mut n = new_node(&test_config(4), three_voters());
    assert_eq!(n.campaign(), Err(RaftError::NotVoter));
}

#[test]
fn single_node_becomes_leader_and_commits_noop_after_persist() {
    let mut n = new_node(
        &test_config(1),
        MemStorage::new_with_conf_state(ConfState::from_voters([1])),
    );
    n.campaign().unwrap();
    let rd = handle(&mut n); // persists term 1, vote 1; self-vote delivered in advance
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 1,
            vote: 1,
            commit: 0
        })
    );
    assert_eq!(n.raft.role, Role::Leader);
    let rd = handle(&mut n);
    assert_eq!(rd.entries, vec![ent(1, 1, b"")]);
    assert!(
        rd.committed_entries.is_empty(),
        "the no-op is not committed before it is durable"
    );
    let rd = handle(&mut n);
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 1,
            vote: 1,
            commit: 1
        })
    );
    assert_eq!(rd.committed_entries, vec![ent(1, 1, b"")]);
    assert!(!n.has_ready());
    assert_eq!(n.status().applied, 1);
}

/// Callers move `entries` and `committed_entries` out of a Ready (the RaftActor hands them to
/// other actors); `advance` must still mark them durable and applied, or every later Ready
/// re-persists the whole tail and re-delivers the same committed entries.
#[test]
fn advance_works_when_the_caller_moved_the_lists_out() {
    let mut n = new_node(
        &test_config(1),
        MemStorage::new_with_conf_state(ConfState::from_voters([1])),
    );
    n.campaign().unwrap();
    n.propose(b"x".to_vec()).ok();
    let mut applied = Vec::new();
    for _ in 0..10 {
        if !n.has_ready() {
            break;
        }
        let mut rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().set_hard_state(hs);
        }
        let entries = std::mem::take(&mut rd.entries);
        n.storage_mut().append(&entries).unwrap();
        applied.extend(
            std::mem::take(&mut rd.committed_entries)
                .into_iter()
                .map(|e| e.index),
        );
        n.advance(rd);
    }
    assert!(
        !n.has_ready(),
        "the node settles once everything is durable and applied"
    );
    assert_eq!(
        applied,
        vec![1],
        "each committed entry is handed out exactly once"
    );
    assert_eq!(n.status().applied, 1);
}

#[test]
fn must_sync_only_for_entries_or_term_and_vote() {
    let mut n = new_node(&test_config(2), three_voters());
    let app = MessageBody::AppendEntries {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![ent(1, 1, b"")],
        commit: 0,
    };
    n.step(msg(1, 2, 1, app)).unwrap();
    let rd = handle(&mut n);
    assert!(rd.must_sync(), "new entries and a new term");
    n.step(msg(
        1,
        2,
        1,
        MessageBody::Heartbeat {
            commit: 1,
            ctx: vec![],
        },
    ))
    .unwrap();
    let rd = handle(&mut n);
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 1,
            vote: 0,
            commit: 1
        })
    );
    assert!(!rd.must_sync(), "only the commit index changed");
    assert_eq!(
        n.soft_state(),
        SoftState {
            leader_id: 1,
            role: Role::Follower
        }
    );
    assert_eq!(n.hard_state().commit, 1);
}

#[test]
fn vote_grant_leaves_only_after_persist() {
    let mut n = new_node(&test_config(2), three_voters());
    n.step(vote_req(1, 2, 1, false, 0, 0)).unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 1,
            vote: 1,
            commit: 0
        })
    );
    assert!(rd.messages.is_empty());
    assert_eq!(
        rd.persisted_messages,
        vec![vote_resp(2, 1, 1, false, false)]
    );
}

#[test]
fn vote_once_per_term() {
    let mut n = new_node(&test_config(3), three_voters());
    n.step(vote_req(1, 3, 1, false, 0, 0)).unwrap();
    n.step(vote_req(2, 3, 1, false, 0, 0)).unwrap();
    // A repeated request from the same candidate is granted again (idempotent).
    n.step(vote_req(1, 3, 1, false, 0, 0)).unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.persisted_messages,
        vec![
            vote_resp(3, 1, 1, false, false),
            vote_resp(3, 2, 1, false, true),
            vote_resp(3, 1, 1, false, false)
        ]
    );
    assert_eq!(n.raft.vote, 1);
}

#[test]
fn prevote_is_granted_without_changing_term_or_vote() {
    let mut n = new_node(&test_config(2), three_voters());
    n.step(vote_req(1, 2, 1, true, 0, 0)).unwrap();
    assert_eq!((n.raft.term, n.raft.vote), (0, 0));
    let rd = n.ready();
    assert_eq!(rd.hard_state, None);
    assert_eq!(rd.persisted_messages, vec![vote_resp(2, 1, 1, true, false)]);
}

#[test]
fn stale_prevote_is_rejected_with_current_term() {
    let mut s = three_voters();
    s.set_hard_state(HardState {
        term: 5,
        vote: 0,
        commit: 0,
    });
    let mut n = new_node(&test_config(2), s);
    n.step(vote_req(1, 2, 3, true, 0, 0)).unwrap();
    let rd = n.ready();
    assert_eq!(rd.persisted_messages, vec![vote_resp(2, 1, 5, true, true)]);
}

#[test]
fn check_quorum_lease_ignores_vote_requests() {
    let cfg = Config {
        check_quorum: true,
        ..test_config(2)
    };
    let mut n = new_node(&cfg, three_voters());
    n.step(msg(
        1,
        2,
        1,
        MessageBody::Heartbeat {
            commit: 0,
            ctx: vec![],
        },
    ))
    .unwrap();
    let _ = handle(&mut n);
    n.step(vote_req(3, 2, 2, false, 5, 1)).unwrap();
    assert_eq!(n.raft.term, 1, "in lease: the request is ignored entirely");
    assert!(!n.has_ready());
    // A leadership-transfer election bypasses the lease.
    let m = msg(
        3,
        2,
        2,
        MessageBody::RequestVote {
            pre_vote: false,
            leader_transfer: true,
            last_log_index: 5,
            last_log_term: 1,
        },
    );
    n.step(m).unwrap();
    assert_eq!((n.raft.term, n.raft.vote), (2, 3));
}

#[test]
fn follower_appends_and_acks_after_persist_with_commit() {
    let mut n = new_node(&test_config(2), three_voters());
    let app = MessageBody::AppendEntries {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![ent(1, 1, b""), ent(1, 2, b"x")],
        commit: 1,
    };
    n.step(msg(1, 2, 1, app)).unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.soft_state,
        Some(SoftState {
            leader_id: 1,
            role: Role::Follower
        })
    );
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 1,
            vote: 0,
            commit: 1
        })
    );
    assert_eq!(rd.entries, vec![ent(1, 1, b""), ent(1, 2, b"x")]);
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages, vec![app_resp(2, 1, 1, 2)]);
    assert_eq!(rd.committed_entries, vec![ent(1, 1, b"")]);
}

#[test]
fn follower_rejects_gap_with_hint() {
    let mut s = three_voters();
    s.append(&[
        ent(1, 1, b""),
        ent(1, 2, b""),
        ent(2, 3, b""),
        ent(2, 4, b""),
    ])
    .unwrap();
    s.set_hard_state(HardState {
        term: 2,
        vote: 0,
        commit: 1,
    });
    let mut n = new_node(&test_config(2), s);
    // Leader at term 4 thinks we have 6@term 3: we have nothing at 6; min(6, 4) = 4 has
    // term 2 ≤ 3, so hint 4@2.
    let app = MessageBody::AppendEntries {
        prev_log_index: 6,
        prev_log_term: 3,
        entries: vec![],
        commit: 1,
    };
    n.step(msg(1, 2, 4, app)).unwrap();
    let rd = n.ready();
    let want = MessageBody::AppendEntriesResponse {
        reject: true,
        index: 6,
        reject_hint: 4,
        log_term: 2,
    };
    assert_eq!(rd.persisted_messages, vec![msg(2, 1, 4, want)]);
    // Leader thinks 4 has term 1: our 4 and 3 are term 2 > 1, so hint 2@1.
    n.advance(rd);
    let app = MessageBody::AppendEntries {
        prev_log_index: 4,
        prev_log_term: 1,
        entries: vec![],
        commit: 1,
    };
    n.step(msg(1, 2, 4, app)).unwrap();
    let rd = n.ready();
    let want = MessageBody::AppendEntriesResponse {
        reject: true,
        index: 4,
        reject_hint: 2,
        log_term: 1,
    };
    assert_eq!(rd.persisted_messages, vec![msg(2, 1, 4, want)]);
}

#[test]
fn stale_append_from_old_leader_gets_current_term_when_prevote_or_check_quorum() {
    let mut s = three_voters();
    s.set_hard_state(HardState {
        term: 3,
        vote: 0,
        commit: 0,
    });
    let mut n = new_node(
        &Config {
            pre_vote: true,
            ..test_config(2)
        },
        s,
    );
    let app = MessageBody::AppendEntries {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        commit: 0,
    };
    n.step(msg(1, 2, 2, app)).unwrap();
    let rd = n.ready();
    assert_eq!(rd.persisted_messages, vec![app_resp(2, 1, 3, 0)]);
}

#[test]
fn leader_does_not_count_unpersisted_self_toward_commit() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    let n = c.node_mut(1);
    n.propose(b"x".to_vec()).unwrap();
    assert!(n.drive_one());
    let effects = n.take_effects();
    // The AppendEntries leaves before the leader's own append is durable (thesis §10.2.1).
    let [Effect::Send(messages), Effect::Persist(write)] = &effects[..] else {
        panic!("expected a send, then a write: {effects:?}");
    };
    assert_eq!(messages.len(), 2);
    assert!(matches!(
        messages[0].body,
        MessageBody::AppendEntries { .. }
    ));
    assert_eq!(write.entries, vec![ent(1, 2, b"x")]);
    // Do NOT persist yet: an ack from one follower is not a quorum without our own copy.
    let held = write.clone();
    c.node_mut(1).step(app_resp(2, 1, 1, 2)).unwrap();
    assert_eq!(c.node(1).raft.raft_log.committed, 1);
    // Persisting makes the leader count itself: now 2 of 3.
    c.node_mut(1).persisted(held).unwrap();
    assert_eq!(c.node(1).raft.raft_log.committed, 2);
}

#[test]
fn propose_on_follower_forwards_and_without_leader_drops() {
    let mut n = new_node(&test_config(2), three_voters());
    assert_eq!(n.propose(b"x".to_vec()), Err(RaftError::ProposalDropped));
    assert_eq!(n.read_index(b"r".to_vec()), Err(RaftError::ProposalDropped));
    n.step(msg(
        1,
        2,
        1,
        MessageBody::Heartbeat {
            commit: 0,
            ctx: vec![],
        },
    ))
    .unwrap();
    let _ = handle(&mut n);
    n.propose(b"x".to_vec()).unwrap();
    n.read_index(b"r".to_vec()).unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.messages,
        vec![
            msg(
                2,
                1,
                0,
                MessageBody::Propose {
                    entries: vec![ent(0, 0, b"x")]
                }
            ),
            msg(2, 1, 0, MessageBody::ReadIndex { ctx: b"r".to_vec() }),
        ]
    );
}

#[test]
fn leader_replicates_proposal_and_commits() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.node_mut(1).propose(b"x".to_vec()).unwrap();
    c.stabilize();
    for id in 1..=3 {
        assert_eq!(c.applied[&id].last(), Some(&ent(1, 2, b"x")));
        assert_eq!(c.node(id).status().hard_state.commit, 2);
    }
    let st = c.node(1).status();
    assert_eq!(st.progress[&2].match_index, 2);
    assert_eq!(st.progress[&2].state, ProgressState::Replicate);
    assert!(c.node(2).status().progress.is_empty());
}

#[test]
fn append_batches_respect_max_size_and_inflight_limit() {
    let cfg = |id| Config {
        max_size_per_msg: 60,
        max_inflight_msgs: 2,
        ..test_config(id)
    };
    let mut c = Cluster::new(2, cfg);
    c.elect(1);
    for i in 0..6u8 {
        c.node_mut(1).propose(vec![b'a' + i; 10]).unwrap(); // 34 bytes each
    }
    // Leader was appended 6 entries, one AppendEntries per proposal was attempted.
    let rd = c.process_ready(1).unwrap();
    let apps: Vec<usize> = rd
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::AppendEntries { entries, .. } => Some(entries.len()),
            _ => None,
        })
        .collect();
    // First proposal: 1 entry; second: 1 more; then the window (2) is full.
    assert_eq!(apps, vec![1, 1]);
    c.in_flight.clear();
    // Follower acks index 3 (both messages): window frees, remaining 4 entries go out in
    // batches of at most 60 bytes (one entry of 34 bytes each + ... = 1 entry per message).
    c.node_mut(1).step(app_resp(2, 1, 1, 3)).unwrap();
    let rd = c.process_ready(1).unwrap();
    let apps: Vec<usize> = rd
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::AppendEntries { entries, .. } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(apps, vec![1, 1], "two more messages fill the window again");
}

#[test]
fn leader_read_index_waits_for_heartbeat_quorum() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.read_index(1, b"r1".to_vec()).unwrap();
    let rd = c.process_ready(1).unwrap();
    assert!(rd.read_states.is_empty());
    let hb: Vec<&Message> = rd
        .messages
        .iter()
        .filter(|m| matches!(m.body, MessageBody::Heartbeat { .. }))
        .collect();
    assert_eq!(hb.len(), 2);
    // The driver's context for member 1's read round (its id starts at random), the same on
    // both heartbeats.
    let MessageBody::Heartbeat { commit: 1, ctx } = &hb[0].body else {
        panic!("heartbeat at commit 1: {:?}", hb[0]);
    };
    assert!(crate::node::decode_read_ctx(1, ctx).is_some(), "{ctx:?}");
    assert_eq!(hb[0].body, hb[1].body);
    c.stabilize();
    assert_eq!(
        c.read_states[&1],
        vec![ReadState {
            index: 1,
            request_ctx: b"r1".to_vec()
        }]
    );
}

#[test]
fn read_index_before_first_commit_of_term_is_deferred() {
    let mut c = Cluster::with_nodes(3);
    c.node_mut(1).campaign().unwrap();
    // Let the election finish but keep the no-op from committing.
    c.process_ready(1);
    c.deliver(2);
    c.deliver(3);
    c.process_ready(2);
    c.process_ready(3);
    c.deliver(1);
    assert_eq!(c.node(1).raft.role, Role::Leader);
    // The driver serves reads only once it has published a leader, i.e. after the Ready
    // that carries the new role; it also persists and sends the no-op, not yet acked.
    c.process_ready(1);
    c.read_index(1, b"early".to_vec()).unwrap();
    assert_eq!(c.node(1).raft.pending_read_index_len(), 1);
    c.stabilize();
    assert_eq!(
        c.read_states[&1],
        vec![ReadState {
            index: 1,
            request_ctx: b"early".to_vec()
        }]
    );
}

#[test]
fn follower_read_index_is_answered_by_leader() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.read_index(2, b"f".to_vec()).unwrap();
    c.stabilize();
    assert_eq!(
        c.read_states[&2],
        vec![ReadState {
            index: 1,
            request_ctx: b"f".to_vec()
        }]
    );
    assert!(c.read_states[&1].is_empty());
}

#[test]
fn step_rejects_misaddressed_messages() {
    let mut n = new_node(&test_config(1), three_voters());
    let m = msg(2, 3, 1, MessageBody::TimeoutNow);
    assert_eq!(n.step(m), Err(RaftError::WrongRecipient { id: 1, to: 3 }));
    let m = msg(1, 1, 1, MessageBody::TimeoutNow);
    assert!(n.step(m).is_err());
}

#[test]
fn ticks_trigger_election_within_randomized_timeout() {
    let mut n = new_node(&test_config(1), three_voters());
    let timeout = n.raft.randomized_election_timeout;
    assert!((10..20).contains(&timeout));
    for _ in 0..timeout - 1 {
        n.tick();
    }
    assert_eq!(n.raft.role, Role::Follower);
    n.tick();
    assert_eq!(n.raft.role, Role::Candidate);
}

#[test]
fn leader_sends_heartbeats_every_heartbeat_tick() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.node_mut(1).tick();
    let rd = c.process_ready(1).unwrap();
    assert_eq!(
        rd.messages,
        vec![
            msg(
                1,
                2,
                1,
                MessageBody::Heartbeat {
                    commit: 1,
                    ctx: vec![]
                }
            ),
            msg(
                1,
                3,
                1,
                MessageBody::Heartbeat {
                    commit: 1,
                    ctx: vec![]
                }
            ),
        ]
    );
}

#[test]
fn check_quorum_leader_steps_down_without_responses() {
    let mut c = Cluster::new(3, |id| Config {
        check_quorum: true,
        ..test_config(id)
    });
    c.elect(1);
    c.isolate(1);
    c.tick(1, 10); // first round: peers were active during the election
    assert_eq!(c.node(1).raft.role, Role::Leader);
    c.tick(1, 10);
    assert_eq!(c.node(1).raft.role, Role::Follower);
    assert_eq!(c.node(1).raft.leader_id, NO_NODE);
}

#[test]
fn transfer_leader_sends_timeout_now_and_target_wins() {
    let mut c = Cluster::new(3, |id| Config {
        check_quorum: true,
        pre_vote: true,
        ..test_config(id)
    });
    c.elect(1);
    c.node_mut(1).transfer_leader(2);
    // The core drops it (RaftError::ProposalDropped); the driver reports every refused
    // proposal as NoLeader, a leader is known here all the same.
    assert_eq!(
        c.node_mut(1).propose(b"x".to_vec()),
        Err(ProposeError::NoLeader)
    );
    c.stabilize();
    assert_eq!(c.leader(), Some(2));
    assert_eq!(c.node(2).raft.term, 2);
}

#[test]
fn term_zero_rpcs_other_than_forwards_are_dropped() {
    let mut n = new_node(&test_config(2), three_voters());
    n.step(msg(
        1,
        2,
        0,
        MessageBody::Heartbeat {
            commit: 0,
            ctx: vec![],
        },
    ))
    .unwrap();
    assert_eq!(n.soft_state().leader_id, 0);
    assert!(!n.has_ready());
}

#[test]
fn raw_node_and_messages_can_move_between_threads() {
    // Actors own a RawNode and ship messages across threads.
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<RawNode<MemStorage>>();
    assert_send_sync::<Message>();
    assert_send_sync::<Ready>();
    assert_send_sync::<MemStorage>();
}
