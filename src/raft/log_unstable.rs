//! The unstable tail of the log: a snapshot and entries the core accepted that the caller
//! has not yet reported durable through `advance` (etcd raft `unstable`).

use super::types::{Entry, SnapshotMeta};

/// A snapshot and entries not yet known to be on stable storage.
///
/// Invariants: `entries[i].index == offset + i`; every index ≥ `offset` that exists is here.
/// Without `snapshot`, every index < `offset` is in stable storage. With `snapshot`,
/// `offset == snapshot.index + 1` and the snapshot replaces everything before `offset`: the
/// stable log is superseded until the snapshot is reported durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unstable {
    /// A snapshot received from the leader and not yet persisted (etcd raft
    /// `unstable.snapshot`).
    pub snapshot: Option<SnapshotMeta>,
    /// Index of `entries[0]` (or of the next entry to append when empty).
    pub offset: u64,
    /// The unstable entries, contiguous from `offset`.
    pub entries: Vec<Entry>,
}

impl Unstable {
    /// An empty tail starting after `last_stable_index`.
    pub fn new(last_stable_index: u64) -> Self {
        Unstable {
            snapshot: None,
            offset: last_stable_index + 1,
            entries: Vec::new(),
        }
    }

    /// First index of the log if a pending snapshot decides it (snapshot index + 1).
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.index + 1)
    }

    /// Last unstable index: of the last unstable entry, else of the pending snapshot.
    pub fn maybe_last_index(&self) -> Option<u64> {
        self.entries
            .last()
            .map(|e| e.index)
            .or_else(|| self.snapshot.as_ref().map(|s| s.index))
    }

    /// Term of `index` if the unstable tail knows it (an unstable entry, or the pending
    /// snapshot's own index).
    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            return self
                .snapshot
                .as_ref()
                .filter(|s| s.index == index)
                .map(|s| s.term);
        }
        self.entries
            .get((index - self.offset) as usize)
            .map(|e| e.term)
    }

    /// Entries through (`index`, `term`) became durable: drop them. Ignored when the entry at
    /// `index` no longer has `term` (it was overwritten by a newer leader after the Ready was
    /// taken, so the durable copy is stale and the new one is still pending).
    pub fn stable_to(&mut self, index: u64, term: u64) {
        // Below the offset: at most the pending snapshot's index, which `stable_snap_to`
        // handles.
        if index < self.offset || self.maybe_term(index) != Some(term) {
            return;
        }
        let n = (index + 1 - self.offset) as usize;
        self.entries.drain(..n);
        self.offset = index + 1;
    }

    /// The snapshot at `index` became durable: forget it (ignored when the pending snapshot is
    /// another one, i.e. a newer snapshot arrived after the Ready was taken).
    pub fn stable_snap_to(&mut self, index: u64) {
        if self.snapshot.as_ref().is_some_and(|s| s.index == index) {
            self.snapshot = None;
        }
    }

    /// Replaces the whole tail by `snapshot` (etcd raft `unstable.restore`): no unstable
    /// entries, the next entry goes right after the snapshot index.
    pub fn restore(&mut self, snapshot: SnapshotMeta) {
        self.offset = snapshot.index + 1;
        self.entries.clear();
        self.snapshot = Some(snapshot);
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

    fn snap(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn restore_replaces_entries_by_the_snapshot() {
        let mut u = Unstable::new(4);
        u.truncate_and_append(&[ent(1, 5), ent(1, 6)]);
        u.restore(snap(10, 3));
        assert_eq!(u.offset, 11);
        assert!(u.entries.is_empty());
        assert_eq!(u.maybe_first_index(), Some(11));
        assert_eq!(u.maybe_last_index(), Some(10));
        assert_eq!(u.maybe_term(10), Some(3));
        assert_eq!(u.maybe_term(9), None);
        assert_eq!(
            u.maybe_term(5),
            None,
            "entries before the snapshot are gone"
        );
        // Entries continue after the snapshot; the last index follows them.
        u.truncate_and_append(&[ent(3, 11)]);
        assert_eq!(u.maybe_last_index(), Some(11));
        assert_eq!(u.maybe_first_index(), Some(11));
    }

    #[test]
    fn stable_snap_to_forgets_only_the_matching_snapshot() {
        let mut u = Unstable::new(0);
        u.restore(snap(10, 3));
        u.truncate_and_append(&[ent(3, 11)]);
        u.stable_snap_to(9);
        assert!(u.snapshot.is_some());
        // An entries report for the snapshot's index is not an entry of the tail.
        u.stable_to(10, 3);
        assert_eq!((u.offset, u.entries.len()), (11, 1));
        u.stable_snap_to(10);
        assert_eq!(u.snapshot, None);
        assert_eq!(u.maybe_first_index(), None);
        assert_eq!(u.maybe_last_index(), Some(11));
        u.stable_to(11, 3);
        assert_eq!(u.maybe_last_index(), None);
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
