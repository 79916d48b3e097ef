//! **Election safety** — "at most one leader can be elected in a given term" (Raft §5.2,
//! Figure 3). Every time any node is seen as Leader, its term is recorded; a second node
//! leading the same term is a violation. Holds across crashes: a term is never reused
//! because `term` and `vote` are persisted before the vote is granted.

use std::collections::BTreeMap;

use ferrokv::raft::{NodeId, Role};

use super::{Check, NodeState, violated};

const NAME: &str = "election safety (Raft §5.2)";

/// Leader of every term seen so far.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders_by_term: BTreeMap<u64, NodeId>,
}

impl ElectionSafety {
    /// Records `s` if it is a leader; fails if its term already had another leader.
    pub fn on_state(&mut self, s: &NodeState) -> Check {
        if s.role != Role::Leader {
            return Ok(());
        }
        let leader = *self
            .leaders_by_term
            .entry(s.hard_state.term)
            .or_insert(s.node);
        if leader != s.node {
            return violated(
                NAME,
                format!(
                    "term {} has two leaders: n{leader} and n{}",
                    s.hard_state.term, s.node
                ),
            );
        }
        Ok(())
    }

    /// Number of terms that had a leader (= successful elections).
    pub fn elections(&self) -> u64 {
        self.leaders_by_term.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::HardState;

    fn leader(node: NodeId, term: u64) -> NodeState {
        NodeState {
            node,
            incarnation: 1,
            hard_state: HardState {
                term,
                vote: node,
                commit: 0,
            },
            role: Role::Leader,
            applied: 0,
            last_index: 0,
            settled: true,
        }
    }

    #[test]
    fn two_leaders_in_one_term_violate_it_but_successive_terms_do_not() {
        let mut inv = ElectionSafety::default();
        assert!(inv.on_state(&leader(1, 1)).is_ok());
        assert!(inv.on_state(&leader(1, 1)).is_ok());
        assert!(inv.on_state(&leader(2, 2)).is_ok());
        assert!(inv.on_state(&leader(3, 2)).is_err());
        assert_eq!(inv.elections(), 2);
    }
}
