//! Randomized safety test: a small cluster under message loss, duplication, reordering,
//! partitions, and crashes (including a crash after a Ready's messages left but before its
//! persist), with the Raft safety properties checked after every step (Raft §5.2 Figure 3),
//! followed by a liveness phase that heals everything and requires convergence.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::testing::{Cluster, test_config};
use super::*;

#[derive(Clone, Debug)]
enum Action {
    Tick(NodeId),
    /// Tick every node `n` times.
    TickAll(u8),
    /// Process all Readies and deliver all messages (respecting cuts) until quiet.
    Stabilize,
    Propose(NodeId, u8),
    ReadIndex(NodeId),
    ProcessReady(NodeId),
    /// Deliver the in-flight message at this (wrapped) position: reorders.
    Deliver(usize),
    Drop(usize),
    Duplicate(usize),
    Isolate(NodeId),
    Heal,
    /// Crash and restart from durable storage.
    Restart(NodeId),
    /// The driver takes a Ready, its immediate messages leave, crash before persisting.
    CrashMidReady(NodeId),
    /// Propose a membership change at a node: (proposer, op, target, second target).
    /// op 0: add learner, 1: add voter, 2: remove, 3: joint {add voter a, remove b}.
    ConfChange(NodeId, u8, NodeId, NodeId),
}

fn action(n: u64) -> impl Strategy<Value = Action> {
    let id = 1..=n;
    prop_oneof![
        10 => id.clone().prop_map(Action::Tick),
        3 => (1u8..12).prop_map(Action::TickAll),
        3 => Just(Action::Stabilize),
        3 => (id.clone(), any::<u8>()).prop_map(|(i, d)| Action::Propose(i, d)),
        2 => id.clone().prop_map(Action::ReadIndex),
        10 => id.clone().prop_map(Action::ProcessReady),
        12 => any::<usize>().prop_map(Action::Deliver),
        2 => any::<usize>().prop_map(Action::Drop),
        1 => any::<usize>().prop_map(Action::Duplicate),
        1 => id.clone().prop_map(Action::Isolate),
        1 => Just(Action::Heal),
        1 => id.clone().prop_map(Action::Restart),
        1 => id.clone().prop_map(Action::CrashMidReady),
        1 => (id.clone(), 0u8..4, id.clone(), id).prop_map(|(p, op, a, b)| Action::ConfChange(p, op, a, b)),
    ]
}

struct Checker {
    /// term → leader seen in that term.
    leaders: BTreeMap<u64, NodeId>,
    /// node → durable (term, commit) last seen, to check monotonicity.
    last: BTreeMap<NodeId, (u64, u64)>,
    /// read ctx → highest commit index anywhere in the cluster when the read was issued.
    reads_issued: BTreeMap<Vec<u8>, u64>,
}

impl Checker {
    fn check(&mut self, c: &Cluster) -> std::result::Result<(), String> {
        for (id, driver) in &c.nodes {
            let node = driver.raw();
            let st = node.status();
            if st.soft_state.role == Role::Leader {
                let prev = *self.leaders.entry(st.hard_state.term).or_insert(*id);
                if prev != *id {
                    return Err(format!(
                        "election safety: {prev} and {id} lead term {}",
                        st.hard_state.term
                    ));
                }
            }
            // Durable term and commit never go back (in-memory ones may, after a crash).
            let hs = node.storage().hard_state();
            let (t, commit) = self.last.get(id).copied().unwrap_or((0, 0));
            if hs.term < t || hs.commit < commit {
                return Err(format!("node {id}: durable term/commit went back: {hs:?}"));
            }
            self.last.insert(*id, (hs.term, hs.commit));
        }
        // Linearizable reads (thesis §6.4): a read point covers every entry committed anywhere
        // before the read was issued.
        for rs in c.read_states.values().flatten() {
            let floor = self.reads_issued[&rs.request_ctx];
            if rs.index < floor {
                return Err(format!(
                    "read state index {} below commit {floor} at issue",
                    rs.index
                ));
            }
        }
        // Log Matching on durable logs.
        let logs: Vec<Vec<Entry>> = c.nodes.keys().map(|id| c.log_of(*id)).collect();
        for a in &logs {
            for b in &logs {
                let n = a.len().min(b.len());
                let common = (0..n).rev().find(|i| a[*i].term == b[*i].term);
                if let Some(i) = common.filter(|i| a[..=*i] != b[..=*i]) {
                    return Err(format!("log matching violated below index {}", i + 1));
                }
            }
        }
        // State Machine Safety: applied sequences are prefixes of each other.
        let applied: Vec<&Vec<Entry>> = c.applied.values().collect();
        for a in &applied {
            for b in &applied {
                let n = a.len().min(b.len());
                if a[..n] != b[..n] {
                    return Err("state machine safety: nodes applied different entries".into());
                }
            }
        }
        Ok(())
    }
}

