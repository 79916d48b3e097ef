//! Tests named after the claims of the Raft paper ("In Search of an Understandable Consensus
//! Algorithm", extended version) and the thesis ("Consensus: Bridging Theory and Practice"),
//! run on the in-test network in `testing.rs`.

use super::testing::{Cluster, test_config};
use super::*;

fn ent(term: u64, index: u64, data: &[u8]) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Normal,
        data: data.to_vec(),
    }
}

fn role(c: &Cluster, id: NodeId) -> Role {
    c.node(id).status().soft_state.role
}

fn term(c: &Cluster, id: NodeId) -> u64 {
    c.node(id).status().hard_state.term
}

/// Asserts the Log Matching property on every pair of nodes: if two logs contain an entry
/// with the same index and term, the logs are identical up to that index (§5.3).
fn assert_log_matching(c: &Cluster) {
    let logs: Vec<Vec<Entry>> = c.nodes.keys().map(|id| c.log_of(*id)).collect();
    for a in &logs {
        for b in &logs {
            for (i, (ea, eb)) in a.iter().zip(b).enumerate() {
                if ea.term == eb.term {
                    assert_eq!(a[..=i], b[..=i], "logs differ before a common entry {ea}");
                }
            }
        }
    }
}

// ----- §5.1 terms ---------------------------------------------------------------------------

#[test]
fn test_5_1_leader_steps_down_on_higher_term() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    let m = Message {
        from: 2,
        to: 1,
        term: 5,
        body: MessageBody::AppendEntriesResponse {
            reject: false,
            index: 0,
            reject_hint: 0,
            log_term: 0,
        },
    };
    c.node_mut(1).step(m).unwrap();
    assert_eq!(role(&c, 1), Role::Follower);
    assert_eq!(term(&c, 1), 5);
    assert_eq!(
        c.node(1).status().hard_state.vote,
        0,
        "a new term clears the vote"
    );
}

#[test]
fn test_5_1_stale_term_requests_are_rejected() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.elect(2); // term 2
    let stale = Message {
        from: 3,
        to: 2,
        term: 1,
        body: MessageBody::RequestVote {
            pre_vote: false,
            leader_transfer: false,
            last_log_index: 9,
            last_log_term: 9,
        },
    };
    c.node_mut(2).step(stale).unwrap();
    assert_eq!(role(&c, 2), Role::Leader);
    assert_eq!(term(&c, 2), 2);
    assert!(
        c.driver(2).is_settled(),
        "nothing is answered to a stale RequestVote"
    );
}

// ----- §5.2 leader election ------------------------------------------------------------------

#[test]
fn test_5_2_follower_starts_election_after_timeout() {
    let mut c = Cluster::with_nodes(3);
    let n = c.tick_election(1);
    assert!(
        (10..20).contains(&n),
        "randomized timeout in [election_tick, 2*election_tick)"
    );
    assert_eq!(role(&c, 1), Role::Candidate);
    assert_eq!(term(&c, 1), 1);
    assert_eq!(c.node(1).status().hard_state.vote, 1);
}

#[test]
fn test_5_2_leader_election_3_nodes() {
    let mut c = Cluster::with_nodes(3);
    c.tick_election(1);
    c.stabilize();
    assert_eq!(c.leader(), Some(1));
    for id in 2..=3 {
        assert_eq!(role(&c, id), Role::Follower);
        assert_eq!(c.node(id).status().soft_state.leader_id, 1);
    }
}

#[test]
fn test_5_2_leader_election_5_nodes_with_two_down() {
    let mut c = Cluster::with_nodes(5);
    c.isolate(4);
    c.isolate(5);
    c.tick_election(1);
    c.stabilize();
    assert_eq!(c.leader(), Some(1), "3 of 5 is a majority");
}

#[test]
fn test_5_2_no_leader_without_majority() {
    let mut c = Cluster::with_nodes(5);
    for id in 3..=5 {
        c.isolate(id);
    }
    c.tick_election(1);
    c.stabilize();
    assert_eq!(
        role(&c, 1),
        Role::Candidate,
        "2 of 5 votes is not a majority"
    );
    c.tick_election(1);
    c.stabilize();
    assert_eq!(
        (role(&c, 1), term(&c, 1)),
        (Role::Candidate, 2),
        "a candidate that times out starts a new term"
    );
}

