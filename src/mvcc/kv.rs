//! [`Kv`]: the MVCC store — reads at a revision, and write transactions that turn one raft
//! entry into one atomic backend batch and the watch events it produced.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::backend::{Backend, IntoBackend, MetaState, WriteBatch, WriteOp};
use super::error::{MvccError, Result};
use super::index::{KeyRange, TreeIndex};
use super::lease::{LeaseChange, LeaseTable};
use super::revision::Revision;
use crate::pb::mvccpb::{Event, KeyValue, event::EventType};

/// Options of a read (the storage-level subset of etcd's RangeRequest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// Revision to read at; 0 (or negative) = the current revision.
    pub revision: i64,
    /// Maximum number of key-values returned, in key order; 0 = no limit.
    pub limit: usize,
    /// Return only the count, no key-values.
    pub count_only: bool,
}

/// Result of a read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeResult {
    /// The visible key-values in key order (empty with `count_only`), at most `limit`.
    pub kvs: Vec<KeyValue>,
    /// Number of keys in the range visible at the read revision, ignoring `limit`.
    pub count: usize,
    /// The store revision the read ran against (etcd puts it in `header.revision`, even when an
    /// older `revision` was requested).
    pub revision: i64,
}

/// The answer of [`Kv::hash_kv`] (etcd `HashKVResponse` fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvHash {
    /// CRC-32C of the store's history up to the requested revision.
    pub hash: u32,
    /// The store's current revision (the response header's).
    pub revision: i64,
    /// The store's compacted revision (-1 = never compacted).
    pub compact_revision: i64,
}

/// CRC-32C (Castagnoli), the checksum of etcd's HashKV.
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
/// etcd's name of the bucket HashKV covers; the hash starts with it.
const KEY_BUCKET_NAME: &[u8] = b"key";

/// The MVCC store.
///
/// Invariant: `index` describes exactly the records of the backend's `kv` space, and `state`
/// equals the backend's stored state, between write transactions.
///
/// Every commit goes to the backend with `sync = false`: the raft log is the durable record, a
/// crash may lose a suffix of the store's batches (never a middle one, [`Backend`] contract 2),
/// and the entries after the surviving `applied_index` are replayed from the log.
///
/// Between [`Kv::defer_commits`] and [`Kv::flush`] the commits of many write transactions
/// (one per raft entry) are collected into one backend batch: reads see them at once, the
/// backend sees them together, atomically, with the state of the last one.
pub struct Kv {
    backend: Box<dyn Backend>,
    index: TreeIndex,
    state: MetaState,
    leases: LeaseTable,
    /// Active alarms as `(member id, etcd AlarmType)` (etcd's alarm store, in the `kv_meta`
    /// space so it changes atomically with the applied index).
    alarms: BTreeSet<(u64, i32)>,
    /// Bytes of the stored records (kv and lease spaces: keys and framed values): what the
    /// store holds, `Status.db_size_in_use` and the quota's measure.
    size_bytes: u64,
    /// Commits not yet handed to the backend; `None` = commit each transaction at once.
    deferred: Option<Deferred>,
}

/// Stored bytes of one `kv` record: its 17/18-byte revision key, the 4-byte frame, the
/// encoded `KeyValue`.
fn record_size(tombstone: bool, kv: &KeyValue) -> u64 {
    (17 + usize::from(tombstone) + 4 + prost::Message::encoded_len(kv)) as u64
}

/// Stored bytes of one lease record: 8-byte id, 4-byte frame, 8-byte TTL.
const LEASE_RECORD_BYTES: u64 = 20;

/// Commits collected between [`Kv::defer_commits`] and [`Kv::flush`].
#[derive(Default)]
struct Deferred {
    /// Their backend writes, in commit order.
    batch: WriteBatch,
    /// Every record those writes store, `(revision, is_tombstone)` → record, for reads.
    records: HashMap<(Revision, bool), KeyValue>,
    /// True once a transaction committed (the state must be written even with no op).
    committed: bool,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("state", &self.state)
            .field("keys", &self.index.len())
            .finish()
    }
}

impl Kv {
    /// Opens the store on `backend` (a [`Backend`], e.g.
    /// `Kv::open(FjallBackend::open(&db)?)` or `Kv::open(MemBackend::new())`), rebuilding the
    /// tree index by scanning the `kv` space in revision order and restoring the applied index,
    /// current and compacted revisions and the lease table. An empty store starts at revision
    /// 1, applied index 0, compacted -1.
    ///
    /// Errors: [`MvccError::Corrupt`] when a record fails its checksum or contradicts the
    /// stored state; [`MvccError::Storage`] when the backend fails.
    pub fn open(backend: impl IntoBackend) -> Result<Kv> {
        let backend = backend.into_backend()?;
        let stored = backend.load_state()?;
        let state = stored.unwrap_or_default();
        let mut index = TreeIndex::default();
        // The lease each key's latest version carries (records come in revision order, so the
        // last one seen wins; a tombstone detaches): the lease attachments, without a second
        // pass over the store.
        let mut leased: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut size_bytes = 0u64;
        for record in backend.scan() {
            let (rev, tombstone, kv) = record?;
            size_bytes += record_size(tombstone, &kv);
            if stored.is_none() || rev.main > state.current_revision {
                return Err(MvccError::Corrupt(format!(
                    "record at revision {rev} beyond stored state {stored:?}"
                )));
            }
            if tombstone {
                index.tombstone(&kv.key, rev).map_err(|_| {
                    MvccError::Corrupt(format!("tombstone at {rev} for a key that is not live"))
                })?;
                leased.remove(&kv.key);
            } else {
                if kv.mod_revision != rev.main {
                    return Err(MvccError::Corrupt(format!(
                        "record at {rev} says mod_revision {}",
                        kv.mod_revision
                    )));
                }
                index.restore_put(&kv.key, rev, kv.create_revision, kv.version);
                if kv.lease != 0 {
                    leased.insert(kv.key, kv.lease);
                } else {
                    leased.remove(&kv.key);
                }
            }
        }
        let mut leases = LeaseTable::default();
        for record in backend.scan_leases() {
            let (id, ttl) = record?;
            size_bytes += LEASE_RECORD_BYTES;
            leases.apply(LeaseChange::Grant { id, ttl });
        }
        for (key, id) in leased {
            if leases.get(id).is_none() {
                // Stores written before puts checked their lease can hold such keys.
                tracing::warn!(lease = id, ?key, "key names a lease that is not granted");
                continue;
            }
            leases.apply(LeaseChange::Attach { id, key });
        }
        let alarms = backend.scan_alarms().collect::<Result<BTreeSet<_>>>()?;
        let kv = Kv {
            backend,
            index,
            state,
            leases,
            alarms,
            size_bytes,
            deferred: None,
        };
        tracing::debug!(
            ?state,
            keys = kv.index.len(),
            leases = kv.leases.len(),
            "mvcc store opened"
        );
        Ok(kv)
    }

