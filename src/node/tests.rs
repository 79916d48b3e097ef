//! Unit tests of the node driver: returned effects, in order, and the resulting state.

use rand::SeedableRng;

use super::*;
use crate::raft::{ConfChangeType, MessageBody};

fn driver(id: NodeId, voters: &[NodeId]) -> NodeDriver {
    let storage = MemStorage::new_with_conf_state(ConfState::from_voters(voters.iter().copied()));
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(id));
    NodeDriver::new(&Config::new(id), storage, rng).expect("valid node")
}

/// Carries out effects at once (a disk that never fails), returning everything seen.
fn run_to_quiet(d: &mut NodeDriver) -> Vec<Effect> {
    let mut seen = Vec::new();
    loop {
        let effects = d.effects();
        if effects.is_empty() {
            return seen;
        }
        for e in effects {
            if let Effect::Persist(w) = &e {
                d.persisted(w.clone()).expect("the write in flight");
            }
            seen.push(e);
        }
    }
}

fn kinds(effects: &[Effect]) -> Vec<&'static str> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Send(_) => "send",
            Effect::Persist(_) => "persist",
            Effect::Apply(_) => "apply",
            Effect::ConfChangeApplied { .. } => "conf",
            Effect::ReadReady { .. } => "read-ready",
            Effect::ReadFailed { .. } => "read-failed",
            Effect::StatusChanged(_) => "status",
            Effect::CompactLog { .. } => "compact",
        })
        .collect()
}

fn leader(id: NodeId) -> NodeDriver {
    let mut d = driver(id, &[id]);
    d.campaign().unwrap();
    run_to_quiet(&mut d);
    assert!(d.status().is_leader);
    d
}

#[test]
fn single_voter_elects_itself_and_applies_its_empty_entry_after_persisting() {
    let mut d = driver(1, &[1]);
    d.campaign().unwrap();
    let effects = run_to_quiet(&mut d);
    let status = effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::StatusChanged(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a status change");
    assert_eq!(
        status,
        RaftStatus {
            term: 1,
            leader_id: 1,
            commit_index: 1,
            is_leader: true
        }
    );
    let persist_at = kinds(&effects)
        .iter()
        .position(|k| *k == "persist")
        .unwrap();
    let apply_at = kinds(&effects).iter().position(|k| *k == "apply").unwrap();
    assert!(persist_at < apply_at, "{:?}", kinds(&effects));
    assert!(d.is_settled());
    assert_eq!(d.raw().status().applied, 1);
}

#[test]
fn no_new_ready_while_a_write_is_in_flight_then_one_write_covers_all_proposals() {
    let mut d = leader(1);
    d.propose(b"a".to_vec()).unwrap();
    let first = d.effects();
    let Some(Effect::Persist(w1)) = first.iter().find(|e| matches!(e, Effect::Persist(_))) else {
        panic!("expected a write: {first:?}");
    };
    assert_eq!(w1.entries.len(), 1);
    d.propose(b"b".to_vec()).unwrap();
    d.propose(b"c".to_vec()).unwrap();
    assert!(d.effects().is_empty(), "blocked on the write in flight");
    assert!(d.is_persisting());
    d.persisted(w1.clone()).unwrap();
    let after = d.effects();
    let writes: Vec<&Write> = after
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(w) => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0]
            .entries
            .iter()
            .map(|e| e.data.clone())
            .collect::<Vec<_>>(),
        vec![b"b".to_vec(), b"c".to_vec()],
        "group commit: both later proposals in one write"
    );
    assert!(writes[0].sync);
}

#[test]
fn persisted_messages_leave_only_after_the_write() {
    // A follower that receives AppendEntries answers only after persisting them.
    let mut d = driver(2, &[1, 2]);
    let append = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![Entry {
                term: 1,
                index: 1,
                kind: EntryKind::Normal,
                data: b"x".to_vec(),
            }],
            commit: 0,
        },
    };
    d.step(append).unwrap();
    let effects = d.effects();
    let persist = effects.iter().position(|e| matches!(e, Effect::Persist(_)));
    let ack_before = effects.iter().any(|e| {
        matches!(e, Effect::Send(ms) if ms.iter().any(|m| matches!(m.body, MessageBody::AppendEntriesResponse { .. })))
    });
    assert!(persist.is_some(), "{effects:?}");
    assert!(
        !ack_before,
        "ack sent before the write was durable: {effects:?}"
    );
    let Some(Effect::Persist(w)) = persist.map(|i| effects[i].clone()) else {
        unreachable!()
    };
    d.persisted(w).unwrap();
    let after = d.effects();
    assert!(
        matches!(&after[0], Effect::Send(ms) if matches!(ms[0].body, MessageBody::AppendEntriesResponse { reject: false, index: 1, .. })),
        "{after:?}"
    );
}

