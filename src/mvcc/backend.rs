//! The storage seam of the MVCC store: the [`Backend`] trait [`super::Kv`] talks to, the
//! [`WriteBatch`] it hands over once per applied raft entry, and the record format every backend
//! stores, so all of them keep and check exactly the same bytes.
//!
//! "A core sees a trait, not a database" (`/work/shared/STYLE.md`): `Kv` decides, a backend only
//! keeps bytes. Two implementations: [`super::fjall_backend::FjallBackend`] (the server; keyspaces
//! in the member's fjall database) and [`super::mem_backend::MemBackend`] (tests and the
//! deterministic simulator; in memory, loses its unsynced tail on a simulated crash).
//!
//! # Record format (shared by every backend)
//!
//! Three *spaces* ([`Space`]), named after the fjall keyspaces that hold them:
//!
//! - `kv`: revision key ([`Revision::to_key`], 17 bytes, 18 for a tombstone) → framed
//!   prost-encoded `mvccpb::KeyValue`. A tombstone's KeyValue carries only the key, as in etcd.
//!   Keys compare byte-wise in revision order, so a scan visits the history in revision order.
//! - `kv_meta`: one record [`STATE_KEY`] = framed [`MetaState`] (applied raft index, current
//!   revision, compacted revision; three big-endian 8-byte words).
//! - `lease`: lease id (8 bytes, big-endian) → framed granted TTL (i64 seconds, big-endian).
//!   Which keys a lease holds is not stored: it is each key's `KeyValue.lease`.
//! - `kv_meta` also holds the active alarms: `alarm/` ‖ member id (8 bytes BE) ‖ alarm type
//!   (4 bytes BE, etcd's `AlarmType` number) → framed empty payload (etcd's `alarm` bucket).
//!
//! Every value is framed as `crc32 (4 bytes, big-endian) ‖ payload`, where the checksum covers
//! the record's key and payload ([`frame`], [`unframe`]), so a flipped bit or a value stored under
//! the wrong key is reported as [`MvccError::Corrupt`], never used.

use prost::Message;

use super::error::{MvccError, Result};
use super::revision::Revision;
use crate::pb::mvccpb::KeyValue;

/// Name of the space (fjall keyspace) holding the versioned records.
pub const KV_KEYSPACE: &str = "kv";
/// Name of the space (fjall keyspace) holding [`MetaState`].
pub const META_KEYSPACE: &str = "kv_meta";
/// Name of the space (fjall keyspace) holding the granted leases.
pub const LEASE_KEYSPACE: &str = "lease";
/// Key of the [`MetaState`] record in [`META_KEYSPACE`].
pub const STATE_KEY: &[u8] = b"state";

const CRC_BYTES: usize = 4;
const STATE_PAYLOAD_BYTES: usize = 24;

/// Every record of the `kv` space, in revision order, as `(revision, is_tombstone, KeyValue)`,
/// each checked ([`Backend::scan`]).
pub type RecordIter<'a> = Box<dyn Iterator<Item = Result<(Revision, bool, KeyValue)>> + 'a>;
/// Every granted lease as `(id, ttl seconds)`, in id order, each checked
/// ([`Backend::scan_leases`]).
pub type LeaseIter<'a> = Box<dyn Iterator<Item = Result<(i64, i64)>> + 'a>;
/// Every active alarm as `(member id, alarm type)`, in that order ([`Backend::scan_alarms`]).
pub type AlarmIter<'a> = Box<dyn Iterator<Item = Result<(u64, i32)>> + 'a>;

/// Prefix of alarm records in the `kv_meta` space.
pub const ALARM_PREFIX: &[u8] = b"alarm/";

/// The `kv_meta` key of alarm `alarm` raised by member `member`.
pub fn alarm_key(member: u64, alarm: i32) -> Vec<u8> {
    let mut key = ALARM_PREFIX.to_vec();
    key.extend_from_slice(&member.to_be_bytes());
    key.extend_from_slice(&alarm.to_be_bytes());
    key
}

/// Decodes one alarm record (key under [`ALARM_PREFIX`], framed empty value).
/// Errors: [`MvccError::Corrupt`].
pub fn decode_alarm(key: &[u8], value: &[u8]) -> Result<(u64, i32)> {
    unframe(key, value)?;
    let rest = key.strip_prefix(ALARM_PREFIX).unwrap_or_default();
    match (rest.get(..8), rest.get(8..)) {
        (Some(member), Some(alarm)) if alarm.len() == 4 => Ok((
            u64::from_be_bytes(member.try_into().expect("8 bytes")),
            i32::from_be_bytes(alarm.try_into().expect("4 bytes")),
        )),
        _ => Err(MvccError::Corrupt(format!("alarm record key {key:02x?}"))),
    }
}

