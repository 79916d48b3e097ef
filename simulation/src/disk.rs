//! The simulated Raft log disk of one node: what is durable, and the write in flight.
//!
//! What it models: the server's `LogActor` writes each `Ready`'s hard state, snapshot and
//! entries in one fjall batch and fsyncs it (group commit); the `RaftActor` fetches no new
//! `Ready` until that fsync returns. Here the write becomes durable only when its simulated
//! fsync completes, some ticks later; a crash before then loses the whole write, as a power
//! cut loses unsynced pages. What survives a crash is exactly [`Disk::durable`] (and
//! [`Disk::image`]).
//!
//! Log compaction (docs/snapshots.md §1): the `LogActor` writes a compaction (the snapshot
//! point and the removal of the entries it covers) as one batch *without* an fsync, behind
//! every write handed to it before. It becomes durable with the next synced write begun after
//! it — the same fsync of the one journal that makes the store's earlier batches durable, so
//! a crash never keeps a compaction without the store batch it summarises. Until then
//! [`Disk::crash`] drops it, and the compacted entries are still on the durable log.
//!
//! The MVCC store is not modelled here: each node's [`MemBackend`](ferrokv::mvcc::MemBackend)
//! is (see `cluster.rs`).

use ferrokv::raft::{ConfState, Entry, HardState, MemStorage, RaftError, SnapshotMeta, Storage};

/// One `Ready`'s worth of writes: persisted atomically or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Identifies the write so a stale completion (from before a crash) is recognised.
    pub id: u64,
    /// New hard state, if it changed.
    pub hard_state: Option<HardState>,
    /// A leader's snapshot this node restored: replaces the whole stored log, before
    /// `entries` (`Write::snapshot` of the driver's `Persist`).
    pub snapshot: Option<SnapshotMeta>,
    /// New entries; index `i` replaces every stored entry `≥ i` (the `Ready` contract).
    pub entries: Vec<Entry>,
    /// Whether the write was fsynced (`Write::sync` of the driver's `Persist`): only a synced
    /// write makes the node's earlier store batches (and compactions) durable (one journal).
    pub sync: bool,
}

/// A compaction waiting for an fsync (`Effect::CompactLog`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingCompaction {
    /// Last index removed.
    through: u64,
    /// Its term.
    through_term: u64,
    /// The snapshot point recorded with it.
    snapshot: SnapshotMeta,
    /// Id of the first write begun after it: a synced write with this id or a later one
    /// makes it durable.
    first_write_after: u64,
}

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Writes made durable.
    pub synced: u64,
    /// Writes lost because the node crashed before their fsync completed.
    pub lost: u64,
    /// Compactions made durable.
    pub compactions: u64,
    /// Compactions lost because the node crashed before an fsync covered them.
    pub compactions_lost: u64,
}

