//! Membership changes: single-voter changes and joint consensus (Raft thesis §4.3, paper §6),
//! as in etcd raft's `confchange` package.
//!
//! ```text
//!   C_old --(simple change: at most one voter added/removed)--> C_new
//!   C_old --(EnterJoint: any changes)--> C_old,new --(LeaveJoint)--> C_new
//!            decisions need majorities of     |
//!            both C_old and C_new  <----------+
//! ```
//! A configuration change is a log entry of kind [`EntryKind::ConfChange`]
//! (`RawNode::propose_conf_change`). It takes effect when the application applies it
//! (`RawNode::apply_conf_change`), not when it is appended: every node then switches at the
//! same log position. The leader accepts one change at a time (a second is refused while the
//! first is unapplied), which keeps simple changes safe: two majorities of configurations
//! that differ by one voter always overlap.
//!
//! [`EntryKind::ConfChange`]: super::EntryKind::ConfChange

use std::collections::BTreeSet;

use super::error::{RaftError, Result};
use super::progress::{Progress, ProgressTracker};
use super::types::{ConfState, NodeId};

/// What one change does to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfChangeType {
    /// Make the node a voter (adding it, or promoting a learner).
    AddVoter,
    /// Make the node a learner (adding it, or demoting a voter — demotion of a voter takes
    /// effect when the joint configuration is left).
    AddLearner,
    /// Remove the node.
    RemoveNode,
}

/// One change to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfChangeSingle {
    /// What to do.
    pub change_type: ConfChangeType,
    /// To whom.
    pub node_id: NodeId,
}

/// How a change with several parts is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConfChangeTransition {
    /// A single voter change is applied directly; anything else enters a joint configuration
    /// that the leader leaves automatically once it is applied.
    #[default]
    Auto,
    /// Always enter a joint configuration and leave it automatically.
    JointImplicit,
    /// Always enter a joint configuration; the application leaves it by proposing an empty
    /// `ConfChange`.
    JointExplicit,
}

/// A membership change request, carried in an entry of kind `ConfChange` (etcd's
/// `ConfChangeV2`). An empty `changes` list means "leave the joint configuration".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConfChange {
    /// How to apply several changes.
    pub transition: ConfChangeTransition,
    /// The changes, applied in order.
    pub changes: Vec<ConfChangeSingle>,
    /// Opaque data for the application (etcd puts the new member's URLs here).
    pub context: Vec<u8>,
}

const ENCODING_VERSION: u8 = 1;

impl ConfChange {
    /// A single change.
    pub fn single(change_type: ConfChangeType, node_id: NodeId) -> Self {
        ConfChange {
            changes: vec![ConfChangeSingle {
                change_type,
                node_id,
            }],
            ..Default::default()
        }
    }

    /// The request to leave a joint configuration.
    pub fn leave_joint() -> Self {
        ConfChange::default()
    }

    /// Whether this leaves the joint configuration.
    pub fn is_leave_joint(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether this enters a joint configuration, and if so whether it leaves automatically.
    pub fn enter_joint(&self) -> Option<bool> {
        match self.transition {
            ConfChangeTransition::Auto if self.changes.len() > 1 => Some(true),
            ConfChangeTransition::Auto => None,
            ConfChangeTransition::JointImplicit => Some(true),
            ConfChangeTransition::JointExplicit => Some(false),
        }
    }

    /// Encodes the change as entry data: version byte, transition byte, change count (u32
    /// big-endian), each change as type byte + node id (u64 big-endian), then the context.
    /// A fixed little format keeps the core free of serialization dependencies.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.changes.len() * 9 + self.context.len());
        out.push(ENCODING_VERSION);
        out.push(match self.transition {
            ConfChangeTransition::Auto => 0,
            ConfChangeTransition::JointImplicit => 1,
            ConfChangeTransition::JointExplicit => 2,
        });
        out.extend_from_slice(&(self.changes.len() as u32).to_be_bytes());
        for c in &self.changes {
            out.push(match c.change_type {
                ConfChangeType::AddVoter => 0,
                ConfChangeType::AddLearner => 1,
                ConfChangeType::RemoveNode => 2,
            });
            out.extend_from_slice(&c.node_id.to_be_bytes());
        }
        out.extend_from_slice(&self.context);
        out
    }