/// Durable storage for the MVCC store: three ordered byte maps ([`Space`]) written only in
/// atomic batches.
///
/// # Correctness contract
///
/// Every implementation must keep these, and `Kv` relies on nothing else:
///
/// 1. **Atomic batches.** [`commit`](Backend::commit) applies every op of the batch, in list
///    order (a later op on the same key wins), together with the new [`MetaState`], as one
///    unit: a reader, and the store found after any crash, sees all of it or none of it.
/// 2. **Prefix after a crash.** The store found after a crash is the effect of a *prefix* of the
///    committed batches, in commit order, that includes every batch that was durable (see 3). A
///    later batch never survives without every earlier one. Since every batch carries the
///    applied raft index, the store after a crash is exactly entries `1..=applied_index`, and the
///    raft log replays the rest (`docs/mvcc.md`, "Durability").
/// 3. **`sync`.** With `sync = true`, when `commit` returns `Ok` this batch and every earlier one
///    are durable (survive a crash and a power loss). With `sync = false` the batch is durable
///    at the backend's next sync: a later commit with `sync = true`, or any sync of storage the
///    backend shares (in the server, the raft log's fsync of the one fjall journal; in the
///    simulator, [`super::mem_backend::MemBackend::sync_all`]). Until then a crash may drop it
///    (and, by 2, every later batch).
/// 4. **Read your writes.** `get`, `scan`, `scan_leases` and `load_state` see every batch
///    committed so far, synced or not.
/// 5. **Checked reads.** Every record returned passed [`unframe`]'s checksum and decoded; a
///    record that does not is returned as [`MvccError::Corrupt`], never used.
/// 6. **Errors.** [`MvccError::Storage`] for I/O and backend failures, [`MvccError::Corrupt`]
///    for failed checks; both are fatal ([`MvccError::is_fatal`]). After a failed `commit` the
///    batch may or may not have been applied (atomically, by 1); the caller must stop using the
///    backend and restart from what is durable, as `Kv` and the `StoreActor` do.
///
/// `Send` so the store can move to the `StoreActor`'s arbiter thread.
pub trait Backend: Send {
    /// The record stored at `rev` (`tombstone` selects the 18-byte delete key), checked.
    /// `None` if absent. Errors: `Storage`, `Corrupt`.
    fn get(&self, rev: Revision, tombstone: bool) -> Result<Option<KeyValue>>;

    /// Every record of the `kv` space in revision order, each checked ([`decode_record`]).
    fn scan(&self) -> RecordIter<'_>;

    /// Every granted lease as `(id, ttl seconds)` in id order, each checked
    /// ([`decode_lease`]).
    fn scan_leases(&self) -> LeaseIter<'_>;

    /// Every active alarm as `(member id, alarm type)`, in that order, each checked
    /// ([`decode_alarm`]).
    fn scan_alarms(&self) -> AlarmIter<'_>;

    /// The stored state, or `None` for a store that never committed a batch.
    /// Errors: `Storage`, `Corrupt`.
    fn load_state(&self) -> Result<Option<MetaState>>;

    /// Applies `batch` and stores `state`, atomically; durable now if `sync`, otherwise at the
    /// next sync (see the contract above). Errors: `Storage` (fatal).
    fn commit(&mut self, batch: WriteBatch, state: &MetaState, sync: bool) -> Result<()>;
}

impl Backend for Box<dyn Backend> {
    fn get(&self, rev: Revision, tombstone: bool) -> Result<Option<KeyValue>> {
        (**self).get(rev, tombstone)
    }

    fn scan(&self) -> RecordIter<'_> {
        (**self).scan()
    }

    fn scan_leases(&self) -> LeaseIter<'_> {
        (**self).scan_leases()
    }

    fn scan_alarms(&self) -> AlarmIter<'_> {
        (**self).scan_alarms()
    }

    fn load_state(&self) -> Result<Option<MetaState>> {
        (**self).load_state()
    }

    fn commit(&mut self, batch: WriteBatch, state: &MetaState, sync: bool) -> Result<()> {
        (**self).commit(batch, state, sync)
    }
}

