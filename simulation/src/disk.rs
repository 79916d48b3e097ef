//! The simulated Raft log disk of one node: what is durable, and the write in flight.
//!
//! What it models: the server's `LogActor` writes each `Ready`'s hard state and entries in one
//! fjall batch and fsyncs it (group commit); the `RaftActor` fetches no new `Ready` until that
//! fsync returns. Here the write becomes durable only when its simulated fsync completes,
//! some ticks later; a crash before then loses the whole write, as a power cut loses unsynced
//! pages. What survives a crash is exactly [`Disk::durable`].
//!
//! The MVCC store is not modelled here: it lives in a real fjall database per node (see
//! `cluster.rs`), which keeps every applied entry across a simulated crash — a consistent
//! prefix of the log, as the real store's atomic per-entry batches guarantee.

use ferrokv::raft::{ConfState, Entry, HardState, MemStorage, RaftError};

/// One `Ready`'s worth of writes: persisted atomically or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Identifies the write so a stale completion (from before a crash) is recognised.
    pub id: u64,
    /// New hard state, if it changed.
    pub hard_state: Option<HardState>,
    /// New entries; index `i` replaces every stored entry `≥ i` (the `Ready` contract).
    pub entries: Vec<Entry>,
    /// Whether the write was fsynced (`Write::sync` of the driver's `Persist`): only a synced
    /// write makes the node's earlier store batches durable (one fjall journal).
    pub sync: bool,
}

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Writes made durable.
    pub synced: u64,
    /// Writes lost because the node crashed before their fsync completed.
    pub lost: u64,
}

/// A node's log disk.
///
/// Writes complete in the order they began. The honest driver keeps at most one in flight
/// (it waits for each `Persist`); `Sabotage::SendBeforePersist` reports writes durable at
/// once and so can queue several.
#[derive(Debug)]
pub struct Disk {
    durable: MemStorage,
    in_flight: std::collections::VecDeque<Write>,
    next_write_id: u64,
    /// What happened so far.
    pub stats: DiskStats,
}

impl Disk {
    /// A fresh disk of a member bootstrapped with configuration `conf_state` (the server writes
    /// the initial configuration before the first `Ready`).
    pub fn new(conf_state: ConfState) -> Self {
        Disk {
            durable: MemStorage::new_with_conf_state(conf_state),
            in_flight: Default::default(),
            next_write_id: 1,
            stats: DiskStats::default(),
        }
    }

    /// Everything that survived every crash so far: the log a restarting node loads.
    pub fn durable(&self) -> &MemStorage {
        &self.durable
    }

    /// Starts writing `hard_state` and `entries`; returns the write's id, to pass to
    /// [`Disk::complete`] when its fsync is due.
    pub fn begin(&mut self, hard_state: Option<HardState>, entries: Vec<Entry>, sync: bool) -> u64 {
        let id = self.next_write_id;
        self.next_write_id += 1;
        self.in_flight.push_back(Write {
            id,
            hard_state,
            entries,
            sync,
        });
        id
    }

    /// The fsync of write `id` completed: makes it and every write begun before it durable
    /// (an fsync covers every earlier write) and returns them in order, `id`'s last; empty
    /// when that write was lost in a crash or is already durable.
    ///
    /// Errors: a write whose entries leave a gap in the log (a core bug, reported as is).
    pub fn complete(&mut self, id: u64) -> Result<Vec<Write>, RaftError> {
        if !self.in_flight.iter().any(|w| w.id == id) {
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        while let Some(write) = self.in_flight.pop_front() {
            self.durable.append(&write.entries)?;
            if let Some(hs) = write.hard_state {
                self.durable.set_hard_state(hs);
            }
            self.stats.synced += 1;
            let last = write.id == id;
            done.push(write);
            if last {
                break;
            }
        }
        Ok(done)
    }

    /// Drops the last durable entry if this node does not know it committed, as a disk whose
    /// fsync lied would on power loss (an entry it knows committed was applied, and the store
    /// would notice). Only for [`Sabotage::LyingFsync`](crate::cluster::Sabotage::LyingFsync).
    pub fn lose_last_entry(&mut self) {
        let hs = self.durable.hard_state();
        let entries = self.durable.all_entries();
        let Some((last, kept)) = entries.split_last() else {
            return;
        };
        if last.index <= hs.commit {
            return;
        }
        let mut durable = MemStorage::new_with_conf_state(self.durable.conf_state().clone());
        durable
            .append(kept)
            .expect("a prefix of a valid log is valid");
        durable.set_hard_state(hs);
        self.durable = durable;
    }

    /// The node crashed: the in-flight write, if any, never reaches the disk.
    pub fn crash(&mut self) {
        self.stats.lost += self.in_flight.len() as u64;
        self.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::Storage;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            term,
            index,
            ..Default::default()
        }
    }

    #[test]
    fn a_completed_write_is_durable_and_a_crashed_one_is_not() {
        let mut disk = Disk::new(ConfState::from_voters([1, 2, 3]));
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: 0,
        };
        let first = disk.begin(Some(hs), vec![entry(1, 1)], true);
        assert_eq!(
            disk.complete(first),
            Ok(vec![Write {
                id: first,
                hard_state: Some(hs),
                entries: vec![entry(1, 1)],
                sync: true,
            }])
        );
        let second = disk.begin(None, vec![entry(1, 2)], true);
        disk.crash();
        assert_eq!(disk.complete(second), Ok(vec![]));
        assert_eq!(disk.durable().last_index(), Ok(1));
        assert_eq!(disk.durable().hard_state(), hs);
        assert_eq!(disk.stats, DiskStats { synced: 1, lost: 1 });
    }

    #[test]
    fn writes_complete_in_order_and_a_crash_loses_every_queued_one() {
        let mut disk = Disk::new(ConfState::from_voters([1]));
        let a = disk.begin(None, vec![entry(1, 1)], true);
        let b = disk.begin(None, vec![entry(1, 2)], true);
        let c = disk.begin(None, vec![entry(1, 3)], true);
        // Completing b makes a durable too (an fsync covers every earlier write).
        let done: Vec<u64> = disk.complete(b).unwrap().iter().map(|w| w.id).collect();
        assert_eq!(done, vec![a, b]);
        assert_eq!(disk.complete(a), Ok(vec![]), "already durable");
        assert_eq!(disk.durable().last_index(), Ok(2));
        let d = disk.begin(None, vec![entry(1, 4)], true);
        disk.crash();
        assert_eq!(disk.complete(c), Ok(vec![]));
        assert_eq!(disk.complete(d), Ok(vec![]));
        assert_eq!(disk.durable().last_index(), Ok(2));
        assert_eq!(disk.stats, DiskStats { synced: 2, lost: 2 });
    }
}
