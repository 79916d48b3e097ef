//! **State machine safety** — "if a server has applied a log entry at a given index to its
//! state machine, no other server will ever apply a different log entry for the same index"
//! (Raft §5.4.3, Figure 3), extended to the MVCC store: every node reaches the *same store
//! revision* after applying the same index (etcd's contract that revisions identify the same
//! state on every member).
//!
//! The first node to apply index `i` defines [`History::committed`]`[i - 1]`; every later
//! application at `i` must carry the same term, payload and resulting revision. Entries are
//! applied in order, so the committed sequence grows by one at a time. An entry a store skips
//! because an installed snapshot image already covers it must still be the committed entry.

use super::{Applied, Check, CommittedEntry, History, violated};

const NAME: &str = "state machine safety (Raft §5.4.3)";

/// Stateless: works on [`History::committed`].
#[derive(Debug, Default)]
pub struct StateMachineSafety;

impl StateMachineSafety {
    /// Checks `a` against what others applied at its index, or records it if first.
    pub fn on_applied(&mut self, a: &Applied<'_>, history: &mut History) -> Check {
        let index = a.entry.index;
        let known = history.committed.len() as u64;
        if index <= known {
            let c = &history.committed[index as usize - 1];
            if c.term != a.entry.term || c.data != a.entry.data {
                return violated(
                    NAME,
                    format!(
                        "n{} applied {} at index {index}, but entry {}/{index} ({} bytes) was \
                         applied there before",
                        a.node,
                        a.entry,
                        c.term,
                        c.data.len()
                    ),
                );
            }
            if c.revision != a.revision_after {
                return violated(
                    NAME,
                    format!(
                        "n{} reached revision {} after index {index}; another node reached {}",
                        a.node, a.revision_after, c.revision
                    ),
                );
            }
            return Ok(());
        }
        if index != known + 1 {
            return violated(
                NAME,
                format!(
                    "n{} applied index {index} but the applied sequence ends at {known}",
                    a.node
                ),
            );
        }
        history.committed.push(CommittedEntry {
            term: a.entry.term,
            data: a.entry.data.clone(),
            revision: a.revision_after,
        });
        Ok(())
    }

    /// Node `node` was handed `entry` again after an image covering it was installed: it must
    /// be the entry applied at its index before.
    pub fn on_replayed(
        &mut self,
        node: u64,
        entry: &ferrokv::raft::Entry,
        history: &History,
    ) -> Check {
        let c = history
            .committed
            .get((entry.index as usize).wrapping_sub(1));
        match c {
            Some(c) if c.term == entry.term && c.data == entry.data => Ok(()),
            _ => violated(
                NAME,
                format!(
                    "n{node} was handed {entry} under its installed image, but the committed \
                     entry there is {:?}",
                    c.map(|c| (c.term, c.data.len()))
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::Entry;

    fn applied(node: u64, entry: &Entry, revision_after: i64) -> Applied<'_> {
        Applied {
            node,
            entry,
            revision_before: 1,
            revision_after,
            applied_index_after: entry.index,
        }
    }

    #[test]
    fn different_entries_or_revisions_at_one_index_are_caught() {
        let mut history = History::default();
        let mut inv = StateMachineSafety;
        let x = Entry {
            term: 1,
            index: 1,
            data: b"x".to_vec(),
            ..Default::default()
        };
        let y = Entry {
            data: b"y".to_vec(),
            ..x.clone()
        };
        assert!(inv.on_applied(&applied(1, &x, 2), &mut history).is_ok());
        assert!(inv.on_applied(&applied(2, &x, 2), &mut history).is_ok());
        assert!(inv.on_applied(&applied(3, &y, 2), &mut history).is_err());
        assert!(inv.on_applied(&applied(3, &x, 3), &mut history).is_err());
    }
}