fn restart(c: &mut Cluster, id: NodeId) {
    c.restart(id);
}

fn run(
    n: u64,
    pre_vote: bool,
    check_quorum: bool,
    actions: &[Action],
) -> std::result::Result<(), String> {
    let mut c = Cluster::new(n, |id| Config {
        pre_vote,
        check_quorum,
        ..test_config(id)
    });
    let mut checker = Checker {
        leaders: BTreeMap::new(),
        last: BTreeMap::new(),
        reads_issued: BTreeMap::new(),
    };
    for a in actions {
        match *a {
            Action::Tick(id) => c.tick(id, 1),
            Action::TickAll(k) => {
                for id in 1..=n {
                    c.tick(id, k as usize);
                }
            }
            Action::Stabilize => c.stabilize(),
            Action::Propose(id, d) => {
                let _ = c.node_mut(id).propose(vec![d]);
            }
            Action::ReadIndex(id) => {
                let ctx = (checker.reads_issued.len() as u64).to_be_bytes().to_vec();
                let floor = c
                    .nodes
                    .values()
                    .map(|x| x.raw().hard_state().commit)
                    .max()
                    .unwrap_or(0);
                checker.reads_issued.insert(ctx.clone(), floor);
                let _ = c.read_index(id, ctx);
            }
            Action::ProcessReady(id) => {
                c.process_ready(id);
            }
            Action::Deliver(i) if !c.in_flight.is_empty() => {
                let m = c.in_flight.remove(i % c.in_flight.len());
                if !c.cut.contains(&(m.from, m.to)) {
                    let _ = c.node_mut(m.to).step(m);
                }
            }
            Action::Drop(i) if !c.in_flight.is_empty() => {
                let len = c.in_flight.len();
                c.in_flight.remove(i % len);
            }
            Action::Duplicate(i) if !c.in_flight.is_empty() => {
                let m = c.in_flight[i % c.in_flight.len()].clone();
                c.in_flight.push(m);
            }
            Action::Isolate(id) => c.isolate(id),
            Action::Heal => c.heal(),
            Action::Restart(id) => restart(&mut c, id),
            Action::CrashMidReady(id) => c.crash_mid_ready(id),
            Action::ConfChange(p, op, a, b) => {
                let single = |t, id| ConfChangeSingle {
                    change_type: t,
                    node_id: id,
                };
                let changes = match op {
                    0 => vec![single(ConfChangeType::AddLearner, a)],
                    1 => vec![single(ConfChangeType::AddVoter, a)],
                    2 => vec![single(ConfChangeType::RemoveNode, a)],
                    _ => vec![
                        single(ConfChangeType::AddVoter, a),
                        single(ConfChangeType::RemoveNode, b),
                    ],
                };
                let cc = ConfChange {
                    changes,
                    ..Default::default()
                };
                let _ = c.node_mut(p).propose_conf_change(&cc);
            }
            _ => {}
        }
        checker.check(&c)?;
    }
    // Liveness: no faults; a leader must emerge and every node must converge.
    c.heal();
    let mut converged = false;
    for _ in 0..400 {
        for id in 1..=n {
            c.tick(id, 1);
        }
        c.stabilize();
        checker.check(&c)?;
        if let Some(l) = c.leader() {
            let st = c.node(l).status();
            let leader_log = c.log_of(l);
            // Only current members are replicated to; removed nodes may lag forever.
            let cs = &st.conf_state;
            let members: Vec<NodeId> = cs.voters.iter().chain(&cs.learners).copied().collect();
            if members.iter().all(|id| {
                let s = c.node(*id).status();
                s.applied == st.hard_state.commit && c.log_of(*id) == leader_log
            }) && st.hard_state.commit == st.last_index
                && cs.voters_outgoing.is_empty()
            {
                converged = true;
                break;
            }
        }
    }
    if !converged {
        let states: Vec<String> = c
            .nodes
            .values()
            .map(|driver| {
                let st = driver.raw().status();
                format!(
                    "{} {:?} term={} leader={} commit={} applied={} last={} conf={:?} log={:?}",
                    st.id,
                    st.soft_state.role,
                    st.hard_state.term,
                    st.soft_state.leader_id,
                    st.hard_state.commit,
                    st.applied,
                    st.last_index,
                    st.conf_state,
                    c.log_of(st.id)
                        .iter()
                        .map(|e| (e.index, e.term, e.kind))
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        return Err(format!(
            "cluster did not converge after healing:\n{}",
            states.join("\n")
        ));
    }
    Ok(())
}

/// Regression for the harness restart behind the recorded `safety_under_faults_3_nodes`
/// failure: a node restarted with `Config::applied = 0` replays every committed
/// configuration change, so it must start from its configuration as of index 0. Starting
/// from the latest (joint) configuration instead, replay rejects the first "enter joint",
/// leaves the *current* joint configuration on the replayed "leave", and re-enters the
/// current one with the wrong outgoing voters ({1,3} instead of {1,2}).
#[test]
fn restart_replays_conf_changes_from_the_boot_configuration() {
    let mut c = Cluster::with_nodes(3);
    c.elect(1);
    let change = |t, id| ConfChangeSingle {
        change_type: t,
        node_id: id,
    };
    // {1,2,3} → joint {1,2}&{1,2,3} → (auto-leave) {1,2}.
    let cc = ConfChange {
        changes: vec![
            change(ConfChangeType::AddVoter, 1),
            change(ConfChangeType::RemoveNode, 3),
        ],
        ..Default::default()
    };
    c.node_mut(1).propose_conf_change(&cc).unwrap();
    c.stabilize();
    assert_eq!(
        c.node(1).status().conf_state,
        ConfState::from_voters([1, 2])
    );
    // {1,2} → joint {1,3}&{1,2}, left explicitly (so it is still joint at the restart).
    let cc = ConfChange {
        transition: ConfChangeTransition::JointExplicit,
        changes: vec![
            change(ConfChangeType::AddVoter, 3),
            change(ConfChangeType::RemoveNode, 2),
        ],
        ..Default::default()
    };
    c.node_mut(1).propose_conf_change(&cc).unwrap();
    c.stabilize();
    let joint = ConfState {
        voters_outgoing: [1, 2].into(),
        ..ConfState::from_voters([1, 3])
    };
    assert_eq!(c.node(1).status().conf_state, joint);
    assert_eq!(c.node(2).status().conf_state, joint);

    c.restart(2);
    c.stabilize();
    let st = c.node(2).status();
    assert_eq!(st.applied, c.node(1).status().hard_state.commit);
    assert_eq!(st.conf_state, joint);
}

proptest! {
    // 96 cases per run unless PROPTEST_CASES asks for more (or fewer).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn safety_under_faults_3_nodes(
        pre_vote in any::<bool>(),
        check_quorum in any::<bool>(),
        actions in proptest::collection::vec(action(3), 1..600),
    ) {
        if let Err(e) = run(3, pre_vote, check_quorum, &actions) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn safety_under_faults_5_nodes(
        pre_vote in any::<bool>(),
        check_quorum in any::<bool>(),
        actions in proptest::collection::vec(action(5), 1..600),
    ) {
        if let Err(e) = run(5, pre_vote, check_quorum, &actions) {
            prop_assert!(false, "{}", e);
        }
    }
}
