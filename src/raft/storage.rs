//! The read-only view of stable storage that the core sees, and an in-memory implementation.
//!
//! The core never writes storage: a snapshot to install, new entries and hard state leave
//! through [`Ready`](super::Ready), the caller makes them durable, copies them into its
//! `Storage` (for [`MemStorage`]: [`MemStorage::apply_snapshot`], [`MemStorage::append`],
//! [`MemStorage::set_hard_state`]) and then calls [`RawNode::advance`](super::RawNode::advance).
//! Only after `advance` does the core read them from storage instead of its unstable tail.
//!
//! Log compaction is the caller's decision, made outside the core: once the state machine
//! has applied through some index and its image at that index is saved, the caller records
//! the point ([`MemStorage::create_snapshot`]) and drops the entries it covers
//! ([`MemStorage::compact`]), as etcd's server does after `--snapshot-count` entries.
//!
//! ```text
//!  entries:  [ dummy = (first−1, term) | first ........ last ]
//!  snapshot:   (index, term, conf_state) with index ≥ first − 1
//! ```

use super::error::{RaftError, Result};
use super::types::{ConfState, Entry, HardState, SnapshotMeta};

/// What the core reads from stable storage.
///
/// Correctness contract for implementations:
/// - Index 0 / term 0 is the dummy entry before the first log entry; `term(first_index() - 1)`
///   must succeed (it is the dummy or, after compaction, the snapshot's last entry).
/// - `entries` and `term` return [`RaftError::Compacted`] below `first_index() - 1` /
///   `first_index()` and [`RaftError::Unavailable`] above `last_index()`.
/// - Everything returned must already be durable: the core treats it as persisted.
/// - `first_index` and `last_index` must not fail once the node is built: the core treats an
///   error there as a broken invariant and panics (an in-memory mirror such as [`MemStorage`]
///   never fails; a disk-backed implementation should keep these two indexes in memory).
/// - `snapshot()` covers everything compacted: its index is ≥ `first_index() - 1`, and its
///   term is `term(index)`. Otherwise a follower that needs a compacted entry could be sent
///   only a snapshot that does not reach it, and would never catch up.
pub trait Storage {
    /// The persisted hard state and configuration, read once when a node starts.
    fn initial_state(&self) -> Result<(HardState, ConfState)>;
    /// Entries with indexes in `[low, high)`, in order. With `max_size_bytes`, stops before
    /// the entry that would push the total [`Entry::size_bytes`] past the limit, but always
    /// returns at least one entry when `low < high`.
    fn entries(&self, low: u64, high: u64, max_size_bytes: Option<u64>) -> Result<Vec<Entry>>;
    /// Term of the entry at `index`; `term(first_index() - 1)` is allowed.
    fn term(&self, index: u64) -> Result<u64>;
    /// Index of the first available entry (1 for a log never compacted).
    fn first_index(&self) -> Result<u64>;
    /// Index of the last entry (0 for an empty log).
    fn last_index(&self) -> Result<u64>;
    /// The latest snapshot point (etcd raft `Storage.Snapshot`), read by a leader that must
    /// send `InstallSnapshot` to a follower whose next entry is compacted. Index 0 means no
    /// snapshot was ever taken.
    ///
    /// Errors: [`RaftError::SnapshotTemporarilyUnavailable`] when a snapshot is being built and
    /// cannot be offered yet; the leader sends nothing and retries later.
    fn snapshot(&self) -> Result<SnapshotMeta>;
}

/// In-memory [`Storage`], used by the `RaftActor` as a mirror of the durable log and by the
/// simulator and tests as the "disk".
///
/// Ownership: the `RawNode` owns its storage (`RawNode<MemStorage>`); the caller writes
/// through [`RawNode::storage_mut`](super::RawNode::storage_mut) between `ready()` and
/// `advance()`. Cloning copies the whole log — there is deliberately no shared interior
/// mutability, so no lock and no way for another thread to change what the core reads
/// underneath it.
///
/// Invariants: `entries[0]` is the dummy entry (index = first_index − 1, with the term of
/// that index) and indexes of `entries` are contiguous; `snapshot.index ≥ entries[0].index`
/// (compaction never runs past the recorded snapshot point, see [`MemStorage::compact`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// `entries[0]` is the dummy/compaction-point entry; real entries follow.
    entries: Vec<Entry>,
    /// The latest snapshot point (index 0: none).
    snapshot: SnapshotMeta,
}