    /// The granted leases and their keys (etcd lessor state that lives in the log order).
    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// Bytes of the records the store holds (keys and framed values of every revision and
    /// lease; etcd's `db_size_in_use` counterpart): grows with writes, shrinks with
    /// compaction and revokes. The measure `--quota-backend-bytes` is checked against.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The active alarms as `(member id, etcd AlarmType number)`, ordered.
    pub fn alarms(&self) -> &BTreeSet<(u64, i32)> {
        &self.alarms
    }

    /// Index of the last raft entry applied to this store (0 = none).
    pub fn applied_index(&self) -> u64 {
        self.state.applied_index
    }

    /// The store revision (etcd `header.revision`): the main revision of the last write
    /// transaction that changed something; 1 for an empty store.
    pub fn current_revision(&self) -> i64 {
        self.state.current_revision
    }

    /// The revision of the last compaction (-1 = never compacted). Reads below it fail with
    /// [`MvccError::Compacted`]; a read at it succeeds.
    pub fn compact_revision(&self) -> i64 {
        self.state.compact_revision
    }

    /// The retained changes of `key` with `main ≥ rev` as `(revision, is_tombstone)`, for the
    /// watch layer catching up (see [`super::key_index::KeyIndex::since`]).
    pub fn key_changes_since(&self, key: &[u8], rev: i64) -> Vec<(Revision, bool)> {
        self.index
            .key_index(key)
            .map(|ki| ki.since(rev))
            .unwrap_or_default()
    }

    /// The record stored at `rev` (a tombstone's record has only its key set).
    pub fn record_at(&self, rev: Revision, tombstone: bool) -> Result<Option<KeyValue>> {
        if let Some(kv) = self
            .deferred
            .as_ref()
            .and_then(|d| d.records.get(&(rev, tombstone)))
        {
            return Ok(Some(kv.clone()));
        }
        self.backend.get(rev, tombstone)
    }

    /// etcd's `HashKV`: CRC-32C of `"key"` and then, in revision order, of every record with
    /// `main ≤ revision` — its revision key (17 bytes, 18 for a tombstone) and its
    /// protobuf-encoded `KeyValue` — leaving out records at or below the compacted revision
    /// that a compaction at `revision` would not keep (etcd 3.4.23/3.5.0 `store.HashByRev`,
    /// whose record bytes are the same as ours, so the same history hashes alike on etcd and
    /// ferrokv; like etcd 3.4.23, compaction here removes a tombstone at the compaction
    /// revision, so the later rule that skips one is moot). `revision` 0 = the current
    /// revision. Equal on every member at the same revision. Reads the backend: call it
    /// between batches (never while [`Kv::defer_commits`] collects). Errors:
    /// [`MvccError::Compacted`] at or below the compacted revision (etcd 3.4.23 and 3.5.0;
    /// etcd ≥ 3.4.27/3.5.10 also hash at it), [`MvccError::FutureRevision`] above the current
    /// one, `Storage`/`Corrupt` from the backend.
    pub fn hash_kv(&self, revision: i64) -> Result<KvHash> {
        let (compact, current) = (self.state.compact_revision, self.state.current_revision);
        if revision > 0 && revision <= compact {
            return Err(MvccError::Compacted);
        }
        if revision > current {
            return Err(MvccError::FutureRevision);
        }
        debug_assert!(
            self.deferred.is_none(),
            "hash_kv while commits are collected"
        );
        let at = if revision <= 0 { current } else { revision };
        let keep = self.index.keep(at);
        let mut digest = CASTAGNOLI.digest();
        digest.update(KEY_BUCKET_NAME);
        for record in self.backend.scan() {
            let (rev, tombstone, kv) = record?;
            if rev.main > at || (rev.main <= compact && !keep.is_empty() && !keep.contains(&rev)) {
                continue;
            }
            digest.update(&rev.to_key(tombstone));
            digest.update(&prost::Message::encode_to_vec(&kv));
        }
        Ok(KvHash {
            hash: digest.finalize(),
            revision: current,
            compact_revision: compact,
        })
    }

