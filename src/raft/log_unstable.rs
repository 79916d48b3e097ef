//! The unstable tail of the log: entries appended by the core that the caller has not yet
//! reported durable through `advance`.

use super::types::Entry;

/// Entries not yet known to be on stable storage.
///
/// Invariant: `entries[i].index == offset + i`; every index ≥ `offset` that exists is here,
/// every index < `offset` is in stable storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unstable {
    /// Index of `entries[0]` (or of the next entry to append when empty).
    pub offset: u64,
    /// The unstable entries, contiguous from `offset`.
    pub entries: Vec<Entry>,
}

impl Unstable {
    /// An empty tail starting after `last_stable_index`.
    pub fn new(last_stable_index: u64) -> Self {
        Unstable {
            offset: last_stable_index + 1,
            entries: Vec::new(),
        }
    }

    /// Last unstable index, if any entry is unstable.
    pub fn maybe_last_index(&self) -> Option<u64> {
        self.entries.last().map(|e| e.index)
    }

    /// Term of `index` if it is in the unstable tail.
    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            return None;
        }
        self.entries
            .get((index - self.offset) as usize)
            .map(|e| e.term)
    }

    /// Entries through (`index`, `term`) became durable: drop them. Ignored when the entry at
    /// `index` no longer has `term` (it was overwritten by a newer leader after the Ready was
    /// taken, so the durable copy is stale and the new one is still pending).
    pub fn stable_to(&mut self, index: u64, term: u64) {
        if self.maybe_term(index) != Some(term) {
            return;
        }
        let n = (index + 1 - self.offset) as usize;
        self.entries.drain(..n);
        self.offset = index + 1;
    }

    /// Appends `entries`, replacing any unstable entry at or after `entries[0].index`. When
    /// the new entries start before `offset`, the tail is replaced and `offset` moves back (the
    /// stable entries from there on are superseded; the Ready contract tells the caller to
    /// truncate them when it persists these).
    pub fn truncate_and_append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        let after = first.index;
        if after == self.offset + self.entries.len() as u64 {
            // Directly after the tail.
        } else if after <= self.offset {
            self.offset = after;
            self.entries.clear();
        } else {
            self.entries.truncate((after - self.offset) as usize);
        }
        self.entries.extend_from_slice(entries);
    }

    /// Unstable entries with indexes in `[low, high)`. Caller ensures the bounds are inside.
    pub fn slice(&self, low: u64, high: u64) -> &[Entry] {
        assert!(
            self.offset <= low && low <= high,
            "unstable slice [{low},{high}) out of range"
        );
        let upper = self.offset + self.entries.len() as u64;
        assert!(
            high <= upper,
            "unstable slice [{low},{high}) beyond {upper}"
        );
        &self.entries[(low - self.offset) as usize..(high - self.offset) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::testing::ent;

    #[test]
    fn stable_to_drops_prefix_only_when_term_matches() {
        let mut u = Unstable::new(4);
        u.truncate_and_append(&[ent(1, 5), ent(1, 6), ent(2, 7)]);
        u.stable_to(6, 2); // term mismatch: ignored
        assert_eq!(u.offset, 5);
        assert_eq!(u.entries.len(), 3);
        u.stable_to(6, 1);
        assert_eq!(u.offset, 7);
        assert_eq!(u.entries, vec![ent(2, 7)]);
        u.stable_to(4, 1); // below offset: ignored
        assert_eq!(u.offset, 7);
    }

    #[test]
    fn truncate_and_append_cases() {
        let mut u = Unstable::new(4);
        u.truncate_and_append(&[ent(1, 5), ent(1, 6)]);
        // Directly after.
        u.truncate_and_append(&[ent(1, 7)]);
        assert_eq!(u.entries, vec![ent(1, 5), ent(1, 6), ent(1, 7)]);
        // In the middle: truncate the conflicting suffix.
        u.truncate_and_append(&[ent(2, 6)]);
        assert_eq!(u.entries, vec![ent(1, 5), ent(2, 6)]);
        // Before the offset: replace all, move offset back.
        u.truncate_and_append(&[ent(3, 3)]);
        assert_eq!(u.offset, 3);
        assert_eq!(u.entries, vec![ent(3, 3)]);
    }

    #[test]
    fn maybe_term_and_last_index() {
        let mut u = Unstable::new(0);
        assert_eq!(u.maybe_last_index(), None);
        u.truncate_and_append(&[ent(1, 1), ent(2, 2)]);
        assert_eq!(u.maybe_last_index(), Some(2));
        assert_eq!(u.maybe_term(2), Some(2));
        assert_eq!(u.maybe_term(3), None);
        assert_eq!(u.maybe_term(0), None);
    }
}
