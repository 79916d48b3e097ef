//! Quorum arithmetic for simple majorities and joint configurations.
//!
//! A joint configuration C_old,new (Raft §6, thesis §4.3) needs a majority of *both* C_old
//! and C_new for every decision, so a committed index is the minimum of the two majorities'
//! committed indexes and a vote is won only when won in both. Keeping this arithmetic apart
//! from the progress bookkeeping lets it be tested exhaustively on its own.

use std::collections::{BTreeMap, BTreeSet};

use super::types::NodeId;

/// Outcome of counting votes (or liveness acks) in a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: some voters have not answered and either outcome is still possible.
    Pending,
    /// A quorum rejected.
    Lost,
    /// A quorum granted.
    Won,
}

/// A set of voters deciding by simple majority.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MajorityConfig {
    /// The voters.
    pub voters: BTreeSet<NodeId>,
}

impl MajorityConfig {
    /// A majority configuration of `voters`.
    pub fn new(voters: BTreeSet<NodeId>) -> Self {
        MajorityConfig { voters }
    }

    /// Size of a majority: ⌊n/2⌋ + 1.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Largest index that a majority has acknowledged, given each voter's acked index
    /// (`None` counts as 0). An empty configuration returns `u64::MAX` so that, in a joint
    /// configuration, an empty outgoing half never limits the result.
    pub fn committed_index(&self, acked: impl Fn(NodeId) -> Option<u64>) -> u64 {
        if self.voters.is_empty() {
            return u64::MAX;
        }
        let mut idx: Vec<u64> = self
            .voters
            .iter()
            .map(|id| acked(*id).unwrap_or(0))
            .collect();
        idx.sort_unstable_by(|a, b| b.cmp(a));
        idx[self.quorum() - 1]
    }

    /// Counts `votes` (voter → granted); missing voters have not answered. An empty
    /// configuration wins (by convention, as etcd raft: it never blocks a joint decision).
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0, 0);
        for id in &self.voters {
            match votes.get(id) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let q = self.quorum();
        if granted >= q {
            VoteResult::Won
        } else if granted + missing >= q {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

/// A joint configuration: `incoming` (C_new) and `outgoing` (C_old, empty when not joint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JointConfig {
    /// C_new, or the only configuration.
    pub incoming: MajorityConfig,
    /// C_old during a joint configuration, else empty.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// A joint configuration of the two voter sets.
    pub fn new(incoming: BTreeSet<NodeId>, outgoing: BTreeSet<NodeId>) -> Self {
        JointConfig {
            incoming: MajorityConfig::new(incoming),
            outgoing: MajorityConfig::new(outgoing),
        }
    }

    /// All voters of both halves, sorted.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        self.incoming
            .voters
            .union(&self.outgoing.voters)
            .copied()
            .collect()
    }

    /// Whether `id` votes in either half.
    pub fn contains(&self, id: NodeId) -> bool {
        self.incoming.voters.contains(&id) || self.outgoing.voters.contains(&id)
    }

    /// Committed index: the smaller of both halves' majority indexes.
    pub fn committed_index(&self, acked: impl Fn(NodeId) -> Option<u64>) -> u64 {
        let i = self.incoming.committed_index(&acked);
        let o = self.outgoing.committed_index(&acked);
        i.min(o)
    }

    /// Won only if won in both halves; lost if lost in either.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let i = self.incoming.vote_result(votes);
        let o = self.outgoing.vote_result(votes);
        match (i, o) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn acked(map: &[(NodeId, u64)]) -> impl Fn(NodeId) -> Option<u64> + '_ {
        move |id| map.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }

    #[test]
    fn majority_committed_index() {
        let c = MajorityConfig::new(set(&[1, 2, 3]));
        assert_eq!(c.committed_index(acked(&[(1, 5), (2, 3), (3, 1)])), 3);
        assert_eq!(c.committed_index(acked(&[(1, 5)])), 0);
        let c = MajorityConfig::new(set(&[1, 2, 3, 4]));
        assert_eq!(
            c.committed_index(acked(&[(1, 5), (2, 5), (3, 1), (4, 1)])),
            1
        );
        assert_eq!(
            MajorityConfig::default().committed_index(acked(&[])),
            u64::MAX
        );
    }

    #[test]
    fn majority_vote_result() {
        let c = MajorityConfig::new(set(&[1, 2, 3]));
        let votes = |v: &[(NodeId, bool)]| v.iter().copied().collect::<BTreeMap<_, _>>();
        assert_eq!(c.vote_result(&votes(&[(1, true)])), VoteResult::Pending);
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (2, true)])),
            VoteResult::Won
        );
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (2, false)])),
            VoteResult::Pending
        );
        assert_eq!(
            c.vote_result(&votes(&[(1, false), (2, false)])),
            VoteResult::Lost
        );
        // Votes from non-members do not count.
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (9, true)])),
            VoteResult::Pending
        );
        assert_eq!(
            MajorityConfig::default().vote_result(&votes(&[])),
            VoteResult::Won
        );
    }

    #[test]
    fn joint_needs_both_halves() {
        let j = JointConfig::new(set(&[1, 2, 3]), set(&[3, 4, 5]));
        assert_eq!(
            j.committed_index(acked(&[(1, 9), (2, 9), (3, 2), (4, 2)])),
            2
        );
        let votes: BTreeMap<_, _> = [(1, true), (2, true)].into_iter().collect();
        assert_eq!(j.vote_result(&votes), VoteResult::Pending);
        let votes: BTreeMap<_, _> = [(1, true), (2, true), (4, false), (5, false)]
            .into_iter()
            .collect();
        assert_eq!(j.vote_result(&votes), VoteResult::Lost);
        let votes: BTreeMap<_, _> = [(1, true), (3, true), (4, true)].into_iter().collect();
        assert_eq!(j.vote_result(&votes), VoteResult::Won);
        // Non-joint: outgoing empty does not constrain.
        let j = JointConfig::new(set(&[1, 2, 3]), set(&[]));
        assert_eq!(j.committed_index(acked(&[(1, 4), (2, 4)])), 4);
        assert_eq!(j.ids(), set(&[1, 2, 3]));
    }

    proptest! {
        /// The committed index is acknowledged by a majority, and no larger index is.
        #[test]
        fn committed_index_is_the_largest_majority_acked(idx in proptest::collection::vec(0u64..20, 1..8)) {
            let ids: Vec<NodeId> = (1..=idx.len() as u64).collect();
            let c = MajorityConfig::new(ids.iter().copied().collect());
            let got = c.committed_index(|id| Some(idx[(id - 1) as usize]));
            let at_least = |v: u64| idx.iter().filter(|x| **x >= v).count();
            prop_assert!(at_least(got) >= c.quorum());
            prop_assert!(at_least(got + 1) < c.quorum());
        }

        /// Joint committed index equals the min of the two halves computed separately.
        #[test]
        fn joint_committed_is_min_of_halves(
            idx in proptest::collection::vec(0u64..20, 6),
            inc in proptest::collection::btree_set(1u64..=6, 1..6),
            out in proptest::collection::btree_set(1u64..=6, 0..6),
        ) {
            let f = |id: NodeId| Some(idx[(id - 1) as usize]);
            let j = JointConfig::new(inc.clone(), out.clone());
            let want = MajorityConfig::new(inc).committed_index(f).min(MajorityConfig::new(out).committed_index(f));
            prop_assert_eq!(j.committed_index(f), want);
        }
    }
}
