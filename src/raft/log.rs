//! `RaftLog`: the log as the core sees it — stable storage followed by the unstable tail
//! (which may start with a snapshot received from the leader) — plus the commit and applied
//! indexes.

use super::error::{RaftError, Result};
use super::log_unstable::Unstable;
use super::storage::{Storage, limit_size};
use super::types::{Entry, SnapshotMeta};

/// The replicated log of one node.
///
/// ```text
///   storage (durable)             unstable (not yet durable)
/// [ 1 .. first-1 | first ..... offset-1 ][ offset ....... last ]
///   compacted        ^applied  ^committed (anywhere ≤ last)
///
///   with a pending snapshot (after restore, before the Ready is advanced):
/// [ superseded stable log ][ snapshot (index, term) | offset = index+1 ... last ]
///                            ^committed ≥ index, applied < index until advance
/// ```
/// Invariants: `applied ≤ committed ≤ last_index()`; while a snapshot is pending no committed
/// entry is handed out (the state machine must install the snapshot's image first).
#[derive(Debug)]
pub struct RaftLog<S: Storage> {
    /// The read-only durable view.
    pub storage: S,
    /// Entries appended but not yet reported durable.
    pub unstable: Unstable,
    /// Highest index known committed (Raft Figure 2 `commitIndex`).
    pub committed: u64,
    /// Highest index handed to the application in a Ready and acknowledged by `advance`.
    pub applied: u64,
}

impl<S: Storage> RaftLog<S> {
    /// A log over `storage`; committed and applied start just before the first index.
    pub fn new(storage: S) -> Result<Self> {
        let first = storage.first_index()?;
        let last = storage.last_index()?;
        Ok(RaftLog {
            storage,
            unstable: Unstable::new(last),
            committed: first - 1,
            applied: first - 1,
        })
    }

    /// First index still available (1 for a never-compacted log; snapshot index + 1 while a
    /// snapshot is pending).
    pub fn first_index(&self) -> u64 {
        match self.unstable.maybe_first_index() {
            Some(i) => i,
            None => self.storage.first_index().expect("storage first_index"),
        }
    }

    /// Index of the last entry, stable or not (0 for an empty log).
    pub fn last_index(&self) -> u64 {
        match self.unstable.maybe_last_index() {
            Some(i) => i,
            None => self.storage.last_index().expect("storage last_index"),
        }
    }

    /// Index of the last entry known to be durable (in storage and not superseded by the
    /// unstable tail). A leader counts itself in the commit quorum only up to here.
    pub fn last_persisted_index(&self) -> u64 {
        if self.unstable.snapshot.is_some() {
            // The stored log after its own compaction point is superseded by the snapshot.
            return self.storage.first_index().expect("storage first_index") - 1;
        }
        let stored = self.storage.last_index().expect("storage last_index");
        stored.min(self.unstable.offset - 1)
    }