    /// Decodes [`ConfChange::encode`]'s format. Errors: [`RaftError::ConfChangeInvalid`] for
    /// malformed data.
    pub fn decode(data: &[u8]) -> Result<Self> {
        let bad = |why: &str| RaftError::ConfChangeInvalid(format!("undecodable: {why}"));
        if data.len() < 6 || data[0] != ENCODING_VERSION {
            return Err(bad("header"));
        }
        let transition = match data[1] {
            0 => ConfChangeTransition::Auto,
            1 => ConfChangeTransition::JointImplicit,
            2 => ConfChangeTransition::JointExplicit,
            _ => return Err(bad("transition")),
        };
        let n = u32::from_be_bytes(data[2..6].try_into().expect("4 bytes")) as usize;
        let body = &data[6..];
        if body.len() < n.saturating_mul(9) {
            return Err(bad("truncated"));
        }
        let mut changes = Vec::with_capacity(n);
        for chunk in body[..n * 9].chunks_exact(9) {
            let change_type = match chunk[0] {
                0 => ConfChangeType::AddVoter,
                1 => ConfChangeType::AddLearner,
                2 => ConfChangeType::RemoveNode,
                _ => return Err(bad("change type")),
            };
            let node_id = u64::from_be_bytes(chunk[1..9].try_into().expect("8 bytes"));
            changes.push(ConfChangeSingle {
                change_type,
                node_id,
            });
        }
        Ok(ConfChange {
            transition,
            changes,
            context: body[n * 9..].to_vec(),
        })
    }
}

/// Applies configuration changes to a copy of a [`ProgressTracker`] (etcd raft
/// `confchange.Changer`). New members start with `next_index = max(last_index, 1)` so the
/// leader probes them at once.
pub(crate) struct Changer<'a> {
    pub tracker: &'a ProgressTracker,
    pub last_index: u64,
}

impl Changer<'_> {
    /// A change of at most one voter, outside a joint configuration.
    pub fn simple(&self, changes: &[ConfChangeSingle]) -> Result<ProgressTracker> {
        if self.is_joint() {
            return Err(invalid(
                "cannot apply a simple change in a joint configuration",
            ));
        }
        let mut t = self.tracker.clone();
        self.apply(&mut t, changes)?;
        let before = &self.tracker.voters.incoming.voters;
        let after = &t.voters.incoming.voters;
        if before.symmetric_difference(after).count() > 1 {
            return Err(invalid(
                "more than one voter changed without entering a joint configuration",
            ));
        }
        check_invariants(&t)?;
        Ok(t)
    }

    /// Enter the joint configuration C_old,new.
    pub fn enter_joint(
        &self,
        auto_leave: bool,
        changes: &[ConfChangeSingle],
    ) -> Result<ProgressTracker> {
        if self.is_joint() {
            return Err(invalid("already in a joint configuration"));
        }
        let mut t = self.tracker.clone();
        if t.voters.incoming.voters.is_empty() {
            return Err(invalid(
                "cannot enter a joint configuration from an empty one",
            ));
        }
        t.voters.outgoing = t.voters.incoming.clone();
        self.apply(&mut t, changes)?;
        t.auto_leave = auto_leave;
        check_invariants(&t)?;
        Ok(t)
    }

    /// Leave the joint configuration: C_new alone decides.
    pub fn leave_joint(&self) -> Result<ProgressTracker> {
        if !self.is_joint() {
            return Err(invalid("not in a joint configuration"));
        }
        let mut t = self.tracker.clone();
        for id in std::mem::take(&mut t.learners_next) {
            t.learners.insert(id);
            if let Some(p) = t.progress.get_mut(&id) {
                p.is_learner = true;
            }
        }
        let outgoing = std::mem::take(&mut t.voters.outgoing.voters);
        for id in outgoing {
            if !t.voters.incoming.voters.contains(&id) && !t.learners.contains(&id) {
                t.progress.remove(&id);
            }
        }
        t.auto_leave = false;
        check_invariants(&t)?;
        Ok(t)
    }

    fn is_joint(&self) -> bool {
        !self.tracker.voters.outgoing.voters.is_empty()
    }

    fn apply(&self, t: &mut ProgressTracker, changes: &[ConfChangeSingle]) -> Result<()> {
        for c in changes {
            if c.node_id == 0 {
                continue; // etcd ignores changes to node 0
            }
            match c.change_type {
                ConfChangeType::AddVoter => self.make_voter(t, c.node_id),
                ConfChangeType::AddLearner => self.make_learner(t, c.node_id),
                ConfChangeType::RemoveNode => remove(t, c.node_id),
            }
        }
        if t.voters.incoming.voters.is_empty() {
            return Err(invalid("removed all voters"));
        }
        Ok(())
    }

    fn init_progress(&self, t: &mut ProgressTracker, id: NodeId, is_learner: bool) {
        let mut p = Progress::new(self.last_index.max(1), t.max_inflight);
        p.is_learner = is_learner;
        // A new member counts as active so the next check-quorum round does not depose the
        // leader before the member had a chance to answer.
        p.recent_active = true;
        t.progress.insert(id, p);
    }

    fn make_voter(&self, t: &mut ProgressTracker, id: NodeId) {
        match t.progress.get_mut(&id) {
            None => self.init_progress(t, id, false),
            Some(p) => p.is_learner = false,
        }
        t.learners.remove(&id);
        t.learners_next.remove(&id);
        t.voters.incoming.voters.insert(id);
    }

    fn make_learner(&self, t: &mut ProgressTracker, id: NodeId) {
        if !t.progress.contains_key(&id) {
            self.init_progress(t, id, true);
            t.learners.insert(id);
            return;
        }
        if t.learners.contains(&id) {
            return;
        }
        t.voters.incoming.voters.remove(&id);
        t.learners.remove(&id);
        t.learners_next.remove(&id);
        if t.voters.outgoing.voters.contains(&id) {
            // Still a voter of C_old: becomes a learner only when the joint config is left.
            t.learners_next.insert(id);
        } else {
            t.learners.insert(id);
            if let Some(p) = t.progress.get_mut(&id) {
                p.is_learner = true;
            }
        }
    }
}