impl Default for MemStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStorage {
    /// An empty log with an empty configuration (a node that will learn its configuration
    /// from a leader).
    pub fn new() -> Self {
        MemStorage {
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            entries: vec![Entry::default()],
            snapshot: SnapshotMeta::default(),
        }
    }

    /// An empty log whose initial configuration is `conf_state` (bootstrapping a cluster).
    pub fn new_with_conf_state(conf_state: ConfState) -> Self {
        MemStorage {
            conf_state,
            ..Self::new()
        }
    }

    /// Appends `entries`, first removing every stored entry with index ≥ `entries[0].index`
    /// (the Ready contract: an entry at index i replaces any stored entry ≥ i).
    ///
    /// Errors: [`RaftError::Compacted`] if the first entry would overwrite the dummy/snapshot
    /// entry; [`RaftError::Unavailable`] if it would leave a gap after the last entry.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let offset = self.entries[0].index;
        if first.index <= offset {
            return Err(RaftError::Compacted);
        }
        let last = self.last_index_inner();
        if first.index > last + 1 {
            return Err(RaftError::Unavailable);
        }
        self.entries.truncate((first.index - offset) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Records the persisted hard state.
    pub fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    /// The stored hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Records the configuration (after a configuration change is applied).
    pub fn set_conf_state(&mut self, conf_state: ConfState) {
        self.conf_state = conf_state;
    }

    /// The stored configuration.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// All stored entries (excluding the dummy entry), for tests and debugging.
    pub fn all_entries(&self) -> &[Entry] {
        &self.entries[1..]
    }

    fn last_index_inner(&self) -> u64 {
        self.entries[0].index + self.entries.len() as u64 - 1
    }

    /// Records the snapshot point at `index` (etcd raft `MemoryStorage.CreateSnapshot`): the
    /// caller's state machine has saved its image at `index`, and `conf_state` is the
    /// configuration as of `index`. The log is unchanged; [`MemStorage::compact`] may then
    /// drop the entries the point covers. Returns the new point.
    ///
    /// Errors: [`RaftError::SnapOutOfDate`] if `index` ≤ the current snapshot index;
    /// [`RaftError::Unavailable`] if `index` is past the last index.
    pub fn create_snapshot(&mut self, index: u64, conf_state: ConfState) -> Result<SnapshotMeta> {
        if index <= self.snapshot.index {
            return Err(RaftError::SnapOutOfDate);
        }
        let term = self.term(index)?;
        self.snapshot = SnapshotMeta {
            index,
            term,
            conf_state,
        };
        Ok(self.snapshot.clone())
    }

    /// Drops every entry with index ≤ `index` (etcd raft `MemoryStorage.Compact`); the entry at
    /// `index` stays as the dummy entry (its index and term only), so `term(index)` still
    /// answers and `first_index()` becomes `index + 1`.
    ///
    /// Errors: [`RaftError::Compacted`] if `index` ≤ `first_index() − 1` (already gone);
    /// [`RaftError::Unavailable`] if `index` is past the last index; [`RaftError::Storage`] if
    /// `index` is past the snapshot index. The last rule is ours (etcd only documents it):
    /// entries the snapshot does not cover would be lost for a follower that needs them.
    pub fn compact(&mut self, index: u64) -> Result<()> {
        let offset = self.entries[0].index;
        if index <= offset {
            return Err(RaftError::Compacted);
        }
        if index > self.last_index_inner() {
            return Err(RaftError::Unavailable);
        }
        if index > self.snapshot.index {
            return Err(RaftError::Storage(format!(
                "compact {index} past the snapshot index {}",
                self.snapshot.index
            )));
        }
        let keep = (index - offset) as usize;
        let dummy = Entry {
            index,
            term: self.entries[keep].term,
            ..Default::default()
        };
        self.entries.drain(..keep);
        self.entries[0] = dummy;
        Ok(())
    }

    /// Replaces the whole log by the snapshot point `meta` (etcd raft
    /// `MemoryStorage.ApplySnapshot`): afterwards the log is empty after (`meta.index`,
    /// `meta.term`), `first_index() == meta.index + 1`, the stored configuration is
    /// `meta.conf_state` and `snapshot()` returns `meta`. The hard state is left to
    /// [`MemStorage::set_hard_state`] (the same `Ready` carries it). Called by the caller for a
    /// `Ready::snapshot`, before the Ready's entries.
    ///
    /// Errors: [`RaftError::SnapOutOfDate`] if the storage already has a snapshot at or past
    /// `meta.index` (a storage that never had one accepts any point).
    pub fn apply_snapshot(&mut self, meta: SnapshotMeta) -> Result<()> {
        if self.snapshot.index != 0 && self.snapshot.index >= meta.index {
            return Err(RaftError::SnapOutOfDate);
        }
        self.entries = vec![Entry {
            index: meta.index,
            term: meta.term,
            ..Default::default()
        }];
        self.conf_state = meta.conf_state.clone();
        self.snapshot = meta;
        Ok(())
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<(HardState, ConfState)> {
        Ok((self.hard_state, self.conf_state.clone()))
    }

    fn entries(&self, low: u64, high: u64, max_size_bytes: Option<u64>) -> Result<Vec<Entry>> {
        let offset = self.entries[0].index;
        if low <= offset {
            return Err(RaftError::Compacted);
        }
        if high > self.last_index_inner() + 1 {
            return Err(RaftError::Unavailable);
        }
        let slice = &self.entries[(low - offset) as usize..(high - offset) as usize];
        Ok(limit_size(slice, max_size_bytes).to_vec())
    }

    fn term(&self, index: u64) -> Result<u64> {
        let offset = self.entries[0].index;
        if index < offset {
            return Err(RaftError::Compacted);
        }
        self.entries
            .get((index - offset) as usize)
            .map(|e| e.term)
            .ok_or(RaftError::Unavailable)
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.entries[0].index + 1)
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.last_index_inner())
    }