#[test]
fn test_5_2_each_node_votes_for_at_most_one_candidate_per_term() {
    let mut c = Cluster::with_nodes(3);
    // Nodes 1 and 2 campaign in term 1 at the same time; 3 sees 1's request first.
    c.node_mut(1).campaign().unwrap();
    c.node_mut(2).campaign().unwrap();
    c.stabilize();
    assert_eq!(c.node(3).status().hard_state.vote, 1);
    assert_eq!(c.leader(), Some(1));
    assert_eq!(
        role(&c, 2),
        Role::Follower,
        "the loser learns of the leader from AppendEntries"
    );
}

#[test]
fn test_5_2_candidate_returns_to_follower_on_append_from_leader_of_same_term() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.node_mut(2).campaign().unwrap(); // term 2, isolated from results below
    c.in_flight.clear();
    let _ = c.process_ready(2);
    c.in_flight.clear();
    // A leader of term 2 (node 3, say) appends to 2.
    let m = Message {
        from: 3,
        to: 2,
        term: 2,
        body: MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![],
            commit: 1,
        },
    };
    c.node_mut(2).step(m).unwrap();
    assert_eq!(role(&c, 2), Role::Follower);
    assert_eq!(c.node(2).status().soft_state.leader_id, 3);
}

#[test]
fn test_5_2_votes_survive_restart() {
    let mut c = Cluster::with_nodes(3);
    c.node_mut(1).campaign().unwrap();
    c.process_ready(1);
    c.deliver(3);
    c.process_ready(3); // vote for 1 persisted
    c.restart(3);
    let m = Message {
        from: 2,
        to: 3,
        term: 1,
        body: MessageBody::RequestVote {
            pre_vote: false,
            leader_transfer: false,
            last_log_index: 0,
            last_log_term: 0,
        },
    };
    c.node_mut(3).step(m).unwrap();
    let rd = c.process_ready(3).unwrap();
    assert_eq!(
        rd.persisted_messages,
        vec![Message {
            from: 3,
            to: 2,
            term: 1,
            body: MessageBody::RequestVoteResponse {
                pre_vote: false,
                reject: true
            }
        }]
    );
}

// ----- §5.3 log replication ------------------------------------------------------------------

#[test]
fn test_5_3_leader_commits_entry_replicated_on_majority() {
    let mut c = Cluster::with_nodes(5);
    c.elect(1);
    c.isolate(4);
    c.isolate(5);
    c.node_mut(1).propose(b"x".to_vec()).unwrap();
    c.stabilize();
    for id in 1..=3 {
        assert_eq!(c.applied[&id].last(), Some(&ent(1, 2, b"x")), "node {id}");
    }
    assert_eq!(
        c.applied[&4].len(),
        1,
        "isolated nodes only applied the first no-op"
    );
}

#[test]
fn test_5_3_follower_rejects_append_that_fails_consistency_check() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    let m = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 3,
            prev_log_term: 1,
            entries: vec![ent(1, 4, b"")],
            commit: 1,
        },
    };
    c.node_mut(2).step(m).unwrap();
    let rd = c.process_ready(2).unwrap();
    assert!(rd.entries.is_empty());
    assert!(matches!(
        rd.persisted_messages[0].body,
        MessageBody::AppendEntriesResponse {
            reject: true,
            index: 3,
            ..
        }
    ));
}

#[test]
fn test_5_3_log_matching_after_partitions() {
    let mut c = Cluster::with_nodes(5);
    c.elect(1);
    // Leader 1 with node 2 on the minority side appends entries that never commit.
    c.isolate(1);
    c.isolate(2);
    c.cut.remove(&(1, 2));
    c.cut.remove(&(2, 1));
    for d in [b"a", b"b", b"c"] {
        c.node_mut(1).propose(d.to_vec()).unwrap();
    }
    c.stabilize();
    assert_eq!(c.log_of(2).len(), 4, "node 2 holds the uncommitted entries");
    // Majority side elects 3 and commits other entries.
    c.tick_election(3);
    c.stabilize();
    assert_eq!(c.leader(), Some(3));
    c.node_mut(3).propose(b"z".to_vec()).unwrap();
    c.stabilize();
    c.heal();
    c.tick_heartbeat(3);
    c.stabilize();
    for id in 1..=5 {
        assert_eq!(
            c.log_of(id),
            c.log_of(3),
            "node {id} converged to the leader's log"
        );
    }
    assert_log_matching(&c);
    assert!(
        c.log_of(1).iter().all(|e| e.data != b"a"),
        "uncommitted entries were overwritten"
    );
}

// ----- §5.4 safety -----------------------------------------------------------------------------

