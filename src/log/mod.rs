//! The durable Raft log: entries, hard state and conf state in fjall, checksummed.
//!
//! [`LogStore`] is the synchronous part (encode, batch, fsync, load at start);
//! [`actor::LogActor`] runs it on its own thread so an fsync never stalls the `RaftActor`.
//!
//! ```text
//! keyspace raft_log    key = index (u64 BE)   value = seal([term u64 BE][kind u8][data])
//! keyspace raft_state  "hard_state"           value = seal([term][vote][commit], u64 BE each)
//!                      "conf_state"           value = seal(JSON ConfState)
//!                      "identity"             value = seal(JSON Identity)
//!                      "compacted"            value = seal([index][term], u64 BE each)
//!                      "snapshot"             value = seal([index][term][JSON ConfState])
//!                      "image"                value = seal([index][term][JSON ConfState])
//! ```
//! Every record carries a CRC-32 ([`crate::storage::seal`]); a mismatch at load is reported as
//! [`StorageError::Corrupt`] and the member refuses to start rather than use a damaged log.
//!
//! Log compaction (docs/snapshots.md §1): `compacted` is the last entry removed (the log then
//! holds `compacted.index + 1 ..`; absent = nothing removed, the log starts at 1) and `snapshot`
//! the latest snapshot point — the applied index whose store state a lagging follower is sent.
//! Both are written in the same batch as the removal, so a crash keeps all three or none.
//! `image` is the snapshot point of the last store image a leader sent, written by the store in
//! the batch that installs the image ([`stage_image`]): if the member crashes before the log
//! records the snapshot too, the next start finishes the job ([`LogStore::finish_install`]).

pub mod actor;

use crate::raft::{ConfState, Entry, EntryKind, HardState, MemStorage, RaftError, SnapshotMeta};
use crate::storage::{StorageError, keyspaces, seal, unseal};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};

const HARD_STATE_KEY: &[u8] = b"hard_state";
const CONF_STATE_KEY: &[u8] = b"conf_state";
const IDENTITY_KEY: &[u8] = b"identity";
const COMPACTED_KEY: &[u8] = b"compacted";
const SNAPSHOT_KEY: &[u8] = b"snapshot";
const IMAGE_KEY: &[u8] = b"image";

/// Adds the log's record of an installed store image (the `image` key) to `batch`, the batch
/// that writes the image itself. Errors: [`StorageError::Fjall`] opening the keyspace.
pub fn stage_image(
    db: &Database,
    batch: &mut fjall::OwnedWriteBatch,
    meta: &SnapshotMeta,
) -> Result<(), StorageError> {
    let state = db.keyspace(keyspaces::RAFT_STATE, KeyspaceCreateOptions::default)?;
    batch.insert(&state, IMAGE_KEY, encode_snapshot(meta));
    Ok(())
}

/// Who this data dir belongs to, written once at bootstrap and checked at every start, so a
/// data dir from another cluster (or another member) is refused instead of silently used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Cluster id derived from the initial cluster's member ids.
    pub cluster_id: u64,
    /// This member's id.
    pub member_id: u64,
    /// This member's `--name` at bootstrap.
    pub name: String,
}

/// The JSON form of a [`ConfState`] on disk and in store images (`snapshot::image`), kept
/// here so the Raft core needs no serde.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredConfState {
    voters: Vec<u64>,
    voters_outgoing: Vec<u64>,
    learners: Vec<u64>,
    learners_next: Vec<u64>,
    auto_leave: bool,
}

impl From<&ConfState> for StoredConfState {
    fn from(cs: &ConfState) -> Self {
        Self {
            voters: cs.voters.iter().copied().collect(),
            voters_outgoing: cs.voters_outgoing.iter().copied().collect(),
            learners: cs.learners.iter().copied().collect(),
            learners_next: cs.learners_next.iter().copied().collect(),
            auto_leave: cs.auto_leave,
        }
    }
}

impl From<StoredConfState> for ConfState {
    fn from(s: StoredConfState) -> Self {
        Self {
            voters: s.voters.into_iter().collect(),
            voters_outgoing: s.voters_outgoing.into_iter().collect(),
            learners: s.learners.into_iter().collect(),
            learners_next: s.learners_next.into_iter().collect(),
            auto_leave: s.auto_leave,
        }
    }
}

