//! **Term, commit and applied never go back** (Raft Figure 2: `currentTerm` "increases
//! monotonically", `commitIndex` and `lastApplied` "increase monotonically"; §5.2: one vote
//! per term, which must survive a crash).
//!
//! - In memory, within one incarnation of a node: term, commit index and applied index never
//!   decrease.
//! - On disk, across crashes: the durable term and commit index never decrease, and once a
//!   vote is durable for a term it never changes within that term.
//! - The MVCC store's applied index rises by exactly one per applied entry within an
//!   incarnation. A restart may find it lower: the store loses the batches committed after
//!   the last synced log write and replays them from the log (`durable_apply.rs` checks it
//!   never passes the durable commit instead). An installed snapshot image moves it to the
//!   image's index at once (`store_progress.rs` checks that is forward).

use std::collections::BTreeMap;

use ferrokv::raft::{HardState, NodeId};

use super::{Applied, Check, Installed, NodeState, Persisted, Restarted, violated};

const NAME: &str = "term/commit/applied never go back (Raft Figure 2)";

#[derive(Debug, Default)]
struct Seen {
    incarnation: u64,
    term: u64,
    commit: u64,
    applied: u64,
    durable: HardState,
    kv_applied_index: u64,
}

/// The highest values seen per node.
#[derive(Debug, Default)]
pub struct MonotonicState {
    nodes: BTreeMap<NodeId, Seen>,
}

impl MonotonicState {
    /// In-memory term/commit/applied of one incarnation.
    pub fn on_state(&mut self, s: &NodeState) -> Check {
        let seen = self.nodes.entry(s.node).or_default();
        if seen.incarnation != s.incarnation {
            seen.incarnation = s.incarnation;
            seen.term = 0;
            seen.commit = 0;
            seen.applied = 0;
        }
        let hs = s.hard_state;
        for (what, old, new) in [
            ("term", seen.term, hs.term),
            ("commit index", seen.commit, hs.commit),
            ("applied index", seen.applied, s.applied),
        ] {
            if new < old {
                return violated(
                    NAME,
                    format!("n{} {what} went from {old} to {new} in memory", s.node),
                );
            }
        }
        seen.term = hs.term;
        seen.commit = hs.commit;
        seen.applied = s.applied;
        Ok(())
    }

    /// Durable hard state.
    pub fn on_persisted(&mut self, p: &Persisted<'_>) -> Check {
        let Some(new) = p.hard_state else {
            return Ok(());
        };
        let seen = self.nodes.entry(p.node).or_default();
        let old = seen.durable;
        if new.term < old.term || new.commit < old.commit {
            return violated(
                NAME,
                format!(
                    "n{} durable hard state went from {old:?} to {new:?}",
                    p.node
                ),
            );
        }
        if new.term == old.term && old.vote != 0 && new.vote != old.vote {
            return violated(
                NAME,
                format!(
                    "n{} changed its durable vote in term {} from n{} to n{}",
                    p.node, new.term, old.vote, new.vote
                ),
            );
        }
        seen.durable = new;
        Ok(())
    }

    /// The store's applied index rises by one per entry.
    pub fn on_applied(&mut self, a: &Applied<'_>) -> Check {
        let seen = self.nodes.entry(a.node).or_default();
        if a.entry.index != seen.kv_applied_index + 1 || a.applied_index_after != a.entry.index {
            return violated(
                NAME,
                format!(
                    "n{} applied index {} (store now at {}) after store applied index {}",
                    a.node, a.entry.index, a.applied_index_after, seen.kv_applied_index
                ),
            );
        }
        seen.kv_applied_index = a.entry.index;
        Ok(())
    }

    /// An installed image: the store continues from its index.
    pub fn on_installed(&mut self, i: &Installed<'_>) {
        self.nodes.entry(i.node).or_default().kv_applied_index = i.applied_index_after;
    }

    /// A restart loads the last durable hard state and a store that lost nothing.
    pub fn on_restart(&mut self, r: &Restarted) -> Check {
        let seen = self.nodes.entry(r.node).or_default();
        if r.durable != seen.durable {
            return violated(
                NAME,
                format!(
                    "n{} restarted with hard state {:?}, but {:?} was durable",
                    r.node, r.durable, seen.durable
                ),
            );
        }
        seen.kv_applied_index = r.kv_applied_index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::Role;

    fn state(incarnation: u64, term: u64, commit: u64) -> NodeState {
        NodeState {
            node: 1,
            incarnation,
            hard_state: HardState {
                term,
                vote: 0,
                commit,
            },
            role: Role::Follower,
            applied: 0,
            last_index: commit,
            settled: true,
        }
    }

    #[test]
    fn memory_may_restart_lower_but_not_go_back_within_an_incarnation() {
        let mut inv = MonotonicState::default();
        assert!(inv.on_state(&state(1, 5, 3)).is_ok());
        assert!(inv.on_state(&state(1, 5, 2)).is_err());
        assert!(inv.on_state(&state(2, 4, 1)).is_ok());
    }

    #[test]
    fn a_changed_durable_vote_in_one_term_is_caught() {
        let mut inv = MonotonicState::default();
        let hs = |vote| HardState {
            term: 2,
            vote,
            commit: 0,
        };
        let p = |h| Persisted {
            node: 1,
            hard_state: Some(h),
            snapshot: None,
            entries: &[],
        };
        assert!(inv.on_persisted(&p(hs(1))).is_ok());
        assert!(inv.on_persisted(&p(hs(1))).is_ok());
        assert!(inv.on_persisted(&p(hs(3))).is_err());
    }
}