#[test]
fn test_5_4_1_vote_rejected_for_stale_log() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.isolate(3);
    c.node_mut(1).propose(b"x".to_vec()).unwrap();
    c.stabilize();
    c.heal();
    c.node_mut(3).campaign().unwrap();
    c.stabilize();
    assert_ne!(role(&c, 3), Role::Leader, "3 lacks the committed entry 1/2");
    assert_eq!(
        c.node(1).status().hard_state.vote,
        0,
        "node 1 did not vote for 3 in term 2"
    );
    assert_eq!(c.node(2).status().hard_state.vote, 0);
}

#[test]
fn test_5_4_1_vote_granted_for_longer_log_of_same_term() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.isolate(2);
    c.node_mut(1).propose(b"x".to_vec()).unwrap();
    c.stabilize();
    c.heal();
    // 3 has 1/2, 2 does not: 3 wins against 2's vote.
    c.node_mut(3).campaign().unwrap();
    c.stabilize();
    assert_eq!(c.leader(), Some(3));
}

/// Figure 8: an entry from an earlier term stored on a majority is not committed by counting
/// replicas; it commits only once an entry of the leader's own term is on a majority.
#[test]
fn test_5_4_2_leader_does_not_commit_prior_term_by_counting() {
    // Node 1 is leader of term 2 and its log has 1/2 (from term 1) on a majority, but its own
    // term-2 no-op is not yet acked by anybody: commit must stay at 1.
    let mut storage = MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]));
    storage
        .append(&[ent(1, 1, b""), ent(1, 2, b"old")])
        .unwrap();
    storage.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 1,
    });
    let mut c = Cluster::with_nodes(3);
    for id in 1..=3 {
        c.add_node(test_config(id), storage.clone());
    }
    c.node_mut(1).campaign().unwrap();
    // Election: 1 gets votes, becomes leader in term 2, appends 2/3.
    c.process_ready(1);
    c.deliver(2);
    c.deliver(3);
    c.process_ready(2);
    c.process_ready(3);
    c.deliver(1);
    assert_eq!(role(&c, 1), Role::Leader);
    let rd = c.process_ready(1).unwrap(); // persists 2/3, sends AppendEntries
    assert_eq!(rd.entries, vec![ent(2, 3, b"")]);
    // Followers ack only index 2 (e.g. a duplicate ack) — 1/2 is on all three nodes.
    for from in [2, 3] {
        let ack = Message {
            from,
            to: 1,
            term: 2,
            body: MessageBody::AppendEntriesResponse {
                reject: false,
                index: 2,
                reject_hint: 0,
                log_term: 0,
            },
        };
        c.node_mut(1).step(ack).unwrap();
    }
    assert_eq!(
        c.node(1).status().hard_state.commit,
        1,
        "1/2 is not committed by counting replicas"
    );
    c.in_flight.clear();
    let ack = Message {
        from: 2,
        to: 1,
        term: 2,
        body: MessageBody::AppendEntriesResponse {
            reject: false,
            index: 3,
            reject_hint: 0,
            log_term: 0,
        },
    };
    c.node_mut(1).step(ack).unwrap();
    assert_eq!(
        c.node(1).status().hard_state.commit,
        3,
        "committing 2/3 commits 1/2 indirectly"
    );
}

#[test]
fn test_5_4_3_leader_completeness_new_leader_has_all_committed_entries() {
    let mut c = Cluster::with_nodes(5);
    c.elect(1);
    for d in [b"a", b"b"] {
        c.node_mut(1).propose(d.to_vec()).unwrap();
        c.stabilize();
    }
    c.isolate(1);
    c.tick_election(4);
    c.stabilize();
    let leader = c.leader().filter(|l| *l != 1).expect("new leader");
    let committed: Vec<Entry> = c.applied[&1].clone();
    let log = c.log_of(leader);
    assert_eq!(&log[..committed.len()], &committed[..]);
}

// ----- persistence -----------------------------------------------------------------------------

#[test]
fn test_figure_2_persist_before_answering_rpcs() {
    // Vote grants and append acks are never in `messages`, only in `persisted_messages`.
    let mut c = Cluster::with_nodes(3);
    c.node_mut(1).campaign().unwrap();
    let mut readies = Vec::new();
    c.stabilize_nodes(&[1, 2, 3], &mut |s| {
        if let super::testing::Step::Ready(_, rd) = s {
            readies.push(rd)
        }
    });
    c.node_mut(1).propose(b"x".to_vec()).unwrap();
    c.stabilize_nodes(&[1, 2, 3], &mut |s| {
        if let super::testing::Step::Ready(_, rd) = s {
            readies.push(rd)
        }
    });
    let mut acks = 0;
    for rd in &readies {
        for m in &rd.messages {
            assert!(
                !matches!(
                    m.body,
                    MessageBody::RequestVoteResponse { .. }
                        | MessageBody::AppendEntriesResponse { .. }
                ),
                "{m} must wait for persistence"
            );
        }
        acks += rd.persisted_messages.len();
    }
    assert!(acks >= 6);
}