/// A node's log disk.
///
/// Writes complete in the order they began. The honest driver keeps at most one in flight
/// (it waits for each `Persist`); `Sabotage::SendBeforePersist` reports writes durable at
/// once and so can queue several.
#[derive(Debug)]
pub struct Disk {
    durable: MemStorage,
    /// The snapshot point of the last store image installed on this node, written in the
    /// image's own synced batch (the server's `image` record, `log::stage_image`).
    image: Option<SnapshotMeta>,
    in_flight: std::collections::VecDeque<Write>,
    compactions: Vec<PendingCompaction>,
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
            image: None,
            in_flight: Default::default(),
            compactions: Vec::new(),
            next_write_id: 1,
            stats: DiskStats::default(),
        }
    }

    /// Everything that survived every crash so far: the log a restarting node loads.
    pub fn durable(&self) -> &MemStorage {
        &self.durable
    }

    /// The snapshot point of the last store image installed here, if any (durable).
    pub fn image(&self) -> Option<&SnapshotMeta> {
        self.image.as_ref()
    }

    /// Records the point of a store image just installed; durable at once (it is written in
    /// the image's synced batch).
    pub fn record_image(&mut self, meta: SnapshotMeta) {
        self.image = Some(meta);
    }

    /// Starts writing `hard_state`, `snapshot` and `entries`; returns the write's id, to pass
    /// to [`Disk::complete`] when its fsync is due.
    pub fn begin(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<SnapshotMeta>,
        entries: Vec<Entry>,
        sync: bool,
    ) -> u64 {
        let id = self.next_write_id;
        self.next_write_id += 1;
        self.in_flight.push_back(Write {
            id,
            hard_state,
            snapshot,
            entries,
            sync,
        });
        id
    }

    /// Queues a compaction through `through` with its snapshot point (`Effect::CompactLog`),
    /// behind every write begun so far; see the module docs for when it becomes durable.
    pub fn compact(&mut self, through: u64, through_term: u64, snapshot: SnapshotMeta) {
        self.compactions.push(PendingCompaction {
            through,
            through_term,
            snapshot,
            first_write_after: self.next_write_id,
        });
    }

    /// Compactions queued and not yet durable.
    pub fn pending_compactions(&self) -> usize {
        self.compactions.len()
    }

    /// The fsync of write `id` completed: makes it and every write begun before it durable
    /// (an fsync covers every earlier write), with every compaction a synced one of them
    /// covers, and returns them in order, `id`'s last; empty when that write was lost in a
    /// crash or is already durable.
    ///
    /// Errors: a write that does not fit the durable log (a gap, a stale snapshot) or a
    /// compaction of entries it does not hold: a core or driver bug, reported as is.
    pub fn complete(&mut self, id: u64) -> Result<Vec<Write>, RaftError> {
        if !self.in_flight.iter().any(|w| w.id == id) {
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        while let Some(write) = self.in_flight.pop_front() {
            if let Some(snapshot) = &write.snapshot {
                self.durable.apply_snapshot(snapshot.clone())?;
            }
            self.durable.append(&write.entries)?;
            if let Some(hs) = write.hard_state {
                self.durable.set_hard_state(hs);
            }
            self.stats.synced += 1;
            if write.sync {
                self.compactions_durable(write.id)?;
            }
            let last = write.id == id;
            done.push(write);
            if last {
                break;
            }
        }
        Ok(done)
    }

    /// Makes durable every compaction queued before synced write `id` began, in order (the
    /// `LogStore::compact` batch: the snapshot record, then the removal).
    fn compactions_durable(&mut self, id: u64) -> Result<(), RaftError> {
        let due = self
            .compactions
            .iter()
            .take_while(|c| c.first_write_after <= id)
            .count();
        for c in self.compactions.drain(..due).collect::<Vec<_>>() {
            let recorded = self.durable.snapshot()?;
            if c.snapshot.index > recorded.index {
                let term = self.durable.term(c.snapshot.index)?;
                if term != c.snapshot.term {
                    return Err(RaftError::Storage(format!(
                        "snapshot point {}/{} but the durable log holds term {term} there",
                        c.snapshot.term, c.snapshot.index
                    )));
                }
                self.durable
                    .create_snapshot(c.snapshot.index, c.snapshot.conf_state.clone())?;
            }
            let compacted = self.durable.first_index()? - 1;
            if c.through > compacted {
                let term = self.durable.term(c.through)?;
                if term != c.through_term {
                    return Err(RaftError::Storage(format!(
                        "compaction through {}/{} but the durable log holds term {term} there",
                        c.through_term, c.through
                    )));
                }
                self.durable.compact(c.through)?;
            }
            self.stats.compactions += 1;
        }
        Ok(())
    }

    /// Makes every queued compaction durable now, fsynced on its own, whatever the store
    /// kept. Only for [`Sabotage::CompactBeforeStoreSync`](crate::cluster::Sabotage).
    pub fn sync_compactions(&mut self) -> Result<(), RaftError> {
        self.compactions_durable(u64::MAX)
    }

    /// Start-up repair after a crash between installing a leader's store image and making the
    /// Raft write of its snapshot durable (the server's `LogStore::finish_install`): the
    /// store holds the state at `image.index`, ahead of the durable commit index. If the log
    /// holds the entry (`image.index`, `image.term`) only the commit index moves up to it;
    /// otherwise the log is replaced by the snapshot. Returns the hard state and snapshot
    /// written (for the invariants), or `None` when no repair is due: no image, or the store
    /// is not exactly at it, or the commit index already covers it.
    pub fn finish_install(
        &mut self,
        store_applied_index: u64,
    ) -> Result<Option<(HardState, Option<SnapshotMeta>)>, RaftError> {
        let Some(image) = self.image.clone() else {
            return Ok(None);
        };
        let hs = self.durable.hard_state();
        if image.index != store_applied_index || image.index <= hs.commit {
            return Ok(None);
        }
        let repaired = HardState {
            commit: image.index,
            ..hs
        };
        let holds = self.durable.term(image.index).ok() == Some(image.term);
        let snapshot = (!holds).then_some(image);
        if let Some(s) = &snapshot {
            self.durable.apply_snapshot(s.clone())?;
        }
        self.durable.set_hard_state(repaired);
        Ok(Some((repaired, snapshot)))
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
        // Rebuilt as: compaction point, kept entries, snapshot point, hard state.
        let snapshot = self.durable.snapshot().expect("MemStorage never fails");
        let compacted = self.durable.first_index().expect("never fails") - 1;
        let mut durable = MemStorage::new_with_conf_state(self.durable.conf_state().clone());
        if compacted > 0 {
            let term = self.durable.term(compacted).expect("the dummy entry");
            durable
                .apply_snapshot(SnapshotMeta {
                    index: compacted,
                    term,
                    conf_state: self.durable.conf_state().clone(),
                })
                .expect("a fresh storage takes any point");
        }
        durable
            .append(kept)
            .expect("a prefix of a valid log is valid");
        if snapshot.index > compacted {
            durable
                .create_snapshot(snapshot.index, snapshot.conf_state)
                .expect("the point is committed, so below the lost entry");
        }
        durable.set_conf_state(self.durable.conf_state().clone());
        durable.set_hard_state(hs);
        self.durable = durable;
    }

    /// The node crashed: the in-flight write, if any, never reaches the disk, nor does any
    /// compaction no fsync covered.
    pub fn crash(&mut self) {
        self.stats.lost += self.in_flight.len() as u64;
        self.in_flight.clear();
        self.stats.compactions_lost += self.compactions.len() as u64;
        self.compactions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let first = disk.begin(Some(hs), None, vec![entry(1, 1)], true);
        assert_eq!(
            disk.complete(first),
            Ok(vec![Write {
                id: first,
                hard_state: Some(hs),
                snapshot: None,
                entries: vec![entry(1, 1)],
                sync: true,
            }])
        );
        let second = disk.begin(None, None, vec![entry(1, 2)], true);
        disk.crash();
        assert_eq!(disk.complete(second), Ok(vec![]));
        assert_eq!(disk.durable().last_index(), Ok(1));
        assert_eq!(disk.durable().hard_state(), hs);
        assert_eq!(
            disk.stats,
            DiskStats {
                synced: 1,
                lost: 1,
                ..DiskStats::default()
            }
        );
    }

    #[test]
    fn writes_complete_in_order_and_a_crash_loses_every_queued_one() {
        let mut disk = Disk::new(ConfState::from_voters([1]));
        let a = disk.begin(None, None, vec![entry(1, 1)], true);
        let b = disk.begin(None, None, vec![entry(1, 2)], true);
        let c = disk.begin(None, None, vec![entry(1, 3)], true);
        // Completing b makes a durable too (an fsync covers every earlier write).
        let done: Vec<u64> = disk.complete(b).unwrap().iter().map(|w| w.id).collect();
        assert_eq!(done, vec![a, b]);
        assert_eq!(disk.complete(a), Ok(vec![]), "already durable");
        assert_eq!(disk.durable().last_index(), Ok(2));
        let d = disk.begin(None, None, vec![entry(1, 4)], true);
        disk.crash();
        assert_eq!(disk.complete(c), Ok(vec![]));
        assert_eq!(disk.complete(d), Ok(vec![]));
        assert_eq!(disk.durable().last_index(), Ok(2));
        assert_eq!(
            disk.stats,
            DiskStats {
                synced: 2,
                lost: 2,
                ..DiskStats::default()
            }
        );
    }

    fn point(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term: 1,
            conf_state: ConfState::from_voters([1]),
        }
    }

    #[test]
    fn a_compaction_is_durable_only_with_a_synced_write_begun_after_it() {
        let mut disk = Disk::new(ConfState::from_voters([1]));
        let entries: Vec<Entry> = (1..=4).map(|i| entry(1, i)).collect();
        let a = disk.begin(None, None, entries, true);
        disk.compact(2, 1, point(3));
        // `a` began before the compaction: its fsync does not cover it.
        disk.complete(a).unwrap();
        assert_eq!(disk.durable().first_index(), Ok(1));
        let b = disk.begin(None, None, vec![], false);
        disk.complete(b).unwrap();
        assert_eq!(
            disk.pending_compactions(),
            1,
            "an unsynced write covers nothing"
        );
        let c = disk.begin(None, None, vec![entry(1, 5)], true);
        disk.complete(c).unwrap();
        assert_eq!(disk.durable().first_index(), Ok(3));
        assert_eq!(disk.durable().snapshot().unwrap().index, 3);
        disk.compact(3, 1, point(4));
        disk.crash();
        assert_eq!(disk.durable().first_index(), Ok(3), "lost in the crash");
        assert_eq!(disk.stats.compactions, 1);
        assert_eq!(disk.stats.compactions_lost, 1);
    }

    #[test]
    fn finishing_an_install_moves_the_commit_or_replaces_the_log() {
        let mut disk = Disk::new(ConfState::from_voters([1]));
        let a = disk.begin(None, None, vec![entry(1, 1), entry(1, 2)], true);
        disk.complete(a).unwrap();
        assert_eq!(disk.finish_install(2), Ok(None), "no image installed");
        disk.record_image(point(2));
        let (hs, snapshot) = disk
            .finish_install(2)
            .unwrap()
            .expect("store ahead of commit");
        assert_eq!((hs.commit, snapshot), (2, None), "the log holds 1/2");
        assert_eq!(disk.durable().last_index(), Ok(2));
        disk.record_image(point(7));
        let (hs, snapshot) = disk.finish_install(7).unwrap().expect("repaired");
        assert_eq!((hs.commit, snapshot), (7, Some(point(7))));
        assert_eq!(disk.durable().first_index(), Ok(8));
        assert_eq!(disk.finish_install(7), Ok(None), "done once");
    }
}