    fn snapshot(&self) -> Result<SnapshotMeta> {
        Ok(self.snapshot.clone())
    }
}

/// The longest prefix of `entries` whose total [`Entry::size_bytes`] stays within
/// `max_size_bytes`, but never fewer than one entry (so a single large entry still moves).
pub(crate) fn limit_size(entries: &[Entry], max_size_bytes: Option<u64>) -> &[Entry] {
    let Some(max) = max_size_bytes else {
        return entries;
    };
    let mut total = 0u64;
    let mut n = 0;
    for e in entries {
        total += e.size_bytes();
        if n > 0 && total > max {
            break;
        }
        n += 1;
    }
    &entries[..n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::testing::ent;

    #[test]
    fn empty_storage_has_dummy_entry() {
        let s = MemStorage::new();
        assert_eq!(s.first_index(), Ok(1));
        assert_eq!(s.last_index(), Ok(0));
        assert_eq!(s.term(0), Ok(0));
        assert_eq!(s.term(1), Err(RaftError::Unavailable));
        assert_eq!(s.entries(1, 1, None), Ok(vec![]));
    }

    #[test]
    fn append_truncates_conflicting_suffix() {
        let mut s = MemStorage::new();
        s.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
        s.append(&[ent(2, 2)]).unwrap();
        assert_eq!(s.all_entries(), &[ent(1, 1), ent(2, 2)]);
        assert_eq!(s.last_index(), Ok(2));
        assert_eq!(s.term(2), Ok(2));
    }

    #[test]
    fn append_rejects_gaps_and_dummy_overwrite() {
        let mut s = MemStorage::new();
        assert_eq!(s.append(&[ent(1, 2)]), Err(RaftError::Unavailable));
        assert_eq!(s.append(&[ent(1, 0)]), Err(RaftError::Compacted));
        assert_eq!(s.append(&[]), Ok(()));
    }

    #[test]
    fn entries_respects_bounds_and_size_limit() {
        let mut s = MemStorage::new();
        s.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
        assert_eq!(s.entries(0, 2, None), Err(RaftError::Compacted));
        assert_eq!(s.entries(1, 5, None), Err(RaftError::Unavailable));
        assert_eq!(s.entries(2, 4, None), Ok(vec![ent(1, 2), ent(1, 3)]));
        // Each empty entry is 24 bytes: 50 bytes fit two.
        assert_eq!(s.entries(1, 4, Some(50)), Ok(vec![ent(1, 1), ent(1, 2)]));
        // A limit smaller than one entry still returns one.
        assert_eq!(s.entries(1, 4, Some(1)), Ok(vec![ent(1, 1)]));
    }

    /// Entries 1..=5 of term 1, 2, 3, 4, 5 (each entry's term is its index).
    fn five_terms() -> MemStorage {
        let mut s = MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]));
        s.append(&(1..=5).map(|i| ent(i, i)).collect::<Vec<_>>())
            .unwrap();
        s
    }

    fn cs(voters: &[u64]) -> ConfState {
        ConfState::from_voters(voters.iter().copied())
    }

    #[test]
    fn create_snapshot_records_term_and_refuses_older_points() {
        let mut s = five_terms();
        assert_eq!(s.snapshot(), Ok(SnapshotMeta::default()));
        let meta = s.create_snapshot(3, cs(&[1, 2])).unwrap();
        assert_eq!(
            meta,
            SnapshotMeta {
                index: 3,
                term: 3,
                conf_state: cs(&[1, 2])
            }
        );
        assert_eq!(s.snapshot(), Ok(meta));
        // The log itself is untouched.
        assert_eq!(s.first_index(), Ok(1));
        assert_eq!(
            s.create_snapshot(3, cs(&[1])),
            Err(RaftError::SnapOutOfDate)
        );
        assert_eq!(
            s.create_snapshot(2, cs(&[1])),
            Err(RaftError::SnapOutOfDate)
        );
        assert_eq!(s.create_snapshot(6, cs(&[1])), Err(RaftError::Unavailable));
        assert_eq!(s.create_snapshot(5, cs(&[1])).map(|m| m.term), Ok(5));
    }

    #[test]
    fn compact_keeps_the_compaction_point_as_dummy_entry() {
        let mut s = five_terms();
        s.create_snapshot(4, cs(&[1])).unwrap();
        s.compact(3).unwrap();
        assert_eq!(s.first_index(), Ok(4));
        assert_eq!(s.last_index(), Ok(5));
        assert_eq!(s.term(3), Ok(3), "the dummy entry keeps its term");
        assert_eq!(s.term(2), Err(RaftError::Compacted));
        assert_eq!(s.entries(3, 5, None), Err(RaftError::Compacted));
        assert_eq!(s.entries(4, 6, None), Ok(vec![ent(4, 4), ent(5, 5)]));
        assert_eq!(s.compact(3), Err(RaftError::Compacted));
        assert_eq!(s.compact(2), Err(RaftError::Compacted));
        assert!(
            matches!(s.compact(5), Err(RaftError::Storage(_))),
            "past the snapshot index"
        );
        s.compact(4).unwrap();
        assert_eq!(s.all_entries(), &[ent(5, 5)]);
        // Appending after a compaction still works, and cannot touch the dummy entry.
        s.append(&[ent(6, 6)]).unwrap();
        assert_eq!(s.append(&[ent(6, 4)]), Err(RaftError::Compacted));
        assert_eq!(s.last_index(), Ok(6));
    }

    #[test]
    fn compact_past_last_index_is_unavailable() {
        let mut s = five_terms();
        assert_eq!(s.compact(6), Err(RaftError::Unavailable));
    }

    #[test]
    fn apply_snapshot_replaces_log_and_configuration() {
        let mut s = five_terms();
        let meta = SnapshotMeta {
            index: 9,
            term: 7,
            conf_state: cs(&[1, 2, 4]),
        };
        s.apply_snapshot(meta.clone()).unwrap();
        assert_eq!(s.first_index(), Ok(10));
        assert_eq!(s.last_index(), Ok(9));
        assert_eq!(s.term(9), Ok(7));
        assert_eq!(s.term(5), Err(RaftError::Compacted));
        assert!(s.all_entries().is_empty());
        assert_eq!(s.conf_state(), &meta.conf_state);
        assert_eq!(s.snapshot(), Ok(meta.clone()));
        assert_eq!(s.initial_state().unwrap().1, meta.conf_state);
        // Entries continue right after the snapshot.
        s.append(&[ent(7, 10)]).unwrap();
        assert_eq!(s.last_index(), Ok(10));
        // The same or an older point is refused and changes nothing.
        assert_eq!(
            s.apply_snapshot(meta.clone()),
            Err(RaftError::SnapOutOfDate)
        );
        let older = SnapshotMeta { index: 8, ..meta };
        assert_eq!(s.apply_snapshot(older), Err(RaftError::SnapOutOfDate));
        assert_eq!(s.last_index(), Ok(10));
    }

    #[test]
    fn initial_state_returns_what_was_set() {
        let mut s = MemStorage::new_with_conf_state(ConfState::from_voters([1, 2, 3]));
        let hs = HardState {
            term: 3,
            vote: 2,
            commit: 0,
        };
        s.set_hard_state(hs);
        let (got_hs, got_cs) = s.initial_state().unwrap();
        assert_eq!(got_hs, hs);
        assert_eq!(got_cs.voters.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
