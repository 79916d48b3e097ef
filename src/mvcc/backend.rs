//! The fjall backend of the MVCC store.
//!
//! Two keyspaces inside the caller's `fjall::Database` (the raft log lives in other keyspaces
//! of the same database):
//!
//! - `kv`: revision key ([`Revision::to_key`], 17 bytes, 18 for a tombstone) → framed
//!   prost-encoded `mvccpb::KeyValue`. A tombstone's KeyValue carries only the key, as in etcd.
//! - `kv_meta`: one record `state` = [`MetaState`] (applied raft index, current revision,
//!   compacted revision).
//! - `lease`: lease id (8 bytes, big-endian) → framed granted TTL (i64 seconds, big-endian).
//!   Which keys a lease holds is not stored: it is each key's `KeyValue.lease`.
//!
//! Every value is framed as `crc32 (4 bytes, big-endian) ‖ payload`, where the checksum covers
//! the record's key and payload, so a flipped bit or a value stored under the wrong key is
//! reported as [`MvccError::Corrupt`], never used.
//!
//! Writes go through [`Batch`]: one fjall write batch per applied raft entry, which always
//! includes the new `state`. fjall batches are atomic across keyspaces, so after a crash the
//! store is a consistent prefix of the applied entries. Batches are not fsynced here
//! (`PersistMode::Buffer`): the raft log is the durable record and the server replays entries
//! after `applied_index` (the rejected alternative, an fsync per entry, costs ~0.5 ms each).

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch};
use prost::Message;

use super::error::{MvccError, Result};
use super::revision::Revision;
use crate::pb::mvccpb::KeyValue;

/// Name of the keyspace holding the versioned records.
pub const KV_KEYSPACE: &str = "kv";
/// Name of the keyspace holding [`MetaState`].
pub const META_KEYSPACE: &str = "kv_meta";
/// Name of the keyspace holding the granted leases.
pub const LEASE_KEYSPACE: &str = "lease";
/// Key of the [`MetaState`] record in [`META_KEYSPACE`].
pub const STATE_KEY: &[u8] = b"state";

const CRC_BYTES: usize = 4;
const STATE_PAYLOAD_BYTES: usize = 24;

/// The store's bookkeeping, written in every batch.
///
/// Invariant: `compact_revision ≤ current_revision`; every record in `kv` has
/// `main ≤ current_revision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaState {
    /// Index of the last raft entry whose effects are in this store (0 = none).
    pub applied_index: u64,
    /// The store revision (etcd `header.revision`); 1 for an empty store.
    pub current_revision: i64,
    /// The last compaction's revision; -1 when never compacted (etcd `compactMainRev`).
    pub compact_revision: i64,
}

impl Default for MetaState {
    fn default() -> Self {
        MetaState {
            applied_index: 0,
            current_revision: 1,
            compact_revision: -1,
        }
    }
}

impl MetaState {
    fn encode(&self) -> [u8; STATE_PAYLOAD_BYTES] {
        let mut out = [0u8; STATE_PAYLOAD_BYTES];
        out[..8].copy_from_slice(&self.applied_index.to_be_bytes());
        out[8..16].copy_from_slice(&self.current_revision.to_be_bytes());
        out[16..].copy_from_slice(&self.compact_revision.to_be_bytes());
        out
    }

    fn decode(payload: &[u8]) -> Result<Self> {
        if payload.len() != STATE_PAYLOAD_BYTES {
            return Err(MvccError::Corrupt(format!(
                "kv_meta state has {} bytes",
                payload.len()
            )));
        }
        let word = |i: usize| -> [u8; 8] { payload[i..i + 8].try_into().expect("8 bytes") };
        Ok(MetaState {
            applied_index: u64::from_be_bytes(word(0)),
            current_revision: i64::from_be_bytes(word(8)),
            compact_revision: i64::from_be_bytes(word(16)),
        })
    }
}

fn checksum(key: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(payload);
    hasher.finalize()
}

/// Frames `payload` stored under `key`: `crc32(key ‖ payload)` big-endian, then the payload.
pub fn frame(key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CRC_BYTES + payload.len());
    out.extend_from_slice(&checksum(key, payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks and strips the frame of a value stored under `key`.
pub fn unframe<'v>(key: &[u8], value: &'v [u8]) -> Result<&'v [u8]> {
    if value.len() < CRC_BYTES {
        return Err(MvccError::Corrupt(format!(
            "value under {key:02x?} is {} bytes",
            value.len()
        )));
    }
    let (crc, payload) = value.split_at(CRC_BYTES);
    let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
    if stored != checksum(key, payload) {
        return Err(MvccError::Corrupt(format!(
            "checksum mismatch under key {key:02x?}"
        )));
    }
    Ok(payload)
}

fn decode_kv(key: &[u8], value: &[u8]) -> Result<KeyValue> {
    let payload = unframe(key, value)?;
    KeyValue::decode(payload)
        .map_err(|e| MvccError::Corrupt(format!("undecodable KeyValue under {key:02x?}: {e}")))
}

/// Handles to the MVCC keyspaces.
#[derive(Clone)]
pub struct Backend {
    db: Database,
    kv: Keyspace,
    meta: Keyspace,
    lease: Keyspace,
}