/// Builds the tracker of `conf_state` from an empty configuration by replaying it as changes
/// (etcd raft `confchange.Restore`), so a configuration restored from a snapshot passes the
/// same checks as one reached by applying changes. A joint configuration is rebuilt in two
/// steps: its outgoing voters one by one as simple changes, then one "enter joint" that
/// removes them and adds the incoming voters, learners and `learners_next`. The rejected
/// alternative, `ProgressTracker::new(conf_state)`, would accept any malformed `ConfState` a
/// peer sends. Every progress starts with `next_index = max(last_index, 1)`.
///
/// Errors: [`RaftError::ConfChangeInvalid`] when `conf_state` is not a valid configuration
/// (no voters, a learner that is also a voter, ...).
pub(crate) fn restore(
    conf_state: &ConfState,
    last_index: u64,
    max_inflight: usize,
) -> Result<ProgressTracker> {
    let add = |change_type, node_id| ConfChangeSingle {
        change_type,
        node_id,
    };
    let outgoing: Vec<ConfChangeSingle> = conf_state
        .voters_outgoing
        .iter()
        .map(|id| add(ConfChangeType::AddVoter, *id))
        .collect();
    let incoming: Vec<ConfChangeSingle> = conf_state
        .voters_outgoing
        .iter()
        .map(|id| add(ConfChangeType::RemoveNode, *id))
        .chain(
            conf_state
                .voters
                .iter()
                .map(|id| add(ConfChangeType::AddVoter, *id)),
        )
        .chain(
            conf_state
                .learners
                .iter()
                .chain(&conf_state.learners_next)
                .map(|id| add(ConfChangeType::AddLearner, *id)),
        )
        .collect();
    let mut tracker = ProgressTracker::new(&ConfState::default(), 1, max_inflight);
    let step = |tracker: &ProgressTracker, changes: &[ConfChangeSingle]| {
        Changer {
            tracker,
            last_index,
        }
        .simple(changes)
    };
    if outgoing.is_empty() {
        for c in &incoming {
            tracker = step(&tracker, std::slice::from_ref(c))?;
        }
    } else {
        for c in &outgoing {
            tracker = step(&tracker, std::slice::from_ref(c))?;
        }
        tracker = Changer {
            tracker: &tracker,
            last_index,
        }
        .enter_joint(conf_state.auto_leave, &incoming)?;
    }
    if tracker.voters.ids().is_empty() {
        return Err(invalid("a configuration needs a voter"));
    }
    // etcd asserts the same (assertConfStatesEquivalent): e.g. a node listed both as voter
    // and learner comes out as a learner only.
    if tracker.conf_state() != *conf_state {
        return Err(invalid("configuration is not self-consistent"));
    }
    Ok(tracker)
}