/// What a restart finds on disk.
#[derive(Clone, Debug, Default)]
pub struct LoadedLog {
    /// Last durable hard state (term, vote, commit); default for a new member.
    pub hard_state: HardState,
    /// Last durable configuration, `None` for a new member.
    pub conf_state: Option<ConfState>,
    /// Every stored entry, contiguous from `compacted.index + 1` (from 1 when nothing was
    /// compacted). Invariant: `entries[i].index == compacted.index + 1 + i`.
    pub entries: Vec<Entry>,
    /// (index, term) of the last entry removed by log compaction or replaced by an installed
    /// snapshot; (0, 0) when the log was never compacted.
    pub compacted: (u64, u64),
    /// The latest snapshot point, `None` before the first one.
    pub snapshot: Option<SnapshotMeta>,
    /// The snapshot point of the last store image installed from a leader, if any.
    pub image: Option<SnapshotMeta>,
    /// The identity written at bootstrap, `None` for an empty data dir.
    pub identity: Option<Identity>,
}

impl LoadedLog {
    /// The in-memory log the Raft core starts from: the entries after the compaction point,
    /// the latest snapshot point, the hard state, and `conf_state` (the latest configuration).
    ///
    /// Errors: a snapshot point outside the loaded log (corruption the checks at load missed).
    pub fn to_storage(&self, conf_state: ConfState) -> Result<MemStorage, RaftError> {
        let mut storage = MemStorage::new_with_conf_state(conf_state.clone());
        let (index, term) = self.compacted;
        if index > 0 {
            storage.apply_snapshot(SnapshotMeta {
                index,
                term,
                conf_state: conf_state.clone(),
            })?;
        }
        storage.append(&self.entries)?;
        if let Some(point) = &self.snapshot
            && point.index > index
        {
            storage.create_snapshot(point.index, point.conf_state.clone())?;
        }
        storage.set_conf_state(conf_state);
        storage.set_hard_state(self.hard_state);
        Ok(storage)
    }
}

/// Synchronous writer and loader of the Raft log.
#[derive(Clone)]
pub struct LogStore {
    db: Database,
    log: Keyspace,
    state: Keyspace,
    /// Index of the last stored entry, so an append knows which conflicting suffix to delete.
    last_index: u64,
    /// Index of the last entry removed by compaction (0 when none), so a compaction knows
    /// which keys remain to delete.
    compacted_index: u64,
}

impl LogStore {
    /// Opens the log keyspaces of `db` (creating them if new).
    ///
    /// Errors: [`StorageError::Fjall`] on I/O failure.
    pub fn open(db: &Database) -> Result<Self, StorageError> {
        let log = db.keyspace(keyspaces::RAFT_LOG, crate::storage::keyspace_options)?;
        let state = db.keyspace(keyspaces::RAFT_STATE, KeyspaceCreateOptions::default)?;
        let compacted_index = match state.get(COMPACTED_KEY)? {
            Some(raw) => decode_compacted(&raw)?.0,
            None => 0,
        };
        let last_index = match log.last_key_value() {
            Some(kv) => decode_index(&kv.key()?)?,
            None => compacted_index,
        };
        Ok(Self {
            db: db.clone(),
            log,
            state,
            last_index,
            compacted_index,
        })
    }

    /// Reads everything back, verifying every checksum and that indexes are contiguous from
    /// the entry after `compacted` (1 for a never-compacted log).
    ///
    /// Errors: [`StorageError::Corrupt`] naming the first bad record.
    pub fn load(&self) -> Result<LoadedLog, StorageError> {
        let mut loaded = LoadedLog::default();
        if let Some(raw) = self.state.get(HARD_STATE_KEY)? {
            loaded.hard_state = decode_hard_state(&raw)?;
        }
        if let Some(raw) = self.state.get(CONF_STATE_KEY)? {
            let stored: StoredConfState = decode_json(&raw, "conf_state")?;
            loaded.conf_state = Some(stored.into());
        }
        if let Some(raw) = self.state.get(IDENTITY_KEY)? {
            loaded.identity = Some(decode_json(&raw, "identity")?);
        }
        if let Some(raw) = self.state.get(COMPACTED_KEY)? {
            loaded.compacted = decode_compacted(&raw)?;
        }
        if let Some(raw) = self.state.get(SNAPSHOT_KEY)? {
            loaded.snapshot = Some(decode_snapshot(&raw, "snapshot")?);
        }
        if let Some(raw) = self.state.get(IMAGE_KEY)? {
            loaded.image = Some(decode_snapshot(&raw, "image")?);
        }
        for item in self.log.iter() {
            let (key, value) = item.into_inner()?;
            let index = decode_index(&key)?;
            let expected = loaded.compacted.0 + loaded.entries.len() as u64 + 1;
            if index != expected {
                return Err(corrupt(
                    keyspaces::RAFT_LOG,
                    index,
                    format!("gap in the log: expected index {expected}"),
                ));
            }
            loaded.entries.push(decode_entry(index, &value)?);
        }
        Ok(loaded)
    }

