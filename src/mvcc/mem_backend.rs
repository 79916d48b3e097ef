//! [`MemBackend`]: an in-memory MVCC [`Backend`] with crash semantics, for tests and the
//! deterministic simulator.
//!
//! It keeps the shared record format of [`super::backend`] (framed, checksummed bytes), in two
//! layers:
//!
//! ```text
//!   commit(sync=false) ──► unsynced: [batch 7, batch 8, batch 9]   (reads see them)
//!                                       │ sync_all() / commit(sync=true)
//!                                       ▼
//!                          durable:  effect of batches 1..=6        (a crash keeps only this)
//! ```
//!
//! [`MemBackend::crash`] drops the unsynced batches, whole ones only, so the surviving store is
//! a prefix of the committed batches — exactly what fjall promises for the server (atomic
//! batches, one journal), and what the store relies on: "the store may lose its unsynced tail,
//! the raft log replays it" ([`Backend`] contract 2 and 3). The simulator calls
//! [`MemBackend::sync_all`] when the node's simulated disk fsyncs, because in the server the raft
//! log and the store share fjall's one journal, so a log fsync also makes earlier store batches
//! durable.
//!
//! For snapshots (docs/snapshots.md) the simulator copies a store at a snapshot point with
//! [`MemBackend::image`] and installs it on another node with [`MemBackend::install_image`].
//!
//! Deterministic: `BTreeMap`s and `Vec`s only, no clock, no randomness.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::backend::{
    Backend, LeaseIter, MetaState, RawWrite, RecordIter, STATE_KEY, Space, WriteBatch, decode_kv,
    decode_lease, decode_record, decode_state,
};
use super::error::{MvccError, Result};
use super::revision::Revision;
use crate::pb::mvccpb::KeyValue;

/// One copy of the three spaces: key → framed value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Spaces {
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    meta: BTreeMap<Vec<u8>, Vec<u8>>,
    lease: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Spaces {
    fn space(&self, space: Space) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        match space {
            Space::Kv => &self.kv,
            Space::Meta => &self.meta,
            Space::Lease => &self.lease,
        }
    }

    fn apply(&mut self, writes: &[RawWrite]) {
        for w in writes {
            let map = match w.space {
                Space::Kv => &mut self.kv,
                Space::Meta => &mut self.meta,
                Space::Lease => &mut self.lease,
            };
            match &w.value {
                Some(value) => map.insert(w.key.clone(), value.clone()),
                None => map.remove(&w.key),
            };
        }
    }
}

/// A store image taken by [`MemBackend::image`]: every record of the three spaces at one
/// moment, for [`MemBackend::install_image`] on another node's backend. Opaque: it holds the
/// framed record bytes, exactly what the store wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemImage {
    spaces: Spaces,
}

impl MemImage {
    /// Records in the image, all spaces together (for traces).
    pub fn records(&self) -> usize {
        self.spaces.kv.len() + self.spaces.meta.len() + self.spaces.lease.len()
    }
}

/// The simulated disk every clone of one [`MemBackend`] shares.
///
/// Invariant: `current` = `durable` with every batch of `unsynced` applied in order.
#[derive(Debug, Default)]
struct Disk {
    /// Every committed batch: what reads see.
    current: Spaces,
    /// What survives a crash.
    durable: Spaces,
    /// The batches committed since the last sync, oldest first, in record format.
    unsynced: Vec<Vec<RawWrite>>,
    /// Batches committed, ever.
    committed_batches: u64,
    /// Batches dropped by crashes, ever.
    lost_batches: u64,
    /// Crashes so far; a handle from an earlier epoch is refused.
    epoch: u64,
    /// While true, every commit fails with [`MvccError::Storage`] and writes nothing.
    fail_commits: bool,
}

impl Disk {
    fn sync(&mut self) {
        for batch in std::mem::take(&mut self.unsynced) {
            self.durable.apply(&batch);
        }
    }
}