    /// Term of the entry at `index`; `term(first_index() - 1)` and `term(0)` are allowed.
    /// Errors: [`RaftError::Compacted`] below `first_index() - 1`, [`RaftError::Unavailable`]
    /// past the last index.
    pub fn term(&self, index: u64) -> Result<u64> {
        if let Some(t) = self.unstable.maybe_term(index) {
            return Ok(t);
        }
        if index + 1 < self.first_index() {
            return Err(RaftError::Compacted);
        }
        if index > self.last_index() {
            return Err(RaftError::Unavailable);
        }
        if index >= self.unstable.offset {
            // Covered by the unstable tail but not in it: cannot happen given the invariant.
            return Err(RaftError::Unavailable);
        }
        self.storage.term(index)
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index())
            .expect("last term must be readable")
    }

    /// Whether the entry at `index` has `term` (index 0 matches term 0).
    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index).map(|t| t == term).unwrap_or(false)
    }

    /// Raft §5.4.1: a candidate's log is at least as up-to-date as ours if its last term is
    /// higher, or equal with a last index at least as large.
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// Follower side of AppendEntries (Raft §5.3): if our log has (`prev_index`, `prev_term`),
    /// append `entries` (deleting a conflicting suffix, keeping matching entries) and commit
    /// through min(`leader_commit`, last new index). Returns the last new index, or `None` when
    /// the consistency check fails.
    pub fn maybe_append(
        &mut self,
        prev_index: u64,
        prev_term: u64,
        leader_commit: u64,
        entries: &[Entry],
    ) -> Option<u64> {
        if !self.match_term(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index + entries.len() as u64;
        let conflict = self.find_conflict(entries);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "entry {conflict} conflicts with committed entry (committed {})",
                self.committed
            );
            let start = (conflict - (prev_index + 1)) as usize;
            self.append(&entries[start..]);
        }
        self.commit_to(leader_commit.min(last_new));
        Some(last_new)
    }

    /// Index of the first entry in `entries` that is new or conflicts (same index, different
    /// term) with our log; 0 when every entry is already present.
    pub fn find_conflict(&self, entries: &[Entry]) -> u64 {
        entries
            .iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map_or(0, |e| e.index)
    }

    /// The largest index ≤ `index` whose term is ≤ `term`, with its term (etcd raft's
    /// findConflictByTerm). Used on both sides of a rejected AppendEntries to skip, per round
    /// trip, all entries of a term that cannot match. Returns term 0 if a term is unreadable.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut i = index;
        loop {
            match self.term(i) {
                Ok(t) if t > term && i > 0 => i -= 1,
                Ok(t) => return (i, t),
                Err(_) => return (i, 0),
            }
        }
    }

    /// Appends entries to the unstable tail (replacing any conflicting suffix); returns the
    /// new last index.
    pub fn append(&mut self, entries: &[Entry]) -> u64 {
        if let Some(first) = entries.first() {
            assert!(
                first.index > self.committed,
                "cannot overwrite committed index {}",
                first.index
            );
            self.unstable.truncate_and_append(entries);
        }
        self.last_index()
    }

    /// Entries in `[low, high)` from storage and/or the unstable tail, limited to
    /// `max_size_bytes` (at least one entry is returned when `low < high`).
    pub fn slice(&self, low: u64, high: u64, max_size_bytes: Option<u64>) -> Result<Vec<Entry>> {
        if low >= high {
            return Ok(Vec::new());
        }
        if low < self.first_index() {
            return Err(RaftError::Compacted);
        }
        if high > self.last_index() + 1 {
            return Err(RaftError::Unavailable);
        }
        let mut out = Vec::new();
        if low < self.unstable.offset {
            let stable_high = high.min(self.unstable.offset);
            out = self.storage.entries(low, stable_high, max_size_bytes)?;
            if (out.len() as u64) < stable_high - low {
                return Ok(out); // the size limit cut the stable part short
            }
        }
        if high > self.unstable.offset {
            let unstable = self.unstable.slice(low.max(self.unstable.offset), high);
            out.extend_from_slice(unstable);
        }
        let n = limit_size(&out, max_size_bytes).len();
        out.truncate(n);
        Ok(out)
    }

    /// Entries from `low` to the end of the log, limited to `max_size_bytes`.
    pub fn entries_from(&self, low: u64, max_size_bytes: Option<u64>) -> Result<Vec<Entry>> {
        self.slice(low, self.last_index() + 1, max_size_bytes)
    }

    /// Raises the commit index to `to` (never lowers it). Panics when `to` is past the last
    /// index: that would mean a leader told us to commit entries we do not have.
    pub fn commit_to(&mut self, to: u64) {
        if to > self.committed {
            assert!(
                to <= self.last_index(),
                "commit {to} beyond last index {}",
                self.last_index()
            );
            self.committed = to;
        }
    }

    /// Leader commit rule (Raft §5.4.2): commit `max_index` only if it is newer than the
    /// current commit index and its entry is from the leader's current `term`. Returns
    /// whether the commit index moved.
    pub fn maybe_commit(&mut self, max_index: u64, term: u64) -> bool {
        if max_index > self.committed && self.term(max_index) == Ok(term) {
            self.commit_to(max_index);
            return true;
        }
        false
    }

    /// Records that the application applied through `index`.
    pub fn applied_to(&mut self, index: u64) {
        assert!(
            index <= self.committed,
            "applied {index} beyond committed {}",
            self.committed
        );
        self.applied = self.applied.max(index);
    }

    /// Whether committed entries are waiting to be applied. Never while a snapshot is pending
    /// (etcd raft `hasNextCommittedEnts`): the entries before it are gone, the ones after it
    /// must wait until the state machine installed it.
    pub fn has_next_committed_entries(&self) -> bool {
        self.unstable.snapshot.is_none() && self.committed > self.applied
    }

    /// Committed but not yet applied entries, in order (none while a snapshot is pending).
    pub fn next_committed_entries(&self) -> Vec<Entry> {
        if !self.has_next_committed_entries() {
            return Vec::new();
        }
        self.slice(self.applied + 1, self.committed + 1, None)
            .expect("committed entries must be readable")
    }

    /// Entries through (`index`, `term`) are durable: drop them from the unstable tail.
    pub fn stable_to(&mut self, index: u64, term: u64) {
        self.unstable.stable_to(index, term);
    }

    /// The pending snapshot at `index` is durable and in storage: forget it.
    pub fn stable_snap_to(&mut self, index: u64) {
        self.unstable.stable_snap_to(index);
    }

    /// Follower: replace the log by `snapshot` (etcd raft `raftLog.restore`). The snapshot
    /// waits in the unstable tail to be persisted; the commit index jumps to its index (a
    /// snapshot only ever holds committed entries, Raft §7). `applied` stays until the Ready
    /// carrying the snapshot is advanced.
    ///
    /// Panics if `snapshot.index` ≤ `committed`: the caller must treat that as stale.
    pub fn restore(&mut self, snapshot: SnapshotMeta) {
        assert!(
            snapshot.index > self.committed,
            "restoring snapshot {} at or below commit {}",
            snapshot.index,
            self.committed
        );
        self.committed = snapshot.index;
        self.unstable.restore(snapshot);
    }

    /// The newest snapshot point: the pending one, else the storage's (etcd raft
    /// `raftLog.snapshot`). Errors: the storage's, e.g.
    /// [`RaftError::SnapshotTemporarilyUnavailable`].
    pub fn snapshot(&self) -> Result<SnapshotMeta> {
        match &self.unstable.snapshot {
            Some(s) => Ok(s.clone()),
            None => self.storage.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::storage::MemStorage;
    use crate::raft::testing::ent;

    /// A log with `stable` entries in storage and `unstable` ones in the tail; terms given.
    fn log(stable: &[u64], unstable: &[u64]) -> RaftLog<MemStorage> {
        let mut s = MemStorage::new();
        let st: Vec<Entry> = stable
            .iter()
            .enumerate()
            .map(|(i, t)| ent(*t, i as u64 + 1))
            .collect();
        s.append(&st).unwrap();
        let mut l = RaftLog::new(s).unwrap();
        let base = stable.len() as u64;
        let un: Vec<Entry> = unstable
            .iter()
            .enumerate()
            .map(|(i, t)| ent(*t, base + i as u64 + 1))
            .collect();
        l.append(&un);
        l
    }

    #[test]
    fn indexes_and_terms_span_stable_and_unstable() {
        let l = log(&[1, 1], &[2, 3]);
        assert_eq!(l.first_index(), 1);
        assert_eq!(l.last_index(), 4);
        assert_eq!(l.last_persisted_index(), 2);
        assert_eq!(l.term(0), Ok(0));
        assert_eq!(l.term(2), Ok(1));
        assert_eq!(l.term(4), Ok(3));
        assert_eq!(l.term(5), Err(RaftError::Unavailable));
        assert_eq!(l.last_term(), 3);
    }

    #[test]
    fn last_persisted_index_excludes_superseded_stable_entries() {
        let mut l = log(&[1, 1, 1], &[]);
        l.append(&[ent(2, 2)]);
        assert_eq!(l.last_index(), 2);
        assert_eq!(l.last_persisted_index(), 1);
        assert_eq!(l.term(2), Ok(2));
    }

    #[test]
    fn up_to_date_compares_last_term_then_index() {
        let l = log(&[1, 2, 2], &[]);
        assert!(l.is_up_to_date(3, 2));
        assert!(l.is_up_to_date(1, 3));
        assert!(!l.is_up_to_date(4, 1));
        assert!(!l.is_up_to_date(2, 2));
    }

    #[test]
    fn maybe_append_checks_consistency_and_truncates_conflicts() {
        let mut l = log(&[1, 1, 1], &[]);
        assert_eq!(l.maybe_append(3, 2, 3, &[ent(2, 4)]), None);
        assert_eq!(l.maybe_append(4, 1, 3, &[]), None);
        // Matching prefix, conflicting entry at 3: truncates 3 and appends.
        assert_eq!(l.maybe_append(2, 1, 3, &[ent(1, 3), ent(2, 4)]), Some(4));
        assert_eq!(l.unstable.entries, vec![ent(2, 4)]);
        assert_eq!(l.committed, 3);
        // Commit is limited to the last new entry, not the leader's commit.
        assert_eq!(l.maybe_append(4, 2, 10, &[ent(2, 5)]), Some(5));
        assert_eq!(l.committed, 5);
        assert_eq!(l.maybe_append(5, 2, 10, &[]), Some(5));
        assert_eq!(l.committed, 5);
    }

    #[test]
    fn maybe_append_keeps_entries_after_a_stale_duplicate() {
        // A delayed AppendEntries carrying a prefix of what we have must not truncate.
        let mut l = log(&[1, 1, 1, 1], &[]);
        assert_eq!(l.maybe_append(1, 1, 0, &[ent(1, 2)]), Some(2));
        assert_eq!(l.last_index(), 4);
    }

    #[test]
    fn find_conflict_by_term_skips_higher_terms() {
        let l = log(&[1, 1, 2, 2, 4, 4], &[]);
        assert_eq!(l.find_conflict_by_term(6, 3), (4, 2));
        assert_eq!(l.find_conflict_by_term(6, 4), (6, 4));
        assert_eq!(l.find_conflict_by_term(4, 1), (2, 1));
        assert_eq!(l.find_conflict_by_term(6, 0), (0, 0));
    }

    #[test]
    fn slice_honours_size_limit_across_the_boundary() {
        let l = log(&[1, 1], &[2, 2]);
        assert_eq!(l.slice(1, 5, None).unwrap().len(), 4);
        assert_eq!(l.slice(2, 4, None).unwrap(), vec![ent(1, 2), ent(2, 3)]);
        assert_eq!(l.slice(1, 5, Some(24 * 3)).unwrap().len(), 3);
        assert_eq!(l.slice(1, 5, Some(24)).unwrap().len(), 1);
        assert_eq!(l.slice(0, 2, None), Err(RaftError::Compacted));
        assert_eq!(l.slice(1, 6, None), Err(RaftError::Unavailable));
    }

    #[test]
    fn maybe_commit_only_for_current_term() {
        let mut l = log(&[1, 2], &[]);
        assert!(!l.maybe_commit(1, 2));
        assert_eq!(l.committed, 0);
        assert!(l.maybe_commit(2, 2));
        assert_eq!(l.committed, 2);
        assert!(!l.maybe_commit(1, 1));
    }

    fn snap(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            conf_state: crate::raft::ConfState::from_voters([1, 2]),
        }
    }

    #[test]
    fn restore_replaces_the_log_and_commits_the_snapshot_index() {
        // etcd raft log_test TestRestore, plus the reads of a pending snapshot.
        let mut l = log(&[1, 1, 1], &[2]);
        l.commit_to(2);
        l.applied_to(1);
        l.restore(snap(10, 3));
        assert_eq!(l.committed, 10);
        assert_eq!(
            l.applied, 1,
            "applied moves only when the Ready is advanced"
        );
        assert_eq!(l.first_index(), 11);
        assert_eq!(l.last_index(), 10);
        assert_eq!(l.term(10), Ok(3));
        assert_eq!(
            l.term(3),
            Err(RaftError::Compacted),
            "the old log is superseded"
        );
        assert_eq!(l.term(11), Err(RaftError::Unavailable));
        assert_eq!(l.slice(3, 4, None), Err(RaftError::Compacted));
        assert_eq!(l.last_persisted_index(), 0);
        assert!(!l.has_next_committed_entries());
        assert!(l.next_committed_entries().is_empty());
        assert_eq!(l.snapshot(), Ok(snap(10, 3)));
        // Entries after the snapshot are accepted against (10, 3).
        assert_eq!(l.maybe_append(10, 3, 11, &[ent(3, 11)]), Some(11));
        assert_eq!(l.committed, 11);
        assert!(
            !l.has_next_committed_entries(),
            "still waiting for the snapshot"
        );
    }

    #[test]
    fn persisted_snapshot_moves_reads_to_storage() {
        let mut l = log(&[1, 1, 1], &[]);
        l.restore(snap(10, 3));
        l.append(&[ent(3, 11)]);
        // The caller persists the snapshot, then the entries (the Ready contract).
        l.storage.apply_snapshot(snap(10, 3)).unwrap();
        l.storage.append(&[ent(3, 11)]).unwrap();
        l.stable_snap_to(10);
        l.stable_to(11, 3);
        l.applied_to(10);
        assert_eq!(l.unstable.snapshot, None);
        assert_eq!(l.first_index(), 11);
        assert_eq!(l.last_persisted_index(), 11);
        assert_eq!(l.term(10), Ok(3));
        l.commit_to(11);
        assert_eq!(l.next_committed_entries(), vec![ent(3, 11)]);
        assert_eq!(l.snapshot(), Ok(snap(10, 3)));
    }

    #[test]
    fn log_over_compacted_storage_starts_at_the_snapshot() {
        // etcd raft log_test TestLogRestore: committed and applied start at first − 1.
        let mut s = MemStorage::new();
        s.apply_snapshot(snap(100, 5)).unwrap();
        let l = RaftLog::new(s).unwrap();
        assert_eq!((l.committed, l.applied), (100, 100));
        assert_eq!(l.first_index(), 101);
        assert_eq!(l.last_index(), 100);
        assert_eq!(l.last_term(), 5);
        assert_eq!(l.term(99), Err(RaftError::Compacted));
        assert_eq!(l.entries_from(101, None), Ok(vec![]));
        assert_eq!(l.entries_from(100, None), Err(RaftError::Compacted));
    }

    #[test]
    fn committed_entries_are_handed_out_once_applied() {
        let mut l = log(&[1, 1, 1], &[]);
        l.commit_to(2);
        assert_eq!(l.next_committed_entries(), vec![ent(1, 1), ent(1, 2)]);
        l.applied_to(2);
        assert!(!l.has_next_committed_entries());
    }
}
