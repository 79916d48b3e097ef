//! The read-only view of stable storage that the core sees, and an in-memory implementation.
//!
//! The core never writes storage: new entries and hard state leave through
//! [`Ready`](super::Ready), the caller makes them durable, copies them into its `Storage`
//! (for [`MemStorage`]: [`MemStorage::append`], [`MemStorage::set_hard_state`]) and then calls
//! [`RawNode::advance`](super::RawNode::advance). Only after `advance` does the core read
//! those entries from storage instead of its unstable tail.

use super::error::{RaftError, Result};
use super::types::{ConfState, Entry, HardState};

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
/// Invariant: `entries[0]` is the dummy entry (index = first_index − 1) and indexes of
/// `entries` are contiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// `entries[0]` is the dummy/snapshot entry; real entries follow.
    entries: Vec<Entry>,
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