/// An in-memory [`Backend`] with crash semantics; see the module docs.
///
/// Cheap to clone; clones share the same storage (`Arc<Mutex<..>>`), so a test or the simulator
/// keeps one handle as "the disk" and hands clones to [`super::Kv::open`]. A handle obtained
/// before a [`crash`](MemBackend::crash) is refused afterwards (its process died): every
/// [`Backend`] call on it fails with [`MvccError::Storage`]. Reopen with a handle from after the
/// crash — the one `crash` was called on, or [`MemBackend::reopen`].
#[derive(Clone, Debug, Default)]
pub struct MemBackend {
    disk: Arc<Mutex<Disk>>,
    /// The disk epoch this handle was opened in.
    epoch: u64,
}

impl MemBackend {
    /// A new, empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        // A panic elsewhere (a failed test assertion) leaves the data consistent: every mutation
        // below completes before it could panic.
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk, if this handle is still from the current epoch.
    fn live(&self) -> Result<MutexGuard<'_, Disk>> {
        let disk = self.disk();
        if disk.epoch != self.epoch {
            return Err(MvccError::storage(format!(
                "MemBackend handle of epoch {} used after a crash (disk epoch {})",
                self.epoch, disk.epoch
            )));
        }
        Ok(disk)
    }

    /// A handle of the current epoch on the same disk (what a restarted process opens).
    pub fn reopen(&self) -> MemBackend {
        MemBackend {
            disk: self.disk.clone(),
            epoch: self.disk().epoch,
        }
    }

    /// Makes every batch committed so far durable (an fsync of the shared journal).
    pub fn sync_all(&self) {
        self.disk().sync();
    }

    /// Simulates a crash: drops every batch committed after the last sync, whole batches only
    /// (the survivor is a prefix of the committed batches). Returns how many batches were lost.
    /// Every other handle becomes stale; this one is reopened in the new epoch.
    pub fn crash(&mut self) -> usize {
        self.crash_keeping(0)
    }

    /// Like [`crash`](MemBackend::crash), but the oldest `keep` unsynced batches survive (the OS
    /// happened to write them out): still a prefix. `keep` beyond the unsynced count keeps all.
    /// Returns how many batches were lost.
    pub fn crash_keeping(&mut self, keep: usize) -> usize {
        let mut disk = self.disk();
        let mut unsynced = std::mem::take(&mut disk.unsynced);
        let lost = unsynced.len().saturating_sub(keep);
        unsynced.truncate(unsynced.len() - lost);
        for batch in unsynced {
            disk.durable.apply(&batch);
        }
        disk.current = disk.durable.clone();
        disk.lost_batches += lost as u64;
        disk.epoch += 1;
        let epoch = disk.epoch;
        drop(disk);
        self.epoch = epoch;
        lost
    }

    /// Batches dropped by crashes so far, in total.
    pub fn lost_batches(&self) -> u64 {
        self.disk().lost_batches
    }

    /// Batches committed so far, in total (lost ones included).
    pub fn committed_batches(&self) -> u64 {
        self.disk().committed_batches
    }

    /// Batches committed since the last sync (what a crash now would lose).
    pub fn unsynced_batches(&self) -> usize {
        self.disk().unsynced.len()
    }

    /// The state a crash now would leave (the durable layer's [`MetaState`]); `None` if no
    /// batch is durable yet. Errors: [`MvccError::Corrupt`].
    pub fn durable_state(&self) -> Result<Option<MetaState>> {
        let disk = self.disk();
        disk.durable
            .meta
            .get(STATE_KEY)
            .map(|v| decode_state(v))
            .transpose()
    }

    /// A point-in-time copy of every record a reader sees now (unsynced batches included): the
    /// store's image at its current applied index, as the server's `StoreActor` keeps a fjall
    /// snapshot of its keyspaces at each snapshot point (docs/snapshots.md §1). A copy, not a
    /// view: later commits do not change it. Errors: [`MvccError::Storage`] on a stale handle.
    pub fn image(&self) -> Result<MemImage> {
        Ok(MemImage {
            spaces: self.live()?.current.clone(),
        })
    }

    /// Replaces the whole store by `image` in one synced, atomic batch (a follower installing
    /// a leader's image, as `snapshot::image::install` does: one batch, then a full fsync of
    /// the shared journal, which also makes every earlier batch durable). Afterwards reads and
    /// a crash both see exactly the image. Errors: [`MvccError::Storage`] on a stale handle or
    /// while commits fail.
    pub fn install_image(&self, image: &MemImage) -> Result<()> {
        let mut disk = self.live()?;
        if disk.fail_commits {
            return Err(MvccError::storage("MemBackend: injected commit failure"));
        }
        disk.unsynced.clear();
        disk.current = image.spaces.clone();
        disk.durable = image.spaces.clone();
        disk.committed_batches += 1;
        Ok(())
    }

    /// Fault injection: while `fail` is set, every commit returns [`MvccError::Storage`] and
    /// writes nothing (a failed write, as fjall reports after an I/O error).
    pub fn fail_commits(&self, fail: bool) {
        self.disk().fail_commits = fail;
    }
}