    /// etcd's `Hash` (a check of the whole store, "for testing"): CRC-32C of every record of
    /// the `kv` space (revision key and encoded `KeyValue`) and of every granted lease (id and
    /// TTL, big-endian), in order. etcd hashes its bbolt file's buckets, so the two servers'
    /// values differ; ferrokv's members agree with each other at the same applied index.
    /// Errors: `Storage`/`Corrupt` from the backend.
    pub fn hash(&self) -> Result<u32> {
        debug_assert!(self.deferred.is_none(), "hash while commits are collected");
        let mut digest = CASTAGNOLI.digest();
        for record in self.backend.scan() {
            let (rev, tombstone, kv) = record?;
            digest.update(&rev.to_key(tombstone));
            digest.update(&prost::Message::encode_to_vec(&kv));
        }
        for lease in self.backend.scan_leases() {
            let (id, ttl) = lease?;
            digest.update(&id.to_be_bytes());
            digest.update(&ttl.to_be_bytes());
        }
        Ok(digest.finalize())
    }

    /// From now until [`Kv::flush`], write transactions commit into one collected batch
    /// instead of one backend batch each (the `StoreActor` does this for every batch of
    /// committed entries: one fjall write per Raft `Ready`, not per entry). Reads, in and out
    /// of transactions, see collected commits at once. A no-op when already deferring.
    pub fn defer_commits(&mut self) {
        self.deferred.get_or_insert_with(Deferred::default);
    }

    /// Hands the commits collected since [`Kv::defer_commits`] to the backend as one atomic
    /// batch with the current state (`sync = false`, like every commit), and commits each
    /// transaction at once again. A no-op when nothing was collected. Errors:
    /// [`MvccError::Storage`], fatal for the member ([`Backend`] contract 6).
    pub fn flush(&mut self) -> Result<()> {
        match self.deferred.take() {
            Some(d) if d.committed => self.backend.commit(d.batch, &self.state, false),
            _ => Ok(()),
        }
    }

    /// The watch history of `(key, range_end)` (etcd's range rules): every retained change
    /// with main revision ≥ `from_rev`, as events in revision order (etcd
    /// `watchableStore.syncWatchers` reading the backend). A PUT carries the stored record; a
    /// DELETE the key and the delete's revision. With `with_prev_kv`, each event carries the
    /// key's version at the revision before (absent if the key did not exist or that
    /// revision was compacted). Errors: [`MvccError::Compacted`] if `from_rev` is below the
    /// compacted revision (etcd: `minRev < compactRev`).
    pub fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from_rev: i64,
        with_prev_kv: bool,
    ) -> Result<Vec<Event>> {
        if from_rev < self.state.compact_revision {
            return Err(MvccError::Compacted);
        }
        let mut changes: Vec<(Revision, bool, &[u8])> = Vec::new();
        for (k, ki) in self.index.histories(&KeyRange::new(key, range_end)) {
            changes.extend(ki.since(from_rev).into_iter().map(|(r, t)| (r, t, k)));
        }
        changes.sort_by_key(|(r, _, _)| *r);
        let mut events = Vec::with_capacity(changes.len());
        for (rev, tombstone, k) in changes {
            let kv = if tombstone {
                KeyValue {
                    key: k.to_vec(),
                    mod_revision: rev.main,
                    ..Default::default()
                }
            } else {
                self.record_at(rev, false)?.ok_or_else(|| {
                    MvccError::Corrupt(format!("index refers to missing record {rev}"))
                })?
            };
            let prev_kv = if with_prev_kv {
                let at = RangeOptions {
                    revision: rev.main - 1,
                    ..Default::default()
                };
                self.range_keys(k, b"", &at)
                    .ok()
                    .and_then(|mut r| r.kvs.pop())
            } else {
                None
            };
            let r#type = if tombstone {
                EventType::Delete
            } else {
                EventType::Put
            };
            events.push(Event {
                r#type: r#type as i32,
                kv: Some(kv),
                prev_kv,
            });
        }
        Ok(events)
    }

    /// Reads `(key, range_end)` (etcd's range rules, [`KeyRange::new`]) with `opts` against the
    /// committed state. Errors: [`MvccError::FutureRevision`] if `opts.revision` > current,
    /// [`MvccError::Compacted`] if it is below the compacted revision (etcd `rangeKeys`).
    pub fn range_keys(
        &self,
        key: &[u8],
        range_end: &[u8],
        opts: &RangeOptions,
    ) -> Result<RangeResult> {
        let view = ReadView {
            index: &self.index,
            backend: self.backend.as_ref(),
            deferred: self.deferred.as_ref(),
            pending: None,
            revision: self.state.current_revision,
            compact_revision: self.state.compact_revision,
        };
        view.range(key, range_end, opts)
    }

    /// Starts the write transaction of raft entry `raft_index`; `None` if that entry was already
    /// applied (`raft_index ≤ applied_index`), so a replay after restart is a no-op.
    ///
    /// All changes of the transaction share main revision `current_revision + 1` with sub
    /// revisions 0, 1, 2, ...; nothing is visible to other readers until
    /// [`WriteTxn::commit`]. Dropping the transaction without committing undoes it.
    pub fn write(&mut self, raft_index: u64) -> Option<WriteTxn<'_>> {
        if raft_index <= self.state.applied_index {
            return None;
        }
        let main = self.state.current_revision + 1;
        Some(WriteTxn {
            kv: self,
            raft_index,
            batch: WriteBatch::new(),
            main,
            pending: BTreeMap::new(),
            touched: BTreeSet::new(),
            events: Vec::new(),
            compact_to: None,
            lease_changes: Vec::new(),
            alarm_changes: Vec::new(),
        })
    }

    /// Records that raft entry `raft_index` was applied without touching the key space (a
    /// conf change, an empty leader entry, a request other layers own). Returns false if it was
    /// already applied.
    pub fn mark_applied(&mut self, raft_index: u64) -> Result<bool> {
        match self.write(raft_index) {
            None => Ok(false),
            Some(txn) => txn.commit().map(|_| true),
        }
    }
}