impl Backend {
    /// Opens (creating if absent) the `kv`, `kv_meta` and `lease` keyspaces of `db`.
    pub fn open(db: &Database) -> Result<Self> {
        Ok(Backend {
            db: db.clone(),
            kv: db.keyspace(KV_KEYSPACE, KeyspaceCreateOptions::default)?,
            meta: db.keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)?,
            lease: db.keyspace(LEASE_KEYSPACE, KeyspaceCreateOptions::default)?,
        })
    }

    /// Every granted lease as `(id, ttl seconds)`, in id order, each checked.
    pub fn scan_leases(&self) -> impl Iterator<Item = Result<(i64, i64)>> + '_ {
        self.lease.iter().map(|guard| {
            let (key, value) = guard.into_inner()?;
            let payload = unframe(&key, &value)?;
            match (<[u8; 8]>::try_from(&key[..]), <[u8; 8]>::try_from(payload)) {
                (Ok(id), Ok(ttl)) => Ok((i64::from_be_bytes(id), i64::from_be_bytes(ttl))),
                _ => Err(MvccError::Corrupt(format!(
                    "lease record {key:02x?} has {} payload bytes",
                    payload.len()
                ))),
            }
        })
    }

    /// The stored state, or `None` for a store that never applied anything.
    pub fn load_state(&self) -> Result<Option<MetaState>> {
        match self.meta.get(STATE_KEY)? {
            None => Ok(None),
            Some(value) => MetaState::decode(unframe(STATE_KEY, &value)?).map(Some),
        }
    }

    /// The record stored at `rev`, checked. `None` if absent.
    pub fn get(&self, rev: Revision, tombstone: bool) -> Result<Option<KeyValue>> {
        let key = rev.to_key(tombstone);
        match self.kv.get(&key)? {
            None => Ok(None),
            Some(value) => decode_kv(&key, &value).map(Some),
        }
    }

    /// Every record in revision order as `(revision, is_tombstone, KeyValue)`, each checked.
    pub fn scan(&self) -> impl Iterator<Item = Result<(Revision, bool, KeyValue)>> + '_ {
        self.kv.iter().map(|guard| {
            let (key, value) = guard.into_inner()?;
            let (rev, tombstone) = Revision::from_key(&key)?;
            Ok((rev, tombstone, decode_kv(&key, &value)?))
        })
    }

    /// A new atomic batch.
    pub fn batch(&self) -> Batch {
        Batch {
            batch: self.db.batch(),
            kv: self.kv.clone(),
            meta: self.meta.clone(),
            lease: self.lease.clone(),
        }
    }
}

/// The writes of one applied raft entry, committed atomically across `kv` and `kv_meta`.
pub struct Batch {
    batch: OwnedWriteBatch,
    kv: Keyspace,
    meta: Keyspace,
    lease: Keyspace,
}

impl Batch {
    /// Stores `kv` at `rev` (a tombstone when `tombstone`).
    pub fn put(&mut self, rev: Revision, tombstone: bool, kv: &KeyValue) {
        let key = rev.to_key(tombstone);
        let value = frame(&key, &kv.encode_to_vec());
        self.batch.insert(&self.kv, key, value);
    }

    /// Removes the record at `rev` (compaction).
    pub fn remove(&mut self, rev: Revision, tombstone: bool) {
        self.batch.remove(&self.kv, rev.to_key(tombstone));
    }

    /// Records lease `id` granted with `ttl` seconds.
    pub fn put_lease(&mut self, id: i64, ttl: i64) {
        let key = id.to_be_bytes();
        self.batch
            .insert(&self.lease, key, frame(&key, &ttl.to_be_bytes()));
    }

    /// Removes lease `id` (revoked or expired).
    pub fn remove_lease(&mut self, id: i64) {
        self.batch.remove(&self.lease, id.to_be_bytes());
    }

    /// Commits the records together with `state`. Not fsynced (see module docs).
    pub fn commit(mut self, state: &MetaState) -> Result<()> {
        self.batch
            .insert(&self.meta, STATE_KEY, frame(STATE_KEY, &state.encode()));
        self.batch.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_detects_flips_and_wrong_keys() {
        let framed = frame(b"k1", b"payload");
        assert_eq!(unframe(b"k1", &framed).unwrap(), b"payload");
        for i in 0..framed.len() {
            let mut bad = framed.clone();
            bad[i] ^= 0x10;
            assert!(
                matches!(unframe(b"k1", &bad), Err(MvccError::Corrupt(_))),
                "flip at {i}"
            );
        }
        assert!(
            unframe(b"k2", &framed).is_err(),
            "value moved under another key"
        );
        assert!(unframe(b"k1", b"ab").is_err());
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let backend = Backend::open(&db).unwrap();
        assert_eq!(backend.load_state().unwrap(), None);
        let state = MetaState {
            applied_index: 7,
            current_revision: 5,
            compact_revision: 3,
        };
        let mut batch = backend.batch();
        let kv = KeyValue {
            key: b"a".to_vec(),
            ..Default::default()
        };
        batch.put(Revision::new(5, 0), false, &kv);
        batch.commit(&state).unwrap();
        assert_eq!(backend.load_state().unwrap(), Some(state));
        assert_eq!(backend.get(Revision::new(5, 0), false).unwrap(), Some(kv));
        assert_eq!(backend.get(Revision::new(5, 0), true).unwrap(), None);
    }
}