/// Something [`super::Kv::open`] can open a store on: any [`Backend`] (boxed or not).
pub trait IntoBackend {
    /// The backend, boxed. Errors: whatever opening it reports (`Storage`).
    fn into_backend(self) -> Result<Box<dyn Backend>>;
}

impl<B: Backend + 'static> IntoBackend for B {
    fn into_backend(self) -> Result<Box<dyn Backend>> {
        Ok(Box::new(self))
    }
}

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
    /// The unframed payload: `applied_index ‖ current_revision ‖ compact_revision`, each 8
    /// bytes big-endian (24 bytes).
    pub fn encode(&self) -> [u8; STATE_PAYLOAD_BYTES] {
        let mut out = [0u8; STATE_PAYLOAD_BYTES];
        out[..8].copy_from_slice(&self.applied_index.to_be_bytes());
        out[8..16].copy_from_slice(&self.current_revision.to_be_bytes());
        out[16..].copy_from_slice(&self.compact_revision.to_be_bytes());
        out
    }

    /// Parses an unframed payload. Errors: [`MvccError::Corrupt`] unless it is 24 bytes.
    pub fn decode(payload: &[u8]) -> Result<Self> {
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

    /// The framed record stored under [`STATE_KEY`] in `kv_meta`.
    pub fn to_raw(&self) -> RawWrite {
        RawWrite {
            space: Space::Meta,
            key: STATE_KEY.to_vec(),
            value: Some(frame(STATE_KEY, &self.encode())),
        }
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
/// Errors: [`MvccError::Corrupt`] when the value is shorter than the frame or fails the checksum.
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

/// Checks and decodes the `KeyValue` stored (framed) under revision key `key`.
/// Errors: [`MvccError::Corrupt`].
pub fn decode_kv(key: &[u8], value: &[u8]) -> Result<KeyValue> {
    let payload = unframe(key, value)?;
    KeyValue::decode(payload)
        .map_err(|e| MvccError::Corrupt(format!("undecodable KeyValue under {key:02x?}: {e}")))
}

/// Decodes one `kv` space record: its revision key and its checked `KeyValue`.
/// Errors: [`MvccError::Corrupt`].
pub fn decode_record(key: &[u8], value: &[u8]) -> Result<(Revision, bool, KeyValue)> {
    let (rev, tombstone) = Revision::from_key(key)?;
    Ok((rev, tombstone, decode_kv(key, value)?))
}

/// Decodes one `lease` space record as `(id, ttl seconds)`. Errors: [`MvccError::Corrupt`].
pub fn decode_lease(key: &[u8], value: &[u8]) -> Result<(i64, i64)> {
    let payload = unframe(key, value)?;
    match (<[u8; 8]>::try_from(key), <[u8; 8]>::try_from(payload)) {
        (Ok(id), Ok(ttl)) => Ok((i64::from_be_bytes(id), i64::from_be_bytes(ttl))),
        _ => Err(MvccError::Corrupt(format!(
            "lease record {key:02x?} has {} payload bytes",
            payload.len()
        ))),
    }
}

/// Decodes the framed [`MetaState`] record stored under [`STATE_KEY`].
/// Errors: [`MvccError::Corrupt`].
pub fn decode_state(value: &[u8]) -> Result<MetaState> {
    MetaState::decode(unframe(STATE_KEY, value)?)
}

/// One of the three ordered byte maps a backend keeps (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Versioned records, [`KV_KEYSPACE`].
    Kv,
    /// The [`MetaState`] record, [`META_KEYSPACE`].
    Meta,
    /// Granted leases, [`LEASE_KEYSPACE`].
    Lease,
}

impl Space {
    /// The space's name (the fjall keyspace's name).
    pub fn name(self) -> &'static str {
        match self {
            Space::Kv => KV_KEYSPACE,
            Space::Meta => META_KEYSPACE,
            Space::Lease => LEASE_KEYSPACE,
        }
    }
}

/// One write in the shared record format: a key of a space and its framed value, or its
/// removal. What a backend actually stores; produced by [`WriteBatch::to_raw`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawWrite {
    /// Which map.
    pub space: Space,
    /// The record's key.
    pub key: Vec<u8>,
    /// The framed value to store, or `None` to remove the key.
    pub value: Option<Vec<u8>>,
}