/// A consistent view for reads: the index, the backend, and the uncommitted records of a write
/// transaction, at a given store revision.
struct ReadView<'a> {
    index: &'a TreeIndex,
    backend: &'a dyn Backend,
    deferred: Option<&'a Deferred>,
    pending: Option<&'a BTreeMap<Revision, KeyValue>>,
    revision: i64,
    compact_revision: i64,
}

impl ReadView<'_> {
    fn range(&self, key: &[u8], range_end: &[u8], opts: &RangeOptions) -> Result<RangeResult> {
        // Order of checks as in etcd rangeKeys: future first, then 0 → current, then compacted.
        if opts.revision > self.revision {
            return Err(MvccError::FutureRevision);
        }
        let at_rev = if opts.revision <= 0 {
            self.revision
        } else {
            opts.revision
        };
        if at_rev < self.compact_revision {
            return Err(MvccError::Compacted);
        }
        let range = KeyRange::new(key, range_end);
        let limit = if opts.count_only { 1 } else { opts.limit };
        let (found, count) = self.index.range(&range, at_rev, limit);
        let mut kvs = Vec::new();
        if !opts.count_only {
            kvs.reserve(found.len());
            for (_, at) in found {
                kvs.push(self.fetch(at.mod_revision)?);
            }
        }
        Ok(RangeResult {
            kvs,
            count,
            revision: self.revision,
        })
    }

    /// The put record at `rev`, which the index says exists.
    fn fetch(&self, rev: Revision) -> Result<KeyValue> {
        if let Some(kv) = self.pending.and_then(|p| p.get(&rev)) {
            return Ok(kv.clone());
        }
        if let Some(kv) = self.deferred.and_then(|d| d.records.get(&(rev, false))) {
            return Ok(kv.clone());
        }
        self.backend
            .get(rev, false)?
            .ok_or_else(|| MvccError::Corrupt(format!("index refers to missing record {rev}")))
    }
}

/// The changes of one raft entry (etcd `storeTxnWrite`). Obtained from [`Kv::write`].
///
/// Reads through the transaction see its earlier writes. Changes update the in-memory index
/// immediately (so reads see them) and are undone if the transaction is dropped or its commit
/// fails; the backend sees them only at commit, in one atomic batch with the applied index.
pub struct WriteTxn<'a> {
    kv: &'a mut Kv,
    raft_index: u64,
    /// The backend writes of this transaction, committed with the new state.
    batch: WriteBatch,
    /// The main revision of every change of this transaction.
    main: i64,
    /// Records written by this transaction, not yet in the backend.
    pending: BTreeMap<Revision, KeyValue>,
    touched: BTreeSet<Vec<u8>>,
    events: Vec<Event>,
    compact_to: Option<i64>,
    /// Lease grants, revokes and key attachments, applied to `kv.leases` at commit.
    lease_changes: Vec<LeaseChange>,
    /// Alarms raised (`true`) or cleared, applied to `kv.alarms` at commit.
    alarm_changes: Vec<(bool, u64, i32)>,
}