    /// Writes `hard_state` and `entries` in one batch and, when `sync`, makes them durable with
    /// one fsync (group commit: the caller passes everything that became ready since the last
    /// call). `sync` may be false only when nothing but the commit index changed
    /// (`Ready::must_sync`, etcd raft's MustSync): a commit index lost in a crash is learned
    /// again from the leader, so it needs no fsync on the write path.
    ///
    /// An entry at index `i` replaces every stored entry at `i` or above (Raft §5.3: a
    /// follower's conflicting suffix is discarded). Errors: [`StorageError::Fjall`]; a failed
    /// fsync is fatal for the member, as in etcd, because fjall poisons itself after it.
    ///
    /// With `snapshot` (a snapshot the leader sent, Raft `Ready.snapshot`; its store image is
    /// already installed), every stored entry goes first: the log then starts after
    /// (`snapshot.index`, `snapshot.term`), whose configuration becomes the stored one.
    pub fn persist(
        &mut self,
        hard_state: Option<&HardState>,
        snapshot: Option<&SnapshotMeta>,
        entries: &[Entry],
        sync: bool,
    ) -> Result<(), StorageError> {
        if hard_state.is_none() && snapshot.is_none() && entries.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        if let Some(snap) = snapshot {
            for stale in self.compacted_index + 1..=self.last_index {
                batch.remove(&self.log, stale.to_be_bytes());
            }
            batch.insert(
                &self.state,
                COMPACTED_KEY,
                encode_compacted(snap.index, snap.term),
            );
            batch.insert(&self.state, SNAPSHOT_KEY, encode_snapshot(snap));
            batch.insert(
                &self.state,
                CONF_STATE_KEY,
                encode_conf_state(&snap.conf_state),
            );
            self.compacted_index = snap.index;
            self.last_index = snap.index;
        }
        if let Some(first) = entries.first() {
            for stale in first.index..=self.last_index {
                batch.remove(&self.log, stale.to_be_bytes());
            }
            for entry in entries {
                batch.insert(&self.log, entry.index.to_be_bytes(), encode_entry(entry));
            }
            self.last_index = entries.last().map_or(self.last_index, |e| e.index);
        }
        if let Some(hs) = hard_state {
            batch.insert(&self.state, HARD_STATE_KEY, encode_hard_state(hs));
        }
        batch.commit()?;
        if sync {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    /// Log compaction (docs/snapshots.md §1): records `snapshot` as the latest snapshot point
    /// and removes every entry through `through` (whose term is `through_term`), in one batch.
    ///
    /// Not fsynced: the batch becomes durable with the next [`persist`](Self::persist) that
    /// syncs (one journal), and a crash that loses it loses nothing — the entries are still
    /// there. Safety needs the store's state at `snapshot.index` to be in the journal *before*
    /// this batch (the caller takes points only at indexes the store reported applied), so a
    /// crash that keeps the removal keeps what it summarised. A `through` at or below the
    /// current compaction point is a no-op.
    ///
    /// Errors: [`StorageError::Fjall`].
    pub fn compact(
        &mut self,
        through: u64,
        through_term: u64,
        snapshot: &SnapshotMeta,
    ) -> Result<(), StorageError> {
        let mut batch = self.db.batch();
        batch.insert(&self.state, SNAPSHOT_KEY, encode_snapshot(snapshot));
        if through > self.compacted_index {
            for index in self.compacted_index + 1..=through.min(self.last_index) {
                batch.remove(&self.log, index.to_be_bytes());
            }
            batch.insert(
                &self.state,
                COMPACTED_KEY,
                encode_compacted(through, through_term),
            );
            self.compacted_index = through;
            self.last_index = self.last_index.max(through);
        }
        batch.commit()?;
        Ok(())
    }

    /// Start-up repair after a crash between installing a leader's store image and recording
    /// its snapshot in the log (docs/snapshots.md §2): the store then holds the state at
    /// `image.index` while the log may end before it or disagree at it. If the log has the
    /// entry (`image.index`, `image.term`), only the commit index moves up to it; otherwise the
    /// log is replaced by the snapshot, exactly as the snapshot's own persist would have done
    /// (entries after an index whose term differs from a committed entry's cannot be
    /// committed: Log Matching, Raft §5.3). Fsynced. Returns the repaired [`LoadedLog`].
    ///
    /// Errors: [`StorageError::Fjall`], or [`StorageError::Corrupt`] from reloading.
    pub fn finish_install(
        &mut self,
        loaded: LoadedLog,
        image: &SnapshotMeta,
    ) -> Result<LoadedLog, StorageError> {
        let (compacted_index, compacted_term) = loaded.compacted;
        let term_at = |index: u64| -> Option<u64> {
            if index == compacted_index {
                return Some(compacted_term);
            }
            let offset = index.checked_sub(compacted_index + 1)?;
            loaded.entries.get(offset as usize).map(|e| e.term)
        };
        let hard_state = HardState {
            commit: loaded.hard_state.commit.max(image.index),
            ..loaded.hard_state
        };
        let snapshot = (term_at(image.index) != Some(image.term)).then_some(image);
        self.persist(Some(&hard_state), snapshot, &[], true)?;
        self.load()
    }

    /// Durably records the configuration (written at bootstrap and on conf changes).
    pub fn save_conf_state(&self, conf_state: &ConfState) -> Result<(), StorageError> {
        self.save_json(CONF_STATE_KEY, &StoredConfState::from(conf_state))
    }

    /// Durably records the data dir's identity (once, at bootstrap).
    pub fn save_identity(&self, identity: &Identity) -> Result<(), StorageError> {
        self.save_json(IDENTITY_KEY, identity)
    }

    fn save_json<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let json = serde_json::to_vec(value).expect("plain data serializes");
        self.state.insert(key, seal(&json))?;
        self.db.persist(PersistMode::SyncData)?;
        Ok(())
    }
}

fn corrupt(keyspace: &'static str, key: impl std::fmt::Display, reason: String) -> StorageError {
    StorageError::Corrupt {
        keyspace,
        key: key.to_string(),
        reason,
    }
}

fn decode_index(key: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| {
        corrupt(
            keyspaces::RAFT_LOG,
            format!("{key:?}"),
            "key is not 8 bytes".into(),
        )
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut payload = Vec::with_capacity(9 + entry.data.len());
    payload.extend_from_slice(&entry.term.to_be_bytes());
    payload.push(match entry.kind {
        EntryKind::Normal => 0,
        EntryKind::ConfChange => 1,
    });
    payload.extend_from_slice(&entry.data);
    seal(&payload)
}

fn decode_entry(index: u64, raw: &[u8]) -> Result<Entry, StorageError> {
    let payload = unseal(raw)
        .ok_or_else(|| corrupt(keyspaces::RAFT_LOG, index, "checksum mismatch".into()))?;
    let (head, data) = payload
        .split_at_checked(9)
        .ok_or_else(|| corrupt(keyspaces::RAFT_LOG, index, "record too short".into()))?;
    let term = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
    let kind = match head[8] {
        0 => EntryKind::Normal,
        1 => EntryKind::ConfChange,
        other => {
            return Err(corrupt(
                keyspaces::RAFT_LOG,
                index,
                format!("unknown entry kind {other}"),
            ));
        }
    };
    Ok(Entry {
        term,
        index,
        kind,
        data: data.to_vec(),
    })
}

/// `words` as consecutive u64 BE.
fn be_words(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// The first `N` u64 BE words of `bytes` (which must hold at least `8 N` bytes).
fn read_words<const N: usize>(bytes: &[u8]) -> [u64; N] {
    std::array::from_fn(|i| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8")))
}

/// A sealed record of exactly `N` u64 BE words under `key` of `raft_state`.
fn decode_words<const N: usize>(raw: &[u8], key: &'static str) -> Result<[u64; N], StorageError> {
    let bad = |reason: String| corrupt(keyspaces::RAFT_STATE, key, reason);
    let payload = unseal(raw).ok_or_else(|| bad("checksum mismatch".into()))?;
    if payload.len() != N * 8 {
        return Err(bad(format!("record is not {} bytes", N * 8)));
    }
    Ok(read_words(payload))
}

fn encode_compacted(index: u64, term: u64) -> Vec<u8> {
    seal(&be_words(&[index, term]))
}

fn decode_compacted(raw: &[u8]) -> Result<(u64, u64), StorageError> {
    let [index, term] = decode_words(raw, "compacted")?;
    Ok((index, term))
}

fn encode_conf_state(conf_state: &ConfState) -> Vec<u8> {
    seal(&serde_json::to_vec(&StoredConfState::from(conf_state)).expect("plain data serializes"))
}

fn encode_snapshot(snapshot: &SnapshotMeta) -> Vec<u8> {
    let mut payload = be_words(&[snapshot.index, snapshot.term]);
    serde_json::to_writer(&mut payload, &StoredConfState::from(&snapshot.conf_state))
        .expect("plain data serializes");
    seal(&payload)
}

fn decode_snapshot(raw: &[u8], key: &'static str) -> Result<SnapshotMeta, StorageError> {
    let bad = |reason: String| corrupt(keyspaces::RAFT_STATE, key, reason);
    let payload = unseal(raw).ok_or_else(|| bad("checksum mismatch".into()))?;
    let (head, json) = payload
        .split_at_checked(16)
        .ok_or_else(|| bad("record too short".into()))?;
    let [index, term] = read_words(head);
    let conf: StoredConfState =
        serde_json::from_slice(json).map_err(|e| bad(format!("undecodable: {e}")))?;
    Ok(SnapshotMeta {
        index,
        term,
        conf_state: conf.into(),
    })
}

fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    seal(&be_words(&[hs.term, hs.vote, hs.commit]))
}

fn decode_hard_state(raw: &[u8]) -> Result<HardState, StorageError> {
    let [term, vote, commit] = decode_words(raw, "hard_state")?;
    Ok(HardState { term, vote, commit })
}

fn decode_json<T: for<'de> Deserialize<'de>>(
    raw: &[u8],
    key: &'static str,
) -> Result<T, StorageError> {
    let payload = unseal(raw)
        .ok_or_else(|| corrupt(keyspaces::RAFT_STATE, key, "checksum mismatch".into()))?;
    serde_json::from_slice(payload)
        .map_err(|e| corrupt(keyspaces::RAFT_STATE, key, format!("undecodable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Storage;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data: data.to_vec(),
        }
    }

    #[test]
    fn persist_then_load_round_trips_and_truncates_conflicting_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        let hs = HardState {
            term: 2,
            vote: 7,
            commit: 1,
        };
        log.persist(
            Some(&hs),
            None,
            &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
            true,
        )
        .unwrap();
        // A new leader overwrites index 2 onward with a shorter suffix (Raft §5.3).
        log.persist(None, None, &[entry(2, 2, b"x")], true).unwrap();
        drop(log);
        drop(db);

        let db = crate::storage::open(dir.path()).unwrap();
        let loaded = LogStore::open(&db).unwrap().load().unwrap();
        assert_eq!(loaded.hard_state, hs);
        assert_eq!(loaded.entries, vec![entry(1, 1, b"a"), entry(2, 2, b"x")]);
        assert_eq!(loaded.identity, None);
    }

    fn point(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            conf_state: ConfState::from_voters([1, 2, 3]),
        }
    }

    #[test]
    fn compaction_removes_the_prefix_and_load_starts_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        let entries: Vec<Entry> = (1..=6).map(|i| entry(i, 1 + i / 4, b"e")).collect();
        log.persist(None, None, &entries, true).unwrap();
        log.compact(3, 1, &point(5, 2)).unwrap();
        // Compacting again below the point already reached changes only the snapshot point.
        log.compact(2, 1, &point(6, 2)).unwrap();
        log.persist(None, None, &[entry(7, 2, b"f")], true).unwrap();
        drop(log);
        drop(db);

        let db = crate::storage::open(dir.path()).unwrap();
        let reopened = LogStore::open(&db).unwrap();
        let loaded = reopened.load().unwrap();
        assert_eq!(loaded.compacted, (3, 1));
        assert_eq!(loaded.snapshot, Some(point(6, 2)));
        let indexes: Vec<u64> = loaded.entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![4, 5, 6, 7]);
        assert_eq!(
            reopened.log.len().unwrap(),
            4,
            "compacted keys are gone from disk"
        );
    }