// ----- thesis: pre-vote, check quorum, ReadIndex ------------------------------------------------

#[test]
fn test_thesis_9_6_prevote_keeps_partitioned_node_from_raising_term() {
    let mut c = Cluster::new(3, |id| Config {
        pre_vote: true,
        ..test_config(id)
    });
    c.elect(1);
    c.isolate(3);
    for _ in 0..5 {
        c.tick_election(3);
        c.stabilize();
    }
    assert_eq!(term(&c, 3), 1);
    c.heal();
    c.tick_heartbeat(1);
    c.stabilize();
    assert_eq!(c.leader(), Some(1));
    assert_eq!(term(&c, 1), 1, "the leader was not disrupted");
}

#[test]
fn test_thesis_9_6_prevote_still_elects_when_leader_is_gone() {
    let mut c = Cluster::new(3, |id| Config {
        pre_vote: true,
        check_quorum: true,
        ..test_config(id)
    });
    c.elect(1);
    c.isolate(1);
    // Nodes 2 and 3 tick together; the first whose randomized timeout fires asks for
    // pre-votes, which are granted once the other's leader lease (election_tick) expired.
    let mut leader = None;
    for _ in 0..100 {
        c.tick(2, 1);
        c.tick(3, 1);
        c.stabilize();
        leader = c.leader().filter(|l| *l != 1);
        if leader.is_some() {
            break;
        }
    }
    assert!(leader.is_some(), "a new leader is elected among 2 and 3");
    assert_eq!(term(&c, leader.unwrap()), 2);
}

#[test]
fn test_thesis_6_2_check_quorum_deposes_partitioned_leader() {
    let mut c = Cluster::new(3, |id| Config {
        check_quorum: true,
        ..test_config(id)
    });
    c.elect(1);
    c.isolate(1);
    c.tick_election(1);
    c.tick_election(1);
    assert_eq!(role(&c, 1), Role::Follower);
}

#[test]
fn test_thesis_6_4_read_index_is_not_served_by_deposed_leader() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.isolate(1);
    c.tick_election(2);
    c.stabilize();
    c.node_mut(2).propose(b"new".to_vec()).unwrap();
    c.stabilize();
    // Old leader 1 still believes it leads term 1; its read can never complete.
    c.read_index(1, b"r".to_vec()).unwrap();
    c.stabilize();
    assert!(
        c.read_states[&1].is_empty(),
        "a stale leader must not return a read state"
    );
    // The real leader serves a read at an index that includes the new write.
    c.read_index(2, b"r2".to_vec()).unwrap();
    c.stabilize();
    assert_eq!(
        c.read_states[&2],
        vec![ReadState {
            index: 3,
            request_ctx: b"r2".to_vec()
        }]
    );
}

// ----- thesis §4.3: joint consensus -------------------------------------------------------------

fn joint_cluster() -> Cluster {
    // C_new = {1,2,3}, C_old = {1,4,5}.
    let cs = ConfState {
        voters: [1, 2, 3].into(),
        voters_outgoing: [1, 4, 5].into(),
        ..Default::default()
    };
    let mut c = Cluster::with_nodes(5);
    for id in 1..=5 {
        c.add_node(test_config(id), MemStorage::new_with_conf_state(cs.clone()));
    }
    c
}

#[test]
fn test_thesis_4_3_joint_election_needs_both_majorities() {
    let mut c = joint_cluster();
    c.isolate(4);
    c.isolate(5);
    c.elect(1);
    assert_eq!(
        role(&c, 1),
        Role::Candidate,
        "votes of 1,2,3 are no majority of C_old"
    );
    c.heal();
    c.tick_election(1);
    c.stabilize();
    assert_eq!(c.leader(), Some(1));
}

#[test]
fn test_thesis_4_3_joint_commit_needs_both_majorities() {
    let mut c = joint_cluster();
    c.elect(1);
    c.isolate(2);
    c.isolate(3);
    c.node_mut(1).propose(b"x".to_vec()).unwrap();
    c.stabilize();
    assert_eq!(
        c.node(1).status().hard_state.commit,
        1,
        "1,4,5 are no majority of C_new"
    );
    c.heal();
    c.tick_heartbeat(1);
    c.stabilize();
    assert_eq!(c.node(1).status().hard_state.commit, 2);
}

