//! **Leader completeness** — "if a log entry is committed in a given term, then that entry
//! will be present in the logs of the leaders for all higher-numbered terms" (Raft §5.4,
//! Figure 3).
//!
//! The commit term of each index is recorded the first time a leader is seen with a commit
//! index covering it (every event on a leader is observed, so this is the term that committed
//! it). For every current leader of term `T` and every index `i` committed in a term `< T`:
//! - always: the leader's last index is ≥ `i`;
//! - once the leader is *settled* (its durable log is its whole log) and `i` has been applied
//!   somewhere: its durable entry at `i` has the term of the committed entry at `i`.
//!
//! A per-leader cursor keeps the check incremental.

use std::collections::BTreeMap;

use ferrokv::raft::{NodeId, Role};

use super::{Check, History, NodeState, violated};

const NAME: &str = "leader completeness (Raft §5.4)";

#[derive(Debug)]
struct LeaderCursor {
    term: u64,
    /// Every index ≤ `checked` has been fully checked for this leader.
    checked: u64,
}

/// Commit terms and the leaders being checked.
#[derive(Debug, Default)]
pub struct LeaderCompleteness {
    /// `commit_terms[i - 1]`: term of the leader first seen committing index `i`.
    commit_terms: Vec<u64>,
    leaders: BTreeMap<NodeId, LeaderCursor>,
}

impl LeaderCompleteness {
    /// Records commits of leaders and checks every current leader.
    pub fn on_state(&mut self, s: &NodeState, history: &History) -> Check {
        if s.role != Role::Leader {
            self.leaders.remove(&s.node);
            return Ok(());
        }
        let term = s.hard_state.term;
        while (self.commit_terms.len() as u64) < s.hard_state.commit {
            self.commit_terms.push(term);
        }
        let cursor = self
            .leaders
            .entry(s.node)
            .or_insert(LeaderCursor { term, checked: 0 });
        if cursor.term != term {
            *cursor = LeaderCursor { term, checked: 0 };
        }
        let log = history.logs.get(&s.node);
        let mut index = cursor.checked + 1;
        while index <= self.commit_terms.len() as u64 {
            let commit_term = self.commit_terms[index as usize - 1];
            if commit_term < term {
                if s.last_index < index {
                    return violated(
                        NAME,
                        format!(
                            "leader n{} of term {term} has last index {} but index {index} was \
                             committed in term {commit_term}",
                            s.node, s.last_index
                        ),
                    );
                }
                let Some(committed) = history.committed.get(index as usize - 1) else {
                    break; // not applied anywhere yet: check its content later
                };
                if !s.settled {
                    break;
                }
                let held = log.and_then(|l| l.term(index));
                if held != Some(committed.term) {
                    return violated(
                        NAME,
                        format!(
                            "leader n{} of term {term} holds term {held:?} at index {index}, \
                             committed in term {commit_term} with entry term {}",
                            s.node, committed.term
                        ),
                    );
                }
            }
            cursor.checked = index;
            index += 1;
        }
        Ok(())
    }

    /// A crashed node leads nothing.
    pub fn on_crash(&mut self, node: NodeId) {
        self.leaders.remove(&node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::{CommittedEntry, LogMirror};
    use ferrokv::raft::{Entry, HardState};

    fn state(node: NodeId, term: u64, commit: u64, last_index: u64) -> NodeState {
        NodeState {
            node,
            incarnation: 1,
            hard_state: HardState {
                term,
                vote: node,
                commit,
            },
            role: Role::Leader,
            applied: commit,
            last_index,
            settled: true,
        }
    }

    #[test]
    fn a_later_leader_missing_a_committed_entry_is_caught() {
        let mut history = History::default();
        history.committed.push(CommittedEntry {
            term: 1,
            data: vec![],
            revision: 1,
        });
        let mut inv = LeaderCompleteness::default();
        assert!(inv.on_state(&state(1, 1, 1, 1), &history).is_ok());
        // n2 leads term 2 with an empty log.
        assert!(inv.on_state(&state(2, 2, 0, 0), &history).is_err());
    }

    #[test]
    fn a_later_leader_with_another_entry_at_a_committed_index_is_caught() {
        let mut history = History::default();
        history.committed.push(CommittedEntry {
            term: 1,
            data: vec![],
            revision: 1,
        });
        let mut log = LogMirror::default();
        log.apply(&[Entry {
            term: 2,
            index: 1,
            ..Default::default()
        }]);
        history.logs.insert(2, log);
        let mut inv = LeaderCompleteness::default();
        assert!(inv.on_state(&state(1, 1, 1, 1), &history).is_ok());
        assert!(inv.on_state(&state(2, 3, 0, 1), &history).is_err());
    }
}
