//! **Log matching** — "if two logs contain an entry with the same index and term, then the
//! logs are identical in all entries up through the given index" (Raft §5.3, Figure 3).
//!
//! Checked on the durable logs whenever one changes: for the changed node against every other
//! node, at the highest index ≥ the first changed index where both logs hold the same term,
//! the prefix hashes (term + payload of every entry through that index) must be equal. A
//! prefix hash match there implies a match at every lower index, so one comparison per pair
//! suffices; indexes below the change were checked when they were written.

use ferrokv::raft::NodeId;

use super::{Check, History, violated};

const NAME: &str = "log matching (Raft §5.3)";

/// Stateless: works on [`History::logs`].
#[derive(Debug, Default)]
pub struct LogMatching;

impl LogMatching {
    /// Node `node`'s durable log changed from index `first` on.
    pub fn on_changed(&mut self, node: NodeId, first: u64, history: &History) -> Check {
        let mine = &history.logs[&node];
        for (&other, theirs) in &history.logs {
            if other == node {
                continue;
            }
            let top = mine.last_index().min(theirs.last_index());
            let mut index = top;
            while index >= first.max(1) {
                let (term_a, hash_a) = mine.entries[index as usize - 1];
                let (term_b, hash_b) = theirs.entries[index as usize - 1];
                if term_a == term_b {
                    if hash_a != hash_b {
                        return violated(
                            NAME,
                            format!(
                                "n{node} and n{other} both hold term {term_a} at index {index} \
                                 but their logs differ at or before it"
                            ),
                        );
                    }
                    break;
                }
                index -= 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::LogMirror;
    use ferrokv::raft::Entry;

    fn e(term: u64, index: u64, data: &str) -> Entry {
        Entry {
            term,
            index,
            data: data.into(),
            ..Default::default()
        }
    }

    #[test]
    fn same_term_at_an_index_with_different_prefixes_is_caught() {
        let mut history = History::default();
        let mut a = LogMirror::default();
        a.apply(&[e(1, 1, "x"), e(2, 2, "y")]);
        let mut b = LogMirror::default();
        b.apply(&[e(1, 1, "z"), e(2, 2, "y")]);
        history.logs.insert(1, a);
        history.logs.insert(2, b);
        assert!(LogMatching.on_changed(2, 1, &history).is_err());
    }

    #[test]
    fn a_diverged_suffix_of_another_term_is_allowed() {
        let mut history = History::default();
        let mut a = LogMirror::default();
        a.apply(&[e(1, 1, "x"), e(2, 2, "y")]);
        let mut b = LogMirror::default();
        b.apply(&[e(1, 1, "x"), e(3, 2, "w")]);
        history.logs.insert(1, a);
        history.logs.insert(2, b);
        assert!(LogMatching.on_changed(2, 1, &history).is_ok());
    }
}