impl Backend for MemBackend {
    fn get(&self, rev: Revision, tombstone: bool) -> Result<Option<KeyValue>> {
        let key = rev.to_key(tombstone);
        match self.live()?.current.kv.get(&key) {
            None => Ok(None),
            Some(value) => decode_kv(&key, value).map(Some),
        }
    }

    fn scan(&self) -> RecordIter<'_> {
        match self.live() {
            // A snapshot: the lock is not held while the caller iterates.
            Ok(disk) => Box::new(
                snapshot(&disk, Space::Kv)
                    .into_iter()
                    .map(|(k, v)| decode_record(&k, &v)),
            ),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn scan_leases(&self) -> LeaseIter<'_> {
        match self.live() {
            Ok(disk) => Box::new(
                snapshot(&disk, Space::Lease)
                    .into_iter()
                    .map(|(k, v)| decode_lease(&k, &v)),
            ),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn scan_alarms(&self) -> super::backend::AlarmIter<'_> {
        use super::backend::{ALARM_PREFIX, decode_alarm};
        match self.live() {
            Ok(disk) => Box::new(
                snapshot(&disk, Space::Meta)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(ALARM_PREFIX))
                    .map(|(k, v)| decode_alarm(&k, &v)),
            ),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn load_state(&self) -> Result<Option<MetaState>> {
        self.live()?
            .current
            .meta
            .get(STATE_KEY)
            .map(|v| decode_state(v))
            .transpose()
    }

    fn commit(&mut self, batch: WriteBatch, state: &MetaState, sync: bool) -> Result<()> {
        let mut disk = self.live()?;
        if disk.fail_commits {
            return Err(MvccError::storage("MemBackend: injected commit failure"));
        }
        let writes = batch.to_raw(state);
        disk.current.apply(&writes);
        disk.unsynced.push(writes);
        disk.committed_batches += 1;
        if sync {
            disk.sync();
        }
        Ok(())
    }
}

fn snapshot(disk: &Disk, space: Space) -> Vec<(Vec<u8>, Vec<u8>)> {
    disk.current
        .space(space)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(applied_index: u64) -> MetaState {
        MetaState {
            applied_index,
            current_revision: applied_index as i64 + 1,
            compact_revision: -1,
        }
    }

    /// Commits entry `i`: one record at revision `i + 1` and the state.
    fn commit(backend: &mut MemBackend, i: u64, sync: bool) {
        let mut batch = WriteBatch::new();
        let rev = Revision::new(i as i64 + 1, 0);
        batch.put(
            rev,
            false,
            KeyValue {
                key: format!("k{i}").into_bytes(),
                mod_revision: rev.main,
                ..Default::default()
            },
        );
        backend.commit(batch, &state(i), sync).unwrap();
    }

    fn revisions(backend: &MemBackend) -> Vec<i64> {
        backend.scan().map(|r| r.unwrap().0.main).collect()
    }

    #[test]
    fn round_trip() {
        super::super::backend::tests::round_trip(&mut MemBackend::new());
    }

    #[test]
    fn crash_drops_unsynced_batches_and_keeps_synced_ones() {
        let mut disk = MemBackend::new();
        let mut backend = disk.clone();
        commit(&mut backend, 1, false);
        commit(&mut backend, 2, false);
        disk.sync_all();
        commit(&mut backend, 3, true); // synced by its own commit
        commit(&mut backend, 4, false);
        commit(&mut backend, 5, false);
        assert_eq!(
            revisions(&backend),
            vec![2, 3, 4, 5, 6],
            "reads see unsynced"
        );
        assert_eq!(disk.unsynced_batches(), 2);
        assert_eq!(disk.durable_state().unwrap(), Some(state(3)));
        assert_eq!(disk.crash(), 2);
        assert_eq!(disk.lost_batches(), 2);
        assert_eq!(disk.committed_batches(), 5);
        assert_eq!(disk.load_state().unwrap(), Some(state(3)));
        assert_eq!(revisions(&disk), vec![2, 3, 4]);
        assert!(
            matches!(backend.load_state(), Err(MvccError::Storage(_))),
            "a handle from before the crash is refused"
        );
        let mut reopened = backend.reopen();
        commit(&mut reopened, 4, false);
        assert_eq!(revisions(&disk), vec![2, 3, 4, 5]);
    }

    #[test]
    fn crash_keeping_keeps_a_prefix() {
        let mut disk = MemBackend::new();
        for i in 1..=4 {
            commit(&mut disk, i, false);
        }
        assert_eq!(disk.crash_keeping(1), 3);
        assert_eq!(disk.load_state().unwrap(), Some(state(1)));
        assert_eq!(revisions(&disk), vec![2]);
        commit(&mut disk, 2, false);
        assert_eq!(
            disk.crash_keeping(5),
            0,
            "keeping more than exists keeps all"
        );
        assert_eq!(disk.load_state().unwrap(), Some(state(2)));
    }

    #[test]
    fn an_installed_image_replaces_the_store_durably() {
        let mut leader = MemBackend::new();
        commit(&mut leader, 1, false);
        commit(&mut leader, 2, false);
        let image = leader.image().unwrap();
        commit(&mut leader, 3, false);
        assert_eq!(
            revisions(&leader),
            vec![2, 3, 4],
            "the image is a copy, not a view"
        );
        let mut follower = MemBackend::new();
        commit(&mut follower, 1, false);
        follower.install_image(&image).unwrap();
        assert_eq!(follower.unsynced_batches(), 0);
        assert_eq!(follower.durable_state().unwrap(), Some(state(2)));
        follower.crash();
        assert_eq!(revisions(&follower), vec![2, 3]);
        assert_eq!(follower.load_state().unwrap(), Some(state(2)));
    }

    #[test]
    fn a_batch_is_all_or_nothing() {
        let mut disk = MemBackend::new();
        commit(&mut disk, 1, true);
        // One batch touching all three spaces, then a crash: none of it survives.
        let mut batch = WriteBatch::new();
        batch.remove(Revision::new(2, 0), false);
        batch.put_lease(9, 30);
        batch.put(
            Revision::new(3, 0),
            true,
            KeyValue {
                key: b"k1".to_vec(),
                ..Default::default()
            },
        );
        disk.commit(batch.clone(), &state(2), false).unwrap();
        assert_eq!(revisions(&disk), vec![3]);
        assert_eq!(disk.scan_leases().count(), 1);
        disk.crash();
        assert_eq!(revisions(&disk), vec![2]);
        assert_eq!(disk.scan_leases().count(), 0);
        assert_eq!(disk.load_state().unwrap(), Some(state(1)));
        // The same batch synced: all of it survives.
        disk.commit(batch, &state(2), true).unwrap();
        disk.crash();
        assert_eq!(revisions(&disk), vec![3]);
        assert_eq!(disk.scan_leases().count(), 1);
        assert_eq!(disk.load_state().unwrap(), Some(state(2)));
        // A failed commit writes nothing.
        disk.fail_commits(true);
        let err = disk.commit(WriteBatch::new(), &state(3), true).unwrap_err();
        assert!(err.is_fatal());
        disk.fail_commits(false);
        assert_eq!(disk.load_state().unwrap(), Some(state(2)));
    }
}