/// One change of a [`WriteBatch`], as data.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// Store `kv` at revision `rev` (a tombstone record when `tombstone`).
    PutRecord {
        /// The record's revision.
        rev: Revision,
        /// True for a delete's record.
        tombstone: bool,
        /// The version (a tombstone's carries only the key).
        kv: KeyValue,
    },
    /// Remove the record at `rev` (compaction).
    RemoveRecord {
        /// The record's revision.
        rev: Revision,
        /// True for a delete's record.
        tombstone: bool,
    },
    /// Record lease `id` as granted with `ttl_secs`.
    PutLease {
        /// Lease id.
        id: i64,
        /// Granted TTL, seconds.
        ttl_secs: i64,
    },
    /// Forget lease `id` (revoked or expired).
    RemoveLease {
        /// Lease id.
        id: i64,
    },
    /// Record alarm `alarm` (etcd `AlarmType`) raised by member `member`.
    PutAlarm {
        /// The member the alarm is about.
        member: u64,
        /// etcd's alarm type number (1 NOSPACE, 2 CORRUPT).
        alarm: i32,
    },
    /// Clear that alarm.
    RemoveAlarm {
        /// The member the alarm is about.
        member: u64,
        /// etcd's alarm type number.
        alarm: i32,
    },
}

impl WriteOp {
    /// The op in the shared record format.
    pub fn to_raw(&self) -> RawWrite {
        match self {
            WriteOp::PutRecord { rev, tombstone, kv } => {
                let key = rev.to_key(*tombstone);
                let value = frame(&key, &kv.encode_to_vec());
                RawWrite {
                    space: Space::Kv,
                    key,
                    value: Some(value),
                }
            }
            WriteOp::RemoveRecord { rev, tombstone } => RawWrite {
                space: Space::Kv,
                key: rev.to_key(*tombstone),
                value: None,
            },
            WriteOp::PutLease { id, ttl_secs } => {
                let key = id.to_be_bytes();
                RawWrite {
                    space: Space::Lease,
                    key: key.to_vec(),
                    value: Some(frame(&key, &ttl_secs.to_be_bytes())),
                }
            }
            WriteOp::RemoveLease { id } => RawWrite {
                space: Space::Lease,
                key: id.to_be_bytes().to_vec(),
                value: None,
            },
            WriteOp::PutAlarm { member, alarm } => {
                let key = alarm_key(*member, *alarm);
                let value = frame(&key, &[]);
                RawWrite {
                    space: Space::Meta,
                    key,
                    value: Some(value),
                }
            }
            WriteOp::RemoveAlarm { member, alarm } => RawWrite {
                space: Space::Meta,
                key: alarm_key(*member, *alarm),
                value: None,
            },
        }
    }
}

/// The writes of one applied raft entry, as a plain list of ops; a backend applies them
/// atomically together with the new [`MetaState`] ([`Backend::commit`]).
///
/// Data rather than a handle into a database (the rejected alternative, the old fjall `Batch`)
/// so that `Kv` needs no backend to build one and tests can assert on it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    /// The ops, applied in order.
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `kv` at `rev` (a tombstone when `tombstone`).
    pub fn put(&mut self, rev: Revision, tombstone: bool, kv: KeyValue) {
        self.ops.push(WriteOp::PutRecord { rev, tombstone, kv });
    }

    /// Removes the record at `rev` (compaction).
    pub fn remove(&mut self, rev: Revision, tombstone: bool) {
        self.ops.push(WriteOp::RemoveRecord { rev, tombstone });
    }

    /// Records lease `id` granted with `ttl_secs` seconds.
    pub fn put_lease(&mut self, id: i64, ttl_secs: i64) {
        self.ops.push(WriteOp::PutLease { id, ttl_secs });
    }

    /// Removes lease `id` (revoked or expired).
    pub fn remove_lease(&mut self, id: i64) {
        self.ops.push(WriteOp::RemoveLease { id });
    }

    /// Records an active alarm.
    pub fn put_alarm(&mut self, member: u64, alarm: i32) {
        self.ops.push(WriteOp::PutAlarm { member, alarm });
    }

    /// Clears an alarm.
    pub fn remove_alarm(&mut self, member: u64, alarm: i32) {
        self.ops.push(WriteOp::RemoveAlarm { member, alarm });
    }

    /// Number of ops (the state record not counted).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no op (it still stores the state when committed).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every write a backend stores for this batch committed with `state`: the ops in order,
    /// then the state record.
    pub fn to_raw(&self, state: &MetaState) -> Vec<RawWrite> {
        let mut out: Vec<RawWrite> = self.ops.iter().map(WriteOp::to_raw).collect();
        out.push(state.to_raw());
        out
    }
}