    #[test]
    fn an_installed_snapshot_replaces_the_whole_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        log.persist(None, None, &[entry(1, 1, b"a"), entry(2, 1, b"b")], true)
            .unwrap();
        let hs = HardState {
            term: 4,
            vote: 0,
            commit: 10,
        };
        log.persist(Some(&hs), Some(&point(10, 3)), &[entry(11, 4, b"z")], true)
            .unwrap();
        let loaded = log.load().unwrap();
        assert_eq!(loaded.compacted, (10, 3));
        assert_eq!(loaded.snapshot, Some(point(10, 3)));
        assert_eq!(loaded.conf_state, Some(ConfState::from_voters([1, 2, 3])));
        assert_eq!(loaded.entries, vec![entry(11, 4, b"z")]);
        assert_eq!(loaded.hard_state, hs);
        // The next append continues after the snapshot, and a restart finds the same.
        log.persist(None, None, &[entry(12, 4, b"y")], true)
            .unwrap();
        let again = LogStore::open(&db).unwrap().load().unwrap();
        assert_eq!(again.entries.len(), 2);
    }

    #[test]
    fn finishing_an_install_cut_short_by_a_crash() {
        // The store holds the image of (10, 3); the log stopped at 4 (it never recorded the
        // snapshot): the log is replaced, the commit is the image's index.
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        let hs = HardState {
            term: 3,
            vote: 1,
            commit: 2,
        };
        let entries: Vec<Entry> = (1..=4).map(|i| entry(i, 1, b"e")).collect();
        log.persist(Some(&hs), None, &entries, true).unwrap();
        let loaded = log
            .finish_install(log.load().unwrap(), &point(10, 3))
            .unwrap();
        assert_eq!(loaded.compacted, (10, 3));
        assert!(loaded.entries.is_empty());
        assert_eq!(loaded.hard_state.commit, 10);
        assert_eq!((loaded.hard_state.term, loaded.hard_state.vote), (3, 1));
        assert_eq!(
            loaded
                .to_storage(ConfState::from_voters([1, 2, 3]))
                .unwrap()
                .snapshot()
                .unwrap(),
            point(10, 3)
        );

        // A log that already holds the image's (index, term) keeps its entries; only the
        // commit moves up.
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        let entries: Vec<Entry> = (1..=6).map(|i| entry(i, 2, b"e")).collect();
        log.persist(Some(&hs), None, &entries, true).unwrap();
        let loaded = log
            .finish_install(log.load().unwrap(), &point(5, 2))
            .unwrap();
        assert_eq!(loaded.compacted, (0, 0));
        assert_eq!(loaded.entries.len(), 6);
        assert_eq!(loaded.hard_state.commit, 5);
    }

    #[test]
    fn a_gap_after_the_compaction_point_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        log.persist(
            None,
            None,
            &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
            true,
        )
        .unwrap();
        log.compact(1, 1, &point(2, 1)).unwrap();
        log.log.remove(2u64.to_be_bytes()).unwrap();
        let err = log.load().unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { ref reason, .. } if reason.contains("expected index 2")),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_entry_is_reported_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        log.persist(None, None, &[entry(1, 1, b"payload")], true)
            .unwrap();
        let raw = log.log.get(1u64.to_be_bytes()).unwrap().unwrap();
        let mut bad = raw.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        log.log.insert(1u64.to_be_bytes(), bad).unwrap();
        let err = log.load().unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { ref reason, .. } if reason == "checksum mismatch"),
            "{err}"
        );
    }
}