#[test]
fn test_thesis_4_3_removed_leader_hands_over_after_applying_its_removal() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    c.node_mut(1)
        .propose_conf_change(&ConfChange::single(ConfChangeType::RemoveNode, 1))
        .unwrap();
    c.stabilize();
    // Node 1 keeps leading but is no voter; its TimeoutNow to the most up-to-date remaining
    // voter (2 on the tie) may arrive before 2 applied the removal and be ignored, so it
    // retries after each election timeout until 2 takes over.
    assert_eq!(c.node(1).status().conf_state.voters, [2, 3].into());
    for _ in 0..3 {
        c.tick_election(1);
        c.stabilize();
    }
    assert_eq!(c.leader(), Some(2));
    assert_eq!(c.node(2).status().conf_state.voters, [2, 3].into());
    assert_eq!(c.node(3).status().conf_state.voters, [2, 3].into());
    // Node 1 is no voter any more: it cannot campaign.
    assert_eq!(c.node_mut(1).campaign(), Err(RaftError::NotVoter));
    c.node_mut(2).propose(b"x".to_vec()).unwrap();
    c.stabilize();
    let st = c.node(2).status();
    assert_eq!(c.node(3).status().hard_state.commit, st.hard_state.commit);
    assert_eq!(st.hard_state.commit, st.last_index);
}

/// The liveness bug the 3-node chaos test found: a leader applies its own removal while it
/// holds an entry the only remaining voter lacks, and before that voter learned the removal
/// committed. Had the leader stepped down, voter 3 (still in {2,3}) would need 2's vote,
/// which 2 refuses (its log is longer), and 2, no voter, never campaigns: no leader ever.
#[test]
fn test_thesis_4_3_removed_leader_with_longer_log_does_not_wedge_the_cluster() {
    let mut c = Cluster::with_nodes(3);
    c.elect(2);
    c.node_mut(2)
        .propose_conf_change(&ConfChange::single(ConfChangeType::RemoveNode, 1))
        .unwrap();
    c.stabilize();
    c.node_mut(2)
        .propose_conf_change(&ConfChange::single(ConfChangeType::RemoveNode, 2))
        .unwrap();
    // Replicate the removal to 3 and commit it on 2, but hold back 2's commit notice to 3.
    c.process_ready(2);
    c.deliver(3);
    c.process_ready(3);
    c.deliver(2);
    let removal = c.node(2).status().last_index;
    assert_eq!(c.node(2).status().hard_state.commit, removal);
    // A proposal lands on 2 before it applies the removal; 3 never sees it.
    c.node_mut(2).propose(b"late".to_vec()).unwrap();
    c.process_ready(2);
    assert_eq!(c.node(2).status().conf_state.voters, [3].into());
    c.in_flight.clear();
    assert!(c.node(3).status().hard_state.commit < removal);
    // Heal nothing else: timeouts alone must produce a leader among the voters.
    for _ in 0..50 {
        c.tick(2, 1);
        c.tick(3, 1);
        c.stabilize();
        if c.leader() == Some(3) {
            break;
        }
    }
    assert_eq!(c.leader(), Some(3));
    assert_eq!(c.node(3).status().conf_state.voters, [3].into());
}

/// Thesis §6.4: a leader may answer a ReadIndex alone only when it is the single voter. A
/// removed leader still leading a one-voter configuration must confirm with that voter (it
/// may already have been deposed there), else the read could miss newer commits.
#[test]
fn test_thesis_6_4_removed_leader_of_a_single_voter_confirms_reads() {
    let mut c = Cluster::with_nodes(2);
    c.elect(1);
    c.node_mut(1)
        .propose_conf_change(&ConfChange::single(ConfChangeType::RemoveNode, 1))
        .unwrap();
    c.isolate(2);
    // Commit the removal on 1 (via 2's ack) and let 1 apply it; 2's later traffic is cut.
    c.process_ready(1);
    c.heal();
    c.deliver(2);
    c.process_ready(2);
    c.deliver(1);
    c.process_ready(1);
    c.isolate(1);
    c.stabilize();
    assert_eq!(role(&c, 1), Role::Leader);
    assert_eq!(c.node(1).status().conf_state.voters, [2].into());
    c.read_index(1, b"r".to_vec()).unwrap();
    c.stabilize();
    assert!(
        c.read_states.get(&1).is_none_or(|r| r.is_empty()),
        "no read point without 2's confirmation"
    );
}