#[test]
fn a_wrong_or_unexpected_persist_report_is_refused_and_changes_nothing() {
    let mut d = leader(1);
    assert_eq!(
        d.persisted(Write::default()),
        Err(DriverError::NothingInFlight)
    );
    d.propose(b"a".to_vec()).unwrap();
    let effects = d.effects();
    let Some(Effect::Persist(w)) = effects
        .into_iter()
        .find(|e| matches!(e, Effect::Persist(_)))
    else {
        panic!("expected a write")
    };
    let mut wrong = w.clone();
    wrong.entries.clear();
    assert!(matches!(
        d.persisted(wrong),
        Err(DriverError::WrongWrite { .. })
    ));
    assert!(d.is_persisting(), "still waiting for the real write");
    d.persisted(w).unwrap();
    assert!(!d.is_persisting());
}

#[test]
fn read_index_on_a_leader_is_answered_with_its_id_and_without_a_leader_is_refused() {
    let mut d = driver(1, &[1]);
    assert_eq!(d.read_index(7), Err(ProposeError::NoLeader));
    let mut d = leader(1);
    d.read_index(7).unwrap();
    let effects = run_to_quiet(&mut d);
    assert!(
        effects.contains(&Effect::ReadReady { id: 7, index: 1 }),
        "{effects:?}"
    );
    assert_eq!(d.pending_reads().count(), 0);
}

#[test]
fn a_leader_change_fails_every_pending_read() {
    // Follower 2 of a 3-member cluster learns leader 1, asks for a read (forwarded to 1, never
    // answered), then hears of a newer term without leader: the read fails.
    let mut d = follower_of_1(2, 2);
    d.read_index(5).unwrap();
    let forwarded = d.effects();
    assert!(
        matches!(&forwarded[..], [Effect::Send(ms)] if matches!(ms[0].body, MessageBody::ReadIndex { .. })),
        "{forwarded:?}"
    );
    for _ in 0..30 {
        d.tick(); // election timeout: becomes a candidate, leader unknown
    }
    let effects = run_to_quiet(&mut d);
    assert!(
        effects.contains(&Effect::ReadFailed {
            id: 5,
            error: ProposeError::LeaderChanged
        }),
        "{effects:?}"
    );
}

#[test]
fn committed_conf_change_is_applied_to_raft_and_reported_after_the_entries() {
    let mut d = leader(1);
    d.propose_conf_change(&ConfChange::single(ConfChangeType::AddLearner, 2))
        .unwrap();
    let effects = run_to_quiet(&mut d);
    let ks = kinds(&effects);
    let apply = ks.iter().rposition(|k| *k == "apply").unwrap();
    let conf = ks
        .iter()
        .position(|k| *k == "conf")
        .expect("conf change applied");
    assert!(apply < conf, "{ks:?}");
    let Effect::ConfChangeApplied { index, conf_state } = &effects[conf] else {
        unreachable!()
    };
    assert_eq!(*index, 2);
    assert_eq!(
        conf_state.learners.iter().copied().collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(d.raw().status().conf_state, *conf_state);
    assert_eq!(d.raw().storage().conf_state(), conf_state);
}

#[test]
fn read_contexts_carry_the_member_and_do_not_decode_for_another() {
    let ctx = encode_read_ctx(3, 42);
    assert_eq!(decode_read_ctx(3, &ctx), Some(42));
    assert_eq!(decode_read_ctx(4, &ctx), None);
    assert_eq!(decode_read_ctx(3, &ctx[..8]), None);
}

#[test]
fn a_restarted_driver_publishes_its_restored_term_and_commit_index() {
    let mut storage = MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]));
    storage
        .append(&[Entry {
            term: 5,
            index: 1,
            kind: EntryKind::Normal,
            data: Vec::new(),
        }])
        .unwrap();
    storage.set_hard_state(HardState {
        term: 5,
        vote: 2,
        commit: 1,
    });
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let mut d = NodeDriver::new(&Config::new(1), storage, rng).unwrap();
    assert_eq!((d.status().term, d.status().commit_index), (5, 1));
    // A heartbeat of the same term names the leader; term and commit stay as restored.
    d.step(Message {
        from: 2,
        to: 1,
        term: 5,
        body: MessageBody::Heartbeat {
            commit: 1,
            ctx: Vec::new(),
        },
    })
    .unwrap();
    run_to_quiet(&mut d);
    assert_eq!(
        d.status(),
        &RaftStatus {
            term: 5,
            leader_id: 2,
            commit_index: 1,
            is_leader: false
        }
    );
}