impl WriteTxn<'_> {
    /// The revision reads inside the transaction run at, and the revision responses report:
    /// the new main revision once something changed, else the current one (etcd
    /// `storeTxnWrite.Range`/`Rev`).
    pub fn revision(&self) -> i64 {
        if self.events.is_empty() {
            self.main - 1
        } else {
            self.main
        }
    }

    /// True once the transaction changed a key (it will increment the store revision).
    pub fn has_changes(&self) -> bool {
        !self.events.is_empty()
    }

    /// The compacted revision (-1 = never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.kv.state.compact_revision
    }

    /// Reads like [`Kv::range_keys`], seeing this transaction's earlier writes.
    pub fn range_keys(
        &self,
        key: &[u8],
        range_end: &[u8],
        opts: &RangeOptions,
    ) -> Result<RangeResult> {
        self.view().range(key, range_end, opts)
    }

    fn view(&self) -> ReadView<'_> {
        ReadView {
            index: &self.kv.index,
            backend: self.kv.backend.as_ref(),
            deferred: self.kv.deferred.as_ref(),
            pending: Some(&self.pending),
            revision: self.revision(),
            compact_revision: self.kv.state.compact_revision,
        }
    }

    fn next_revision(&self) -> Revision {
        Revision::new(self.main, self.events.len() as i64)
    }

    /// The live version of `key` as this transaction currently sees it.
    fn current(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        match self.kv.index.get(key, self.main) {
            None => Ok(None),
            Some(at) => self.view().fetch(at.mod_revision).map(Some),
        }
    }

    /// Puts `value` under `key` attached to lease `lease` (0 = none) and returns the previous
    /// live version, if any (etcd `storeTxnWrite.put`). The new version has
    /// `mod_revision = main`, `version = previous + 1` (1 for a new key) and
    /// `create_revision` of its generation.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>, lease: i64) -> Result<Option<KeyValue>> {
        let prev = self.current(key)?;
        let rev = self.next_revision();
        let (create_revision, version) = self.kv.index.put(key, rev);
        self.touched.insert(key.to_vec());
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision,
            mod_revision: rev.main,
            version,
            value,
            lease,
        };
        self.batch.put(rev, false, kv.clone());
        self.pending.insert(rev, kv.clone());
        let prev_lease = prev.as_ref().map_or(0, |p| p.lease);
        if prev_lease != lease {
            if prev_lease != 0 {
                self.lease_changes.push(LeaseChange::Detach {
                    id: prev_lease,
                    key: key.to_vec(),
                });
            }
            if lease != 0 {
                self.lease_changes.push(LeaseChange::Attach {
                    id: lease,
                    key: key.to_vec(),
                });
            }
        }
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: prev.clone(),
        });
        Ok(prev)
    }

    /// Deletes every live key of `(key, range_end)` (etcd's range rules) and returns their
    /// previous versions in key order (etcd `storeTxnWrite.deleteRange`). Deleting nothing is
    /// not a change.
    pub fn delete_range(&mut self, key: &[u8], range_end: &[u8]) -> Result<Vec<KeyValue>> {
        let range = KeyRange::new(key, range_end);
        let (found, _) = self.kv.index.range(&range, self.main, 0);
        let mut deleted = Vec::with_capacity(found.len());
        for (key, at) in found {
            let prev = self.view().fetch(at.mod_revision)?;
            let rev = self.next_revision();
            self.kv
                .index
                .tombstone(&key, rev)
                .expect("range returned a live key");
            self.touched.insert(key.clone());
            let tombstone = KeyValue {
                key: key.clone(),
                ..Default::default()
            };
            self.batch.put(rev, true, tombstone);
            if prev.lease != 0 {
                self.lease_changes.push(LeaseChange::Detach {
                    id: prev.lease,
                    key: key.clone(),
                });
            }
            // Watch delete events carry the key and the delete's revision (etcd
            // watchableStoreTxnWrite.End).
            let kv = KeyValue {
                key,
                mod_revision: rev.main,
                ..Default::default()
            };
            self.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(kv),
                prev_kv: Some(prev.clone()),
            });
            deleted.push(prev);
        }
        Ok(deleted)
    }

    /// True if lease `id` is granted as this transaction sees it.
    pub fn lease_exists(&self, id: i64) -> bool {
        let mut exists = self.kv.leases.get(id).is_some();
        for change in &self.lease_changes {
            match change {
                LeaseChange::Grant { id: g, .. } if *g == id => exists = true,
                LeaseChange::Revoke { id: r } if *r == id => exists = false,
                _ => {}
            }
        }
        exists
    }

    /// Grants lease `id` with `ttl` seconds (etcd `lessor.Grant`, minus the clock, which the
    /// leader's `LeaseReaper` keeps). Changes no revision.
    /// Errors: [`MvccError::LeaseExists`] if `id` is granted.
    pub fn grant_lease(&mut self, id: i64, ttl: i64) -> Result<()> {
        if self.lease_exists(id) {
            return Err(MvccError::LeaseExists);
        }
        self.batch.put_lease(id, ttl);
        self.lease_changes.push(LeaseChange::Grant { id, ttl });
        Ok(())
    }

    /// The active alarms, as this transaction sees them, ordered.
    pub fn alarm_list(&self) -> Vec<(u64, i32)> {
        let mut all = self.kv.alarms.clone();
        for (raise, m, a) in &self.alarm_changes {
            if *raise {
                all.insert((*m, *a));
            } else {
                all.remove(&(*m, *a));
            }
        }
        all.into_iter().collect()
    }

    /// Whether an alarm of type `alarm` is active, whoever raised it. Checked for every applied
    /// request, so it allocates nothing unless this transaction changed alarms.
    pub fn alarm_type_active(&self, alarm: i32) -> bool {
        if self.alarm_changes.is_empty() {
            self.kv.alarms.iter().any(|(_, a)| *a == alarm)
        } else {
            self.alarm_list().iter().any(|(_, a)| *a == alarm)
        }
    }

    /// Whether alarm `alarm` of member `member` is active, as this transaction sees it.
    pub fn alarm_active(&self, member: u64, alarm: i32) -> bool {
        self.alarm_changes
            .iter()
            .rev()
            .find(|(_, m, a)| (*m, *a) == (member, alarm))
            .map_or(
                self.kv.alarms.contains(&(member, alarm)),
                |(raise, _, _)| *raise,
            )
    }

    /// Raises alarm `alarm` for member `member` (a no-op write when already active).
    pub fn raise_alarm(&mut self, member: u64, alarm: i32) {
        self.batch.put_alarm(member, alarm);
        self.alarm_changes.push((true, member, alarm));
    }

    /// Clears alarm `alarm` of member `member`; false when it was not active.
    pub fn clear_alarm(&mut self, member: u64, alarm: i32) -> bool {
        if !self.alarm_active(member, alarm) {
            return false;
        }
        self.batch.remove_alarm(member, alarm);
        self.alarm_changes.push((false, member, alarm));
        true
    }

    /// Revokes lease `id`: deletes every key attached to it, all in this transaction's one
    /// revision, and forgets the lease (etcd `lessor.Revoke`). Returns the deleted keys'
    /// previous versions in key order.
    /// Errors: [`MvccError::LeaseNotFound`] if `id` is not granted.
    pub fn revoke_lease(&mut self, id: i64) -> Result<Vec<KeyValue>> {
        if !self.lease_exists(id) {
            return Err(MvccError::LeaseNotFound);
        }
        let keys: Vec<Vec<u8>> = self
            .kv
            .leases
            .get(id)
            .map(|l| l.keys.iter().cloned().collect())
            .unwrap_or_default();
        let mut deleted = Vec::with_capacity(keys.len());
        for key in keys {
            deleted.extend(self.delete_range(&key, b"")?);
        }
        self.batch.remove_lease(id);
        self.lease_changes.push(LeaseChange::Revoke { id });
        Ok(deleted)
    }

    /// Schedules compaction at `rev`, performed at commit: every record that reads at
    /// revisions ≥ `rev` cannot observe is removed from the index and the backend (etcd
    /// `store.Compact`). Errors: [`MvccError::Compacted`] if `rev ≤ compact_revision`,
    /// [`MvccError::FutureRevision`] if `rev > current_revision`.
    pub fn compact(&mut self, rev: i64) -> Result<()> {
        if rev <= self.kv.state.compact_revision {
            return Err(MvccError::Compacted);
        }
        if rev > self.kv.state.current_revision {
            return Err(MvccError::FutureRevision);
        }
        self.compact_to = Some(rev);
        Ok(())
    }

    /// Commits: one atomic backend batch with the records, the compaction's removals and the
    /// new state (applied index = this entry, revision + 1 if anything changed). Returns the
    /// events in change order (each `prev_kv` set when the key existed before).
    ///
    /// On error the transaction is undone in memory; a [`MvccError::Storage`] error is fatal
    /// for the member (the backend's state is unknown, [`Backend`] contract 6).
    pub fn commit(mut self) -> Result<Vec<Event>> {
        let state = MetaState {
            applied_index: self.raft_index,
            current_revision: self.revision(),
            compact_revision: self.compact_to.unwrap_or(self.kv.state.compact_revision),
        };
        let mut batch = std::mem::take(&mut self.batch);
        let mut size = self.kv.size_bytes;
        for op in &batch.ops {
            match op {
                WriteOp::PutRecord { kv, tombstone, .. } => size += record_size(*tombstone, kv),
                WriteOp::PutLease { .. } => size += LEASE_RECORD_BYTES,
                WriteOp::RemoveLease { .. } => size = size.saturating_sub(LEASE_RECORD_BYTES),
                _ => {}
            }
        }
        // What a compaction removes, worked out once: for the byte count and for the batch.
        let removals: Vec<(Revision, bool)> = self
            .compact_to
            .map(|rev| {
                self.kv
                    .index
                    .compaction_removes(rev)
                    .into_iter()
                    .map(|(_, r, tombstone)| (r, tombstone))
                    .collect()
            })
            .unwrap_or_default();
        for &(r, tombstone) in &removals {
            if let Some(kv) = self.kv.record_at(r, tombstone)? {
                size = size.saturating_sub(record_size(tombstone, &kv));
            }
        }
        match (&mut self.kv.deferred, self.compact_to) {
            (Some(d), None) => {
                // Collected: every record this transaction stores stays readable until flush.
                for op in &batch.ops {
                    if let WriteOp::PutRecord {
                        rev,
                        tombstone: true,
                        kv,
                    } = op
                    {
                        d.records.insert((*rev, true), kv.clone());
                    }
                }
                d.records.extend(
                    std::mem::take(&mut self.pending)
                        .into_iter()
                        .map(|(rev, kv)| ((rev, false), kv)),
                );
                d.batch.ops.append(&mut batch.ops);
                d.committed = true;
            }
            (_, compact_to) => {
                if compact_to.is_some() {
                    // A compaction removes records: hand the collected ones over first, so
                    // the removals apply to them in order, then go on collecting.
                    let deferring = self.kv.deferred.is_some();
                    self.kv.flush()?;
                    if deferring {
                        self.kv.defer_commits();
                    }
                    for (r, tombstone) in removals {
                        batch.remove(r, tombstone);
                    }
                }
                self.kv.backend.commit(batch, &state, false)?;
            }
        }
        self.kv.state = state;
        self.kv.size_bytes = size;
        for change in std::mem::take(&mut self.lease_changes) {
            self.kv.leases.apply(change);
        }
        for (raise, member, alarm) in std::mem::take(&mut self.alarm_changes) {
            if raise {
                self.kv.alarms.insert((member, alarm));
            } else {
                self.kv.alarms.remove(&(member, alarm));
            }
        }
        if let Some(rev) = self.compact_to {
            self.kv.index.compact(rev);
            tracing::debug!(rev, "mvcc compacted");
        }
        self.touched.clear();
        Ok(std::mem::take(&mut self.events))
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        // Non-empty only when the transaction was not committed: undo its index changes.
        let main = self.main;
        let touched = std::mem::take(&mut self.touched);
        self.kv
            .index
            .rollback(touched.iter().map(Vec::as_slice), main);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mvcc::mem_backend::MemBackend;

    fn open() -> Kv {
        Kv::open(MemBackend::new()).unwrap()
    }

    fn get(kv: &Kv, key: &[u8], rev: i64) -> Option<KeyValue> {
        let opts = RangeOptions {
            revision: rev,
            ..Default::default()
        };
        kv.range_keys(key, b"", &opts).unwrap().kvs.pop()
    }

    #[test]
    fn empty_store_starts_at_revision_one() {
        let kv = open();
        assert_eq!(
            (
                kv.current_revision(),
                kv.compact_revision(),
                kv.applied_index()
            ),
            (1, -1, 0)
        );
    }

    #[test]
    fn put_delete_versions_and_events() {
        let mut kv = open();
        let mut txn = kv.write(1).unwrap();
        assert_eq!(txn.put(b"a", b"1".to_vec(), 0).unwrap(), None);
        let events = txn.commit().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(kv.current_revision(), 2);
        let mut txn = kv.write(2).unwrap();
        let prev = txn.put(b"a", b"2".to_vec(), 7).unwrap().unwrap();
        assert_eq!(prev.value, b"1");
        txn.commit().unwrap();
        let a = get(&kv, b"a", 0).unwrap();
        assert_eq!(
            (a.create_revision, a.mod_revision, a.version, a.lease),
            (2, 3, 2, 7)
        );
        let mut txn = kv.write(3).unwrap();
        assert_eq!(txn.delete_range(b"a", b"").unwrap().len(), 1);
        let events = txn.commit().unwrap();
        assert_eq!(events[0].r#type, EventType::Delete as i32);
        assert_eq!(events[0].kv.as_ref().unwrap().mod_revision, 4);
        assert_eq!(events[0].prev_kv.as_ref().unwrap().value, b"2");
        assert_eq!(get(&kv, b"a", 0), None);
        assert_eq!(get(&kv, b"a", 3).unwrap().value, b"2");
        let mut txn = kv.write(4).unwrap();
        txn.put(b"a", b"3".to_vec(), 0).unwrap();
        txn.commit().unwrap();
        let a = get(&kv, b"a", 0).unwrap();
        assert_eq!(
            (a.create_revision, a.version),
            (5, 1),
            "a delete starts a new generation"
        );
    }

    #[test]
    fn txn_shares_one_revision_and_reads_its_writes() {
        let mut kv = open();
        let mut txn = kv.write(1).unwrap();
        assert_eq!(txn.revision(), 1);
        txn.put(b"a", b"1".to_vec(), 0).unwrap();
        txn.put(b"b", b"1".to_vec(), 0).unwrap();
        assert_eq!(txn.revision(), 2);
        let seen = txn
            .range_keys(b"a", b"c", &RangeOptions::default())
            .unwrap();
        assert_eq!(seen.kvs.len(), 2);
        txn.delete_range(b"a", b"").unwrap();
        assert_eq!(
            txn.range_keys(b"a", b"c", &RangeOptions::default())
                .unwrap()
                .count,
            1
        );
        let events = txn.commit().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(kv.current_revision(), 2);
        assert_eq!(get(&kv, b"b", 0).unwrap().mod_revision, 2);
    }

    #[test]
    fn no_op_txn_keeps_revision_but_advances_applied_index() {
        let mut kv = open();
        let mut txn = kv.write(5).unwrap();
        assert!(txn.delete_range(b"a", b"\0").unwrap().is_empty());
        assert!(txn.commit().unwrap().is_empty());
        assert_eq!((kv.current_revision(), kv.applied_index()), (1, 5));
        assert!(
            kv.write(5).is_none(),
            "an applied index is never applied twice"
        );
        assert!(!kv.mark_applied(4).unwrap());
        assert!(kv.mark_applied(6).unwrap());
    }

    #[test]
    fn dropped_txn_is_undone() {
        let mut kv = open();
        let mut txn = kv.write(1).unwrap();
        txn.put(b"a", b"1".to_vec(), 0).unwrap();
        drop(txn);
        assert_eq!(get(&kv, b"a", 0), None);
        assert_eq!((kv.current_revision(), kv.applied_index()), (1, 0));
        let mut txn = kv.write(1).unwrap();
        txn.put(b"a", b"1".to_vec(), 0).unwrap();
        txn.commit().unwrap();
        assert_eq!(get(&kv, b"a", 0).unwrap().version, 1);
    }

    #[test]
    fn history_lists_changes_of_the_range_in_revision_order() {
        let mut kv = open();
        let mut index = 0;
        let mut write = |kv: &mut Kv, f: &dyn Fn(&mut WriteTxn<'_>)| {
            index += 1;
            let mut txn = kv.write(index).unwrap();
            f(&mut txn);
            txn.commit().unwrap();
        };
        write(&mut kv, &|t| drop(t.put(b"a", b"1".to_vec(), 0).unwrap())); // 2
        write(&mut kv, &|t| drop(t.put(b"b", b"1".to_vec(), 0).unwrap())); // 3
        write(&mut kv, &|t| drop(t.put(b"a", b"2".to_vec(), 0).unwrap())); // 4
        write(&mut kv, &|t| drop(t.delete_range(b"a", b"").unwrap())); // 5
        write(&mut kv, &|t| drop(t.put(b"c", b"1".to_vec(), 0).unwrap())); // 6
        let events = kv.history(b"a", b"c", 3, true).unwrap();
        let seen: Vec<_> = events
            .iter()
            .map(|e| {
                let kv = e.kv.as_ref().unwrap();
                (
                    e.r#type,
                    kv.key.clone(),
                    kv.mod_revision,
                    e.prev_kv.as_ref().map(|p| p.value.clone()),
                )
            })
            .collect();
        let (put, del) = (EventType::Put as i32, EventType::Delete as i32);
        assert_eq!(
            seen,
            vec![
                (put, b"b".to_vec(), 3, None),
                (put, b"a".to_vec(), 4, Some(b"1".to_vec())),
                (del, b"a".to_vec(), 5, Some(b"2".to_vec())),
            ]
        );
        assert!(
            kv.history(b"a", b"c", 3, false).unwrap()[1]
                .prev_kv
                .is_none()
        );
        write(&mut kv, &|t| t.compact(4).unwrap());
        assert!(matches!(
            kv.history(b"a", b"", 3, false),
            Err(MvccError::Compacted)
        ));
        assert_eq!(kv.history(b"a", b"", 4, false).unwrap().len(), 2);
    }

    #[test]
    fn read_revision_rules() {
        let mut kv = open();
        for i in 1..=4u64 {
            let mut txn = kv.write(i).unwrap();
            txn.put(b"a", vec![i as u8], 0).unwrap();
            txn.commit().unwrap();
        }
        let at = |kv: &Kv, revision| {
            kv.range_keys(
                b"a",
                b"",
                &RangeOptions {
                    revision,
                    ..Default::default()
                },
            )
        };
        assert!(matches!(at(&kv, 6), Err(MvccError::FutureRevision)));
        let mut txn = kv.write(5).unwrap();
        assert!(matches!(txn.compact(6), Err(MvccError::FutureRevision)));
        txn.compact(3).unwrap();
        txn.commit().unwrap();
        assert!(matches!(at(&kv, 2), Err(MvccError::Compacted)));
        assert_eq!(
            at(&kv, 3).unwrap().kvs[0].value,
            vec![2],
            "the compacted revision stays readable"
        );
        let result = at(&kv, 4).unwrap();
        assert_eq!(result.revision, 5, "header revision is the store revision");
        let mut txn = kv.write(6).unwrap();
        assert!(matches!(txn.compact(3), Err(MvccError::Compacted)));
    }

    #[test]
    fn deferred_commits_are_read_at_once_and_reach_the_backend_as_one_batch() {
        let disk = MemBackend::new();
        let mut kv = Kv::open(disk.reopen()).unwrap();
        kv.defer_commits();
        let mut txn = kv.write(1).unwrap();
        txn.put(b"a", b"1".to_vec(), 0).unwrap();
        txn.commit().unwrap();
        // The next entry of the same batch sees the first: previous version, history.
        let mut txn = kv.write(2).unwrap();
        let prev = txn.put(b"a", b"2".to_vec(), 0).unwrap().expect("a exists");
        assert_eq!((prev.value.as_slice(), prev.mod_revision), (&b"1"[..], 2));
        txn.commit().unwrap();
        let mut txn = kv.write(3).unwrap();
        txn.delete_range(b"a", b"").unwrap();
        txn.commit().unwrap();
        kv.mark_applied(4).unwrap();
        assert_eq!(get(&kv, b"a", 3).unwrap().value, b"2");
        let history = kv.history(b"a", b"", 0, true).unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[2].prev_kv.as_ref().unwrap().value, b"2");
        assert_eq!(
            kv.record_at(Revision::new(4, 0), true)
                .unwrap()
                .unwrap()
                .key,
            b"a"
        );
        assert_eq!(
            disk.committed_batches(),
            0,
            "nothing reaches the backend before flush"
        );

        kv.flush().unwrap();
        assert_eq!(disk.committed_batches(), 1, "four entries, one batch");
        kv.flush().unwrap();
        assert_eq!(
            disk.committed_batches(),
            1,
            "flushing nothing writes nothing"
        );
        let reopened = Kv::open(disk.reopen()).unwrap();
        assert_eq!(
            (reopened.applied_index(), reopened.current_revision()),
            (4, 4)
        );
        assert_eq!(reopened.history(b"a", b"", 0, false).unwrap().len(), 3);
    }

    #[test]
    fn compaction_inside_deferred_commits_removes_the_collected_records_too() {
        let disk = MemBackend::new();
        let mut kv = Kv::open(disk.reopen()).unwrap();
        kv.defer_commits();
        for (index, value) in [(1, "1"), (2, "2"), (3, "3")] {
            let mut txn = kv.write(index).unwrap();
            txn.put(b"k", value.as_bytes().to_vec(), 0).unwrap();
            txn.commit().unwrap();
        }
        let mut txn = kv.write(4).unwrap();
        txn.compact(3).unwrap();
        txn.commit().unwrap();
        let mut txn = kv.write(5).unwrap();
        txn.put(b"k", b"4".to_vec(), 0).unwrap();
        txn.commit().unwrap();
        kv.flush().unwrap();
        let reopened = Kv::open(disk.reopen()).unwrap();
        let revisions: Vec<i64> = reopened
            .history(b"k", b"", 3, false)
            .unwrap()
            .iter()
            .map(|e| e.kv.as_ref().unwrap().mod_revision)
            .collect();
        assert_eq!(
            revisions,
            [3, 4, 5],
            "the version at the compaction point is kept"
        );
        assert_eq!(
            reopened.record_at(Revision::new(2, 0), false).unwrap(),
            None,
            "the collected record below the compaction point is gone"
        );
        assert!(
            reopened
                .record_at(Revision::new(3, 0), false)
                .unwrap()
                .is_some(),
            "the collected record at the compaction point is kept"
        );
        assert_eq!(reopened.compact_revision(), 3);
        assert_eq!(reopened.applied_index(), 5);
    }

    #[test]
    fn size_bytes_follows_writes_and_compaction_and_survives_reopening() {
        let disk = MemBackend::new();
        let mut kv = Kv::open(disk.reopen()).unwrap();
        assert_eq!(kv.size_bytes(), 0);
        for (index, value) in [(1, "one"), (2, "two"), (3, "three")] {
            let mut txn = kv.write(index).unwrap();
            txn.put(b"k", value.as_bytes().to_vec(), 0).unwrap();
            txn.commit().unwrap();
        }
        let mut txn = kv.write(4).unwrap();
        txn.grant_lease(5, 60).unwrap();
        txn.commit().unwrap();
        let written = kv.size_bytes();
        assert!(written > 3 * 17, "{written}");
        assert_eq!(Kv::open(disk.reopen()).unwrap().size_bytes(), written);

        let mut txn = kv.write(5).unwrap();
        txn.compact(4).unwrap();
        txn.commit().unwrap();
        let compacted = kv.size_bytes();
        assert!(compacted < written, "{compacted} < {written}");
        assert_eq!(
            Kv::open(disk.reopen()).unwrap().size_bytes(),
            compacted,
            "the running count equals a fresh scan"
        );
    }
}