#[cfg(test)]
pub(super) mod tests {
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
    fn alarm_records_decode_back_and_are_checked() {
        let mut batch = WriteBatch::new();
        batch.put_alarm(0xfeed, 1);
        batch.remove_alarm(0xfeed, 2);
        let raw = batch.to_raw(&MetaState::default());
        assert_eq!(raw[0].space, Space::Meta);
        assert_eq!(raw[0].key, alarm_key(0xfeed, 1));
        let value = raw[0].value.as_ref().unwrap();
        assert_eq!(decode_alarm(&raw[0].key, value).unwrap(), (0xfeed, 1));
        assert_eq!(raw[1].value, None, "a cleared alarm is a removal");
        assert!(
            decode_alarm(&alarm_key(0xfeed, 2), value).is_err(),
            "moved record"
        );
        assert!(decode_alarm(b"alarm/short", &frame(b"alarm/short", &[])).is_err());
    }

    #[test]
    fn raw_records_decode_back() {
        let kv = KeyValue {
            key: b"a".to_vec(),
            mod_revision: 5,
            ..Default::default()
        };
        let state = MetaState {
            applied_index: 9,
            current_revision: 5,
            compact_revision: 2,
        };
        let mut batch = WriteBatch::new();
        batch.put(Revision::new(5, 0), false, kv.clone());
        batch.put_lease(7, 30);
        let raw = batch.to_raw(&state);
        assert_eq!(raw.len(), 3, "two ops and the state");
        let value = raw[0].value.as_deref().unwrap();
        assert_eq!(
            decode_record(&raw[0].key, value).unwrap(),
            (Revision::new(5, 0), false, kv)
        );
        let value = raw[1].value.as_deref().unwrap();
        assert_eq!(decode_lease(&raw[1].key, value).unwrap(), (7, 30));
        assert_eq!(raw[2].key, STATE_KEY);
        assert_eq!(
            decode_state(raw[2].value.as_deref().unwrap()).unwrap(),
            state
        );
    }

    /// The contract checks every backend passes, given a fresh one.
    pub(in crate::mvcc) fn round_trip(backend: &mut dyn Backend) {
        assert_eq!(backend.load_state().unwrap(), None);
        assert_eq!(backend.scan().count(), 0);
        let state = MetaState {
            applied_index: 7,
            current_revision: 5,
            compact_revision: 3,
        };
        let kv = KeyValue {
            key: b"a".to_vec(),
            mod_revision: 5,
            ..Default::default()
        };
        let tomb = KeyValue {
            key: b"b".to_vec(),
            ..Default::default()
        };
        let mut batch = WriteBatch::new();
        batch.put(Revision::new(5, 0), false, kv.clone());
        batch.put(Revision::new(4, 0), true, tomb.clone());
        batch.put(Revision::new(3, 0), false, kv.clone());
        batch.put_lease(2, 60);
        batch.put_lease(1, 10);
        backend.commit(batch, &state, false).unwrap();
        assert_eq!(backend.load_state().unwrap(), Some(state));
        assert_eq!(backend.get(Revision::new(5, 0), false).unwrap(), Some(kv));
        assert_eq!(backend.get(Revision::new(5, 0), true).unwrap(), None);
        assert_eq!(backend.get(Revision::new(4, 0), true).unwrap(), Some(tomb));
        let order: Vec<(Revision, bool)> = backend
            .scan()
            .map(|r| r.map(|(rev, t, _)| (rev, t)).unwrap())
            .collect();
        assert_eq!(
            order,
            vec![
                (Revision::new(3, 0), false),
                (Revision::new(4, 0), true),
                (Revision::new(5, 0), false)
            ],
            "scan is in revision order"
        );
        let leases: Vec<_> = backend.scan_leases().map(Result::unwrap).collect();
        assert_eq!(leases, vec![(1, 10), (2, 60)], "leases in id order");
        let mut batch = WriteBatch::new();
        batch.remove(Revision::new(3, 0), false);
        batch.remove_lease(1);
        let next = MetaState {
            applied_index: 8,
            ..state
        };
        backend.commit(batch, &next, true).unwrap();
        assert_eq!(backend.load_state().unwrap(), Some(next));
        assert_eq!(backend.get(Revision::new(3, 0), false).unwrap(), None);
        assert_eq!(backend.scan().count(), 2);
        let leases: Vec<_> = backend.scan_leases().map(Result::unwrap).collect();
        assert_eq!(leases, vec![(2, 60)]);
    }
}