/// A follower of leader 1 in a 3-member cluster, with its status published.
fn follower_of_1(id: NodeId, seed: u64) -> NodeDriver {
    let storage = MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]));
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let mut d = NodeDriver::new(&Config::new(id), storage, rng).unwrap();
    d.step(Message {
        from: 1,
        to: id,
        term: 1,
        body: MessageBody::Heartbeat {
            commit: 0,
            ctx: Vec::new(),
        },
    })
    .unwrap();
    run_to_quiet(&mut d);
    assert_eq!(d.status().leader_id, 1);
    d
}

/// The ReadIndex requests among `effects`, by context.
fn read_requests(effects: &[Effect]) -> Vec<Vec<u8>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(ms) => Some(ms),
            _ => None,
        })
        .flatten()
        .filter_map(|m| match &m.body {
            MessageBody::ReadIndex { ctx } => Some(ctx.clone()),
            _ => None,
        })
        .collect()
}

fn read_response(to: NodeId, ctx: Vec<u8>, index: u64) -> Message {
    Message {
        from: 1,
        to,
        term: 1,
        body: MessageBody::ReadIndexResponse { index, ctx },
    }
}

#[test]
fn reads_share_one_confirmation_and_later_reads_wait_for_the_next_round() {
    let mut d = follower_of_1(2, 2);
    d.read_index(1).unwrap();
    let first = read_requests(&d.effects());
    d.read_index(2).unwrap();
    d.read_index(3).unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        read_requests(&d.effects()).is_empty(),
        "reads 2 and 3 wait for the round in flight"
    );
    d.step(read_response(2, first[0].clone(), 5)).unwrap();
    let effects = d.effects();
    assert!(effects.contains(&Effect::ReadReady { id: 1, index: 5 }));
    let second = read_requests(&effects);
    assert_eq!(
        second.len(),
        1,
        "one request for both queued reads: {effects:?}"
    );
    assert_ne!(second[0], first[0]);
    d.step(read_response(2, second[0].clone(), 7)).unwrap();
    let effects = d.effects();
    assert!(effects.contains(&Effect::ReadReady { id: 2, index: 7 }));
    assert!(effects.contains(&Effect::ReadReady { id: 3, index: 7 }));
    assert_eq!(d.pending_reads().count(), 0);
}

#[test]
fn an_unanswered_round_is_resent_under_the_same_context() {
    let mut d = follower_of_1(2, 2);
    d.read_index(1).unwrap();
    let first = read_requests(&d.effects());
    for _ in 0..READ_RETRY_TICKS - 1 {
        d.tick();
    }
    assert!(read_requests(&d.effects()).is_empty());
    d.tick();
    assert_eq!(read_requests(&d.effects()), first, "resent as is");
    d.step(read_response(2, first[0].clone(), 3)).unwrap();
    assert!(d.effects().contains(&Effect::ReadReady { id: 1, index: 3 }));
}