fn remove(t: &mut ProgressTracker, id: NodeId) {
    t.voters.incoming.voters.remove(&id);
    t.learners.remove(&id);
    t.learners_next.remove(&id);
    if !t.voters.outgoing.voters.contains(&id) {
        t.progress.remove(&id);
    }
}

fn invalid(why: &str) -> RaftError {
    RaftError::ConfChangeInvalid(why.to_string())
}

/// Invariants of a configuration (etcd raft `confchange.checkInvariants`).
fn check_invariants(t: &ProgressTracker) -> Result<()> {
    let voters = t.voters.ids();
    for id in voters.iter().chain(&t.learners).chain(&t.learners_next) {
        if !t.progress.contains_key(id) {
            return Err(invalid(&format!("no progress for member {id}")));
        }
    }
    for id in &t.learners_next {
        if !t.voters.outgoing.voters.contains(id) {
            return Err(invalid(&format!(
                "{id} in learners_next but not an outgoing voter"
            )));
        }
        if t.progress[id].is_learner {
            return Err(invalid(&format!(
                "{id} in learners_next is already marked learner"
            )));
        }
    }
    let overlap: BTreeSet<&NodeId> = t.learners.iter().filter(|id| voters.contains(id)).collect();
    if let Some(id) = overlap.into_iter().next() {
        return Err(invalid(&format!("{id} is both voter and learner")));
    }
    for id in &t.learners {
        if !t.progress[id].is_learner {
            return Err(invalid(&format!("learner {id} not marked learner")));
        }
    }
    if t.voters.outgoing.voters.is_empty() && (!t.learners_next.is_empty() || t.auto_leave) {
        return Err(invalid(
            "learners_next or auto_leave outside a joint configuration",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::ConfState;
    use ConfChangeType::*;

    fn tracker(voters: &[NodeId]) -> ProgressTracker {
        ProgressTracker::new(&ConfState::from_voters(voters.iter().copied()), 5, 8)
    }

    fn ch(change_type: ConfChangeType, node_id: NodeId) -> ConfChangeSingle {
        ConfChangeSingle {
            change_type,
            node_id,
        }
    }

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn restore_rebuilds_simple_and_joint_configurations() {
        let simple = ConfState {
            voters: set(&[1, 2, 3]),
            learners: set(&[4]),
            ..Default::default()
        };
        let t = restore(&simple, 10, 8).unwrap();
        assert_eq!(t.conf_state(), simple);
        assert!(t.progress[&4].is_learner);
        assert_eq!(t.progress[&1].next_index, 10);
        // etcd's example: voters (1 2 3), outgoing (1 2 4 6), learner 5, 4 a learner next.
        let joint = ConfState {
            voters: set(&[1, 2, 3]),
            voters_outgoing: set(&[1, 2, 4, 6]),
            learners: set(&[5]),
            learners_next: set(&[4]),
            auto_leave: true,
        };
        let t = restore(&joint, 10, 8).unwrap();
        assert_eq!(t.conf_state(), joint);
        assert_eq!(
            t.progress.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert!(
            !t.progress[&4].is_learner,
            "an outgoing voter until leaving"
        );
    }

    #[test]
    fn restore_refuses_invalid_configurations() {
        assert!(restore(&ConfState::default(), 1, 8).is_err());
        let overlapping = ConfState {
            voters: set(&[1, 2]),
            learners: set(&[2]),
            ..Default::default()
        };
        // Adding 2 as a learner demotes it: the rebuilt configuration would differ from the
        // one claimed, so a peer's malformed ConfState is refused, never half-adopted.
        assert!(restore(&overlapping, 1, 8).is_err());
    }

    #[test]
    fn encode_decode_roundtrip_and_rejects_garbage() {
        let cc = ConfChange {
            transition: ConfChangeTransition::JointExplicit,
            changes: vec![ch(AddVoter, 4), ch(RemoveNode, 1), ch(AddLearner, 9)],
            context: b"http://n4:2380".to_vec(),
        };
        assert_eq!(ConfChange::decode(&cc.encode()), Ok(cc));
        assert_eq!(
            ConfChange::decode(&ConfChange::leave_joint().encode()),
            Ok(ConfChange::leave_joint())
        );
        assert!(ConfChange::decode(b"").is_err());
        assert!(
            ConfChange::decode(&[1, 0, 0, 0, 0, 1, 0]).is_err(),
            "truncated change"
        );
    }

    #[test]
    fn simple_add_and_remove_one_voter() {
        let t = tracker(&[1, 2, 3]);
        let c = Changer {
            tracker: &t,
            last_index: 7,
        };
        let t2 = c.simple(&[ch(AddVoter, 4)]).unwrap();
        assert_eq!(t2.voters.incoming.voters, set(&[1, 2, 3, 4]));
        assert_eq!(t2.progress[&4].next_index, 7);
        let t3 = Changer {
            tracker: &t2,
            last_index: 7,
        }
        .simple(&[ch(RemoveNode, 1)])
        .unwrap();
        assert_eq!(t3.voters.incoming.voters, set(&[2, 3, 4]));
        assert!(!t3.progress.contains_key(&1));
    }

    #[test]
    fn simple_refuses_two_voter_changes_and_removing_everyone() {
        let t = tracker(&[1, 2, 3]);
        let c = Changer {
            tracker: &t,
            last_index: 1,
        };
        assert!(c.simple(&[ch(AddVoter, 4), ch(AddVoter, 5)]).is_err());
        assert!(c.simple(&[ch(AddVoter, 4), ch(RemoveNode, 1)]).is_err());
        // Adding learners does not count as voter changes.
        assert!(
            c.simple(&[ch(AddVoter, 4), ch(AddLearner, 5), ch(AddLearner, 6)])
                .is_ok()
        );
        let t1 = tracker(&[1]);
        assert!(
            Changer {
                tracker: &t1,
                last_index: 1
            }
            .simple(&[ch(RemoveNode, 1)])
            .is_err()
        );
    }

    #[test]
    fn joint_replace_voters_then_leave() {
        let t = tracker(&[1, 2, 3]);
        let c = Changer {
            tracker: &t,
            last_index: 1,
        };
        let j = c
            .enter_joint(
                true,
                &[ch(AddVoter, 4), ch(RemoveNode, 1), ch(AddLearner, 2)],
            )
            .unwrap();
        assert_eq!(j.voters.incoming.voters, set(&[3, 4]));
        assert_eq!(j.voters.outgoing.voters, set(&[1, 2, 3]));
        assert_eq!(
            j.learners_next,
            set(&[2]),
            "a demoted voter of C_old waits in learners_next"
        );
        assert!(j.progress.contains_key(&1), "1 still votes in C_old");
        assert!(j.auto_leave);
        let cj = Changer {
            tracker: &j,
            last_index: 1,
        };
        assert!(cj.simple(&[ch(AddVoter, 5)]).is_err());
        assert!(cj.enter_joint(false, &[]).is_err());
        let l = cj.leave_joint().unwrap();
        assert_eq!(l.voters.incoming.voters, set(&[3, 4]));
        assert!(l.voters.outgoing.voters.is_empty());
        assert_eq!(l.learners, set(&[2]));
        assert!(l.progress[&2].is_learner);
        assert!(!l.progress.contains_key(&1));
        assert!(!l.auto_leave);
        assert!(
            Changer {
                tracker: &l,
                last_index: 1
            }
            .leave_joint()
            .is_err()
        );
    }

    #[test]
    fn promote_learner_to_voter() {
        let cs = ConfState {
            voters: set(&[1]),
            learners: set(&[2]),
            ..Default::default()
        };
        let t = ProgressTracker::new(&cs, 1, 8);
        let t2 = Changer {
            tracker: &t,
            last_index: 3,
        }
        .simple(&[ch(AddVoter, 2)])
        .unwrap();
        assert_eq!(t2.voters.incoming.voters, set(&[1, 2]));
        assert!(t2.learners.is_empty());
        assert!(!t2.progress[&2].is_learner);
    }

    #[test]
    fn enter_joint_decision_follows_transition() {
        let mut cc = ConfChange::single(AddVoter, 4);
        assert_eq!(cc.enter_joint(), None);
        cc.changes.push(ch(AddVoter, 5));
        assert_eq!(cc.enter_joint(), Some(true));
        cc.transition = ConfChangeTransition::JointExplicit;
        assert_eq!(cc.enter_joint(), Some(false));
        assert!(ConfChange::leave_joint().is_leave_joint());
    }
}