/// Seed 403 of the simulator: a ReadIndex answer addressed to a member's previous
/// incarnation arrived after the restart and confirmed a newer read at a stale index.
#[test]
fn an_answer_for_a_previous_incarnation_does_not_confirm_a_read() {
    let mut before = follower_of_1(2, 7);
    before.read_index(1).unwrap();
    let old_ctx = read_requests(&before.effects()).remove(0);
    let mut after = follower_of_1(2, 8); // restarted: another PRNG draw
    after.read_index(1).unwrap();
    let new_ctx = read_requests(&after.effects()).remove(0);
    assert_ne!(old_ctx, new_ctx);
    after.step(read_response(2, old_ctx, 4)).unwrap();
    assert!(
        !after
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::ReadReady { .. })),
        "the old incarnation's answer must not serve the new read"
    );
}

#[test]
fn while_a_write_is_in_flight_the_leader_keeps_replicating() {
    let storage = MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]));
    let config = Config {
        pre_vote: false,
        ..Config::new(1)
    };
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let mut d = NodeDriver::new(&config, storage, rng).unwrap();
    d.campaign().unwrap();
    // Win the election: grants from 2 and 3.
    let mut effects = run_to_quiet(&mut d);
    for from in [2, 3] {
        d.step(Message {
            from,
            to: 1,
            term: 1,
            body: MessageBody::RequestVoteResponse {
                pre_vote: false,
                reject: false,
            },
        })
        .unwrap();
    }
    effects.extend(run_to_quiet(&mut d));
    assert!(d.status().is_leader, "{effects:?}");
    // The followers ack the leader's empty entry: their progress moves to Replicate.
    for from in [2, 3] {
        d.step(Message {
            from,
            to: 1,
            term: 1,
            body: MessageBody::AppendEntriesResponse {
                reject: false,
                index: 1,
                reject_hint: 0,
                log_term: 0,
            },
        })
        .unwrap();
    }
    run_to_quiet(&mut d);
    d.propose(b"a".to_vec()).unwrap();
    let first = d.effects();
    assert!(first.iter().any(|e| matches!(e, Effect::Persist(_))));
    assert!(d.is_persisting());
    // Another proposal while the first write is in flight: its AppendEntries leave now.
    d.propose(b"b".to_vec()).unwrap();
    let during = d.effects();
    let appends: Vec<&Message> = during
        .iter()
        .filter_map(|e| match e {
            Effect::Send(ms) => Some(ms),
            _ => None,
        })
        .flatten()
        .filter(|m| matches!(&m.body, MessageBody::AppendEntries { entries, .. } if entries.iter().any(|e| e.data == b"b")))
        .collect();
    assert_eq!(appends.len(), 2, "pipelined to both followers: {during:?}");
    assert!(
        !during.iter().any(|e| matches!(e, Effect::Persist(_))),
        "still one write in flight"
    );
}

/// A restart starts the core from the stored configuration (bootstrap's here) and re-applies
/// the configuration changes the store had applied: they are not handed out again
/// (`Config::applied`), yet the quorum must count the member they added.
#[test]
fn a_restart_reapplies_the_conf_changes_up_to_the_applied_index() {
    let mut d = leader(1);
    d.propose_conf_change(&ConfChange::single(ConfChangeType::AddVoter, 2))
        .unwrap();
    run_to_quiet(&mut d);
    let applied_conf = d.raw().status().conf_state;
    assert!(applied_conf.voters.contains(&2));
    let entries = d.raw().storage().all_entries().to_vec();
    let last = entries.last().unwrap().index;

    // What a member finds on disk: the bootstrap configuration, the log, applied = last.
    let mut storage = MemStorage::new_with_conf_state(ConfState::from_voters([1]));
    storage.append(&entries).unwrap();
    storage.set_hard_state(d.raw().hard_state());
    let mut config = Config::new(1);
    config.applied = last;
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(9));
    let restarted = NodeDriver::new(&config, storage, rng).unwrap();
    assert_eq!(restarted.raw().status().conf_state, applied_conf);
    assert_eq!(restarted.raw().storage().conf_state(), &applied_conf);

    // Without the applied index nothing is re-applied here: the entries come out of Ready.
    let mut storage = MemStorage::new_with_conf_state(ConfState::from_voters([1]));
    storage.append(&entries).unwrap();
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(9));
    let fresh = NodeDriver::new(&Config::new(1), storage, rng).unwrap();
    assert_eq!(fresh.raw().status().conf_state.voters.len(), 1);
}
