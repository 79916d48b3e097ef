//! `ferrokv snapshot status` and `ferrokv snapshot restore`: reading an etcd-format snapshot
//! file — saved by `etcdctl snapshot save` from ferrokv or from real etcd 3.4/3.5 — and
//! building a ferrokv member's data dir from it (docs/snapshots.md §5, docs/operations.md).
//!
//! The file is a bbolt database ([`super::bbolt_reader`]) followed, when it came through
//! `Maintenance.Snapshot`, by the SHA-256 of the database (etcd 3.4
//! `clientv3/snapshot/v3_snapshot.go`: a file whose size is 32 more than a multiple of 512
//! carries one). What restore takes from it, as etcd's own restore does:
//!
//! - `key`: every MVCC record (revision key → `mvccpb.KeyValue`), kept with its revisions
//!   and versions; the store revision is the largest main revision there or the finished
//!   compaction's, whichever is larger (etcd `store.restore`).
//! - `meta`: `finishedCompactRev` (the compaction revision) and `scheduledCompactRev` (a
//!   compaction cut short, finished here).
//! - `lease`: every lease (id, granted TTL); keys stay attached through their records.
//! - `alarm`: the active alarms.
//!
//! Not taken: the old `members` (the new cluster's come from `--initial-cluster`, as in
//! etcd), `consistent_index`/`term`/`confState` (a restored member starts a new Raft log),
//! `cluster` (the version), and auth (ferrokv has no auth yet: a file with auth enabled is
//! restored without it, with a warning).

use super::bbolt_reader::{ReadDb, ReadError, read_db};
use super::etcd_file::LeaseRecord;
use crate::config::ServerConfig;
use crate::log::{Identity, LogStore};
use crate::mvcc::backend::{Backend, MetaState, WriteBatch};
use crate::mvcc::{FjallBackend, Kv, Revision};
use crate::pb::etcdserverpb::AlarmMember;
use crate::pb::mvccpb::KeyValue;
use crate::raft::{ConfState, HardState, SnapshotMeta};
use prost::Message;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bytes of the SHA-256 trailer `etcdctl snapshot save` appends.
const DIGEST_BYTES: usize = 32;
/// Records per backend batch while restoring (bounds the memory of one batch).
const BATCH_RECORDS: usize = 10_000;

/// Why a snapshot file cannot be read or restored. Texts that etcdctl also prints are
/// etcdctl's, word for word.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The snapshot file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No SHA-256 trailer and `--skip-hash-check` not given (etcdctl's text).
    #[error("snapshot missing hash but --skip-hash-check=false")]
    MissingHash,
    /// The trailer does not match the database (etcdctl's text: Go's `%v` of the two digests).
    #[error("expected sha256 {expected}, got {got}")]
    HashMismatch {
        /// The trailer, as Go prints a byte slice.
        expected: String,
        /// The database's digest, likewise.
        got: String,
    },
    /// The bbolt structure is damaged.
    #[error("snapshot file integrity check failed: {0}")]
    Bbolt(#[from] ReadError),
    /// A bucket record is not what etcd writes there.
    #[error("snapshot file: bucket {bucket:?}, key {key}: {reason}")]
    Record {
        /// The bucket.
        bucket: &'static str,
        /// The record's key, hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The flags do not describe a member of the initial cluster (the server's own checks).
    #[error("{0}")]
    Config(String),
    /// The target data dir exists (etcdctl's text).
    #[error("data-dir {0:?} exists")]
    DataDirExists(String),
    /// Writing the new data dir failed.
    #[error("writing the data dir: {0}")]
    Write(String),
}

fn go_bytes(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(" "))
}

/// Reads a snapshot file whole. Errors: [`RestoreError::Io`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, RestoreError> {
    std::fs::read(path).map_err(|source| RestoreError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The bbolt database inside `file`: without its SHA-256 trailer when it has one (size ≡ 32
/// mod 512, etcd's `hasChecksum`), checked against it unless `skip_hash_check`.
///
/// Errors: [`RestoreError::MissingHash`] (no trailer, no skip), [`RestoreError::HashMismatch`].
pub fn database(file: &[u8], skip_hash_check: bool) -> Result<&[u8], RestoreError> {
    let has_hash = file.len() % 512 == DIGEST_BYTES;
    if !has_hash {
        return if skip_hash_check {
            Ok(file)
        } else {
            Err(RestoreError::MissingHash)
        };
    }
    let (db, trailer) = file.split_at(file.len() - DIGEST_BYTES);
    if !skip_hash_check {
        let digest = Sha256::digest(db);
        if digest.as_slice() != trailer {
            return Err(RestoreError::HashMismatch {
                expected: go_bytes(trailer),
                got: go_bytes(&digest),
            });
        }
    }
    Ok(db)
}

/// What `snapshot status` reports (etcd's `snapshot.Status`, field names as its JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DbStatus {
    /// CRC-32C (Castagnoli) over every bucket name followed by its keys and values.
    pub hash: u32,
    /// The main revision of the last record in the `key` bucket.
    pub revision: i64,
    /// Pairs over all buckets.
    #[serde(rename = "totalKey")]
    pub total_key: u64,
    /// The database size bbolt reports (`Tx.Size`), bytes.
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// The status of a read database, computed as etcd 3.4's `v3Manager.Status` does.
pub fn status(db: &ReadDb<'_>) -> DbStatus {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut digest = crc.digest();
    let mut revision = 0;
    let mut total_key = 0;
    for bucket in &db.buckets {
        digest.update(bucket.name);
        for (k, v) in &bucket.entries {
            digest.update(k);
            digest.update(v);
            if bucket.name == b"key" && k.len() >= 8 {
                revision = i64::from_be_bytes(k[..8].try_into().expect("8 bytes"));
            }
            total_key += 1;
        }
    }
    DbStatus {
        hash: digest.finalize(),
        revision,
        total_key,
        total_size: db.size_bytes(),
    }
}

/// The state-machine content of an etcd snapshot, decoded and checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EtcdState {
    /// Every record of the `key` bucket: revision, tombstone, value, in revision order.
    pub records: Vec<(Revision, bool, KeyValue)>,
    /// (lease id, granted TTL seconds), in id order.
    pub leases: Vec<(i64, i64)>,
    /// (member id, alarm type).
    pub alarms: Vec<(u64, i32)>,
    /// The finished compaction's revision, -1 when none.
    pub compact_revision: i64,
    /// A scheduled compaction beyond the finished one, to finish on restore (0: none).
    pub scheduled_compaction: i64,
    /// The store revision (see the module docs).
    pub current_revision: i64,
    /// Whether the file has auth enabled (ferrokv restores no auth).
    pub auth_enabled: bool,
}

fn record_err(bucket: &'static str, key: &[u8], reason: impl Into<String>) -> RestoreError {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    RestoreError::Record {
        bucket,
        key: hex,
        reason: reason.into(),
    }
}

/// Decodes the buckets restore takes (see the module docs). Errors: [`RestoreError::Record`]
/// for a record etcd would not have written.
pub fn decode(db: &ReadDb<'_>) -> Result<EtcdState, RestoreError> {
    let mut state = EtcdState {
        compact_revision: -1,
        ..Default::default()
    };
    let mut max_main = 1;
    for (k, v) in db.bucket(b"key").unwrap_or_default() {
        let (rev, tombstone) =
            Revision::from_key(k).map_err(|e| record_err("key", k, e.to_string()))?;
        let kv = KeyValue::decode(*v).map_err(|e| record_err("key", k, e.to_string()))?;
        if !tombstone && kv.mod_revision != rev.main {
            return Err(record_err(
                "key",
                k,
                format!(
                    "mod_revision {} under revision {}",
                    kv.mod_revision, rev.main
                ),
            ));
        }
        max_main = max_main.max(rev.main);
        state.records.push((rev, tombstone, kv));
    }
    let meta = db.bucket(b"meta").unwrap_or_default();
    let compact_rev = |name: &[u8]| -> Result<Option<i64>, RestoreError> {
        let Some((k, v)) = meta.iter().find(|(k, _)| *k == name) else {
            return Ok(None);
        };
        let (rev, _) = Revision::from_key(v).map_err(|e| record_err("meta", k, e.to_string()))?;
        Ok(Some(rev.main))
    };
    if let Some(rev) = compact_rev(b"finishedCompactRev")? {
        state.compact_revision = rev;
    }
    if let Some(rev) = compact_rev(b"scheduledCompactRev")?
        && rev > state.compact_revision
    {
        state.scheduled_compaction = rev;
    }
    state.current_revision = max_main.max(state.compact_revision);
    for (k, v) in db.bucket(b"lease").unwrap_or_default() {
        let lease = LeaseRecord::decode(*v).map_err(|e| record_err("lease", k, e.to_string()))?;
        if k.len() != 8 || i64::from_be_bytes((*k).try_into().expect("8 bytes")) != lease.id {
            return Err(record_err(
                "lease",
                k,
                format!("holds lease {:x}", lease.id),
            ));
        }
        state.leases.push((lease.id, lease.ttl));
    }
    for (k, _) in db.bucket(b"alarm").unwrap_or_default() {
        let alarm = AlarmMember::decode(*k).map_err(|e| record_err("alarm", k, e.to_string()))?;
        state.alarms.push((alarm.member_id, alarm.alarm));
    }
    state.auth_enabled = db
        .bucket(b"auth")
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| *k == b"authEnabled" && v.first() == Some(&1));
    Ok(state)
}

/// What restore is asked to build: etcdutl's flags.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The snapshot file.
    pub snapshot: PathBuf,
    /// `--name`.
    pub name: String,
    /// `--data-dir` (default `<name>.etcd`, as etcdctl).
    pub data_dir: Option<PathBuf>,
    /// `--initial-cluster`.
    pub initial_cluster: String,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--initial-advertise-peer-urls`.
    pub initial_advertise_peer_urls: String,
    /// `--skip-hash-check`.
    pub skip_hash_check: bool,
}

/// What a restore built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreSummary {
    /// The data dir written.
    pub data_dir: PathBuf,
    /// The member's `--name`.
    pub name: String,
    /// The member's id.
    pub member_id: u64,
    /// The cluster id.
    pub cluster_id: u64,
    /// MVCC records restored.
    pub records: usize,
    /// Leases restored.
    pub leases: usize,
    /// The store revision of the new member.
    pub revision: i64,
    /// The compaction revision (-1: none).
    pub compact_revision: i64,
    /// The Raft index the member starts at (the number of members, as etcd's restore).
    pub index: u64,
    /// Whether the file had auth enabled (not restored).
    pub auth_dropped: bool,
}

/// Builds a member data dir from a snapshot file (etcdutl `snapshot restore`):
///
/// 1. checks the flags as the server would at bootstrap (`--name` in `--initial-cluster`,
///    its URLs equal to `--initial-advertise-peer-urls`), and that the data dir is absent;
/// 2. reads and checks the file: SHA-256 (unless skipped), bbolt structure, every record;
/// 3. writes the store into `<data-dir>.restoring` — records in batches, `progress(done,
///    total)` after each — with the Raft log starting at a snapshot point (index = number of
///    members, term 1, every initial member a voter) and the identity the flags derive;
/// 4. fsyncs and renames it to the data dir, so an interrupted restore leaves no data dir.
///
/// Every member restored from the same file with the same `--initial-cluster` and token
/// holds the same state at the same index: they start as one cluster. Errors:
/// [`RestoreError`]; on error no data dir is created.
pub fn restore(
    options: &RestoreOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<RestoreSummary, RestoreError> {
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", options.name)));
    let cfg = ServerConfig::try_parse_with(
        [
            "ferrokv".to_string(),
            format!("--name={}", options.name),
            format!("--data-dir={}", data_dir.display()),
            format!("--initial-cluster={}", options.initial_cluster),
            format!("--initial-cluster-token={}", options.initial_cluster_token),
            format!(
                "--initial-advertise-peer-urls={}",
                options.initial_advertise_peer_urls
            ),
        ],
        |_| None,
        &crate::config::SystemNetwork,
    )
    .map_err(|e| RestoreError::Config(e.to_string()))?;
    if data_dir.exists() {
        return Err(RestoreError::DataDirExists(data_dir.display().to_string()));
    }
    let file = read_file(&options.snapshot)?;
    let db = read_db(database(&file, options.skip_hash_check)?)?;
    let state = decode(&db)?;
    drop(db);

    let member_ids = cfg.initial_member_ids();
    let voters: Vec<u64> = member_ids.values().copied().collect();
    let index = voters.len() as u64;
    let summary = RestoreSummary {
        data_dir: data_dir.clone(),
        name: options.name.clone(),
        member_id: cfg.local_member_id(),
        cluster_id: cfg.initial_cluster_id(),
        records: state.records.len(),
        leases: state.leases.len(),
        revision: state.current_revision,
        compact_revision: if state.scheduled_compaction > 0 {
            state.scheduled_compaction
        } else {
            state.compact_revision
        },
        index,
        auth_dropped: state.auth_enabled,
    };
    let staging = PathBuf::from(format!("{}.restoring", data_dir.display()));
    if staging.exists() {
        // Left by an interrupted restore: never served, safe to replace.
        std::fs::remove_dir_all(&staging).map_err(|e| write_err(&staging, e))?;
    }
    let written = write_member(&staging, &state, &summary, voters, &mut progress)
        .and_then(|()| std::fs::rename(&staging, &data_dir).map_err(|e| write_err(&data_dir, e)));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The rename is durable once the parent directory is.
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(summary)
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> RestoreError {
    RestoreError::Write(format!("{}: {e}", path.display()))
}

/// Writes the store and the Raft log of a restored member into `dir`.
fn write_member(
    dir: &Path,
    state: &EtcdState,
    summary: &RestoreSummary,
    voters: Vec<u64>,
    progress: &mut impl FnMut(u64, u64),
) -> Result<(), RestoreError> {
    let err = |e: &dyn std::fmt::Display| write_err(dir, e);
    let db = crate::storage::open(dir).map_err(|e| err(&e))?;
    let mut backend = FjallBackend::open(&db).map_err(|e| err(&e))?;
    // The bulk is written at applied index 0; the last step below moves the store to the
    // start index, so a store cut short here never looks complete (and the staging dir is
    // discarded anyway).
    let bulk = MetaState {
        applied_index: 0,
        current_revision: state.current_revision,
        compact_revision: state.compact_revision,
    };
    let total = (state.records.len() + state.leases.len()) as u64;
    let mut done = 0u64;
    for chunk in state.records.chunks(BATCH_RECORDS) {
        let mut batch = WriteBatch::new();
        for (rev, tombstone, kv) in chunk {
            batch.put(*rev, *tombstone, kv.clone());
        }
        backend.commit(batch, &bulk, false).map_err(|e| err(&e))?;
        done += chunk.len() as u64;
        progress(done, total);
    }
    let mut batch = WriteBatch::new();
    for (id, ttl) in &state.leases {
        batch.put_lease(*id, *ttl);
    }
    for (member, alarm) in &state.alarms {
        batch.put_alarm(*member, *alarm);
    }
    backend.commit(batch, &bulk, true).map_err(|e| err(&e))?;
    progress(total, total);

    // Reopen through the store itself: every record is checked again as a member's start
    // would, and a compaction the file had scheduled but not finished is finished.
    let mut kv = Kv::open(backend).map_err(|e| err(&e))?;
    let Some(mut txn) = kv.write(summary.index) else {
        return Err(err(&"the new store already has an applied index"));
    };
    if state.scheduled_compaction > 0 {
        txn.compact(state.scheduled_compaction)
            .map_err(|e| err(&e))?;
    }
    txn.commit().map_err(|e| err(&e))?;
    kv.flush().map_err(|e| err(&e))?;

    let mut log = LogStore::open(&db).map_err(|e| err(&e))?;
    let point = SnapshotMeta {
        index: summary.index,
        term: 1,
        conf_state: ConfState {
            voters: voters.into_iter().collect(),
            ..Default::default()
        },
    };
    let hard_state = HardState {
        term: 1,
        vote: 0,
        commit: summary.index,
    };
    log.persist(Some(&hard_state), Some(&point), &[], true)
        .map_err(|e| err(&e))?;
    log.save_identity(&Identity {
        cluster_id: summary.cluster_id,
        member_id: summary.member_id,
        name: summary.name.clone(),
    })
    .map_err(|e| err(&e))?;
    db.persist(fjall::PersistMode::SyncAll)
        .map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::bbolt::{Bucket, write_db};
    use super::*;
    use crate::log::LogStore;

    const LEASE: i64 = 0x1234;

    fn record(key: &str, value: &str, create: i64, rev: i64, version: i64, lease: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: create,
            mod_revision: rev,
            version,
            lease,
        }
    }

    /// An etcd-like file: a=1 @2, b=2 (leased) @3, a=3 @4, del a @5, c=4 @6; compaction
    /// finished at 3 and scheduled at 5 (cut short); one lease; one NOSPACE alarm.
    fn etcd_file() -> Vec<u8> {
        let mut key = Bucket::new(b"key");
        let put = |key: &mut Bucket, rev: i64, v: KeyValue| {
            key.push(Revision::new(rev, 0).to_key(false), v.encode_to_vec());
        };
        put(&mut key, 2, record("a", "1", 2, 2, 1, 0));
        put(&mut key, 3, record("b", "2", 3, 3, 1, LEASE));
        put(&mut key, 4, record("a", "3", 2, 4, 2, 0));
        key.push(
            Revision::new(5, 0).to_key(true),
            KeyValue {
                key: b"a".to_vec(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        put(&mut key, 6, record("c", "4", 6, 6, 1, 0));
        let mut meta = Bucket::new(b"meta");
        meta.push("consistent_index", 99u64.to_be_bytes());
        meta.push("finishedCompactRev", Revision::new(3, 0).to_key(false));
        meta.push("scheduledCompactRev", Revision::new(5, 0).to_key(false));
        let mut lease = Bucket::new(b"lease");
        let record = LeaseRecord {
            id: LEASE,
            ttl: 100,
            remaining_ttl: 0,
        };
        lease.push(LEASE.to_be_bytes().to_vec(), record.encode_to_vec());
        let mut alarm = Bucket::new(b"alarm");
        alarm.push(
            AlarmMember {
                member_id: 7,
                alarm: 1,
            }
            .encode_to_vec(),
            Vec::new(),
        );
        let mut members = Bucket::new(b"members");
        members.push("8e9e05c52164694d", "{\"id\":1}");
        let db = write_db(&[key, meta, lease, alarm, members]).unwrap();
        let mut file = db.clone();
        file.extend_from_slice(&Sha256::digest(&db));
        file
    }

    fn options(dir: &Path, file: &Path) -> RestoreOptions {
        RestoreOptions {
            snapshot: file.to_owned(),
            name: "n2".into(),
            data_dir: Some(dir.join("n2.etcd")),
            initial_cluster: "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2381,\
                              n3=http://127.0.0.1:2382"
                .into(),
            initial_cluster_token: "tok".into(),
            initial_advertise_peer_urls: "http://127.0.0.1:2381".into(),
            skip_hash_check: false,
        }
    }

    #[test]
    fn a_restored_data_dir_holds_the_files_state_at_a_fresh_raft_log() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap.db");
        std::fs::write(&file, etcd_file()).unwrap();
        let mut calls = 0;
        let summary = restore(&options(dir.path(), &file), |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert!(calls >= 2);
        assert_eq!(
            (
                summary.records,
                summary.leases,
                summary.revision,
                summary.index
            ),
            (5, 1, 6, 3)
        );
        assert_eq!(summary.compact_revision, 5);
        assert!(!dir.path().join("n2.etcd.restoring").exists());

        let db = crate::storage::open(&summary.data_dir).unwrap();
        let kv = Kv::open(FjallBackend::open(&db).unwrap()).unwrap();
        assert_eq!(kv.applied_index(), 3);
        assert_eq!(kv.current_revision(), 6);
        // The scheduled compaction was finished: `a`'s history (deleted at 5) is gone.
        assert_eq!(kv.compact_revision(), 5);
        assert_eq!(kv.record_at(Revision::new(2, 0), false).unwrap(), None);
        assert_eq!(
            kv.record_at(Revision::new(3, 0), false).unwrap(),
            Some(record("b", "2", 3, 3, 1, LEASE))
        );
        assert_eq!(kv.leases().list(), vec![(LEASE, 100)]);
        assert!(
            kv.leases()
                .get(LEASE)
                .unwrap()
                .keys
                .contains(b"b".as_slice())
        );
        assert!(kv.alarms().contains(&(7, 1)));

        let loaded = LogStore::open(&db).unwrap().load().unwrap();
        let identity = loaded.identity.unwrap();
        assert_eq!(identity.member_id, summary.member_id);
        assert_eq!(identity.name, "n2");
        assert_eq!(loaded.compacted, (3, 1));
        assert_eq!(loaded.hard_state.commit, 3);
        assert_eq!(loaded.conf_state.unwrap().voters.len(), 3);
        assert!(loaded.entries.is_empty());
    }

    #[test]
    fn hash_rules_are_etcdctls() {
        let file = etcd_file();
        let db_len = file.len() - DIGEST_BYTES;
        assert_eq!(database(&file, false).unwrap().len(), db_len);
        let mut flipped = file.clone();
        flipped[100] ^= 1;
        let err = database(&flipped, false).unwrap_err().to_string();
        assert!(err.starts_with("expected sha256 ["), "{err}");
        assert_eq!(database(&flipped, true).unwrap().len(), db_len);
        let copied = &file[..db_len];
        assert_eq!(
            database(copied, false).unwrap_err().to_string(),
            "snapshot missing hash but --skip-hash-check=false"
        );
        assert_eq!(database(copied, true).unwrap().len(), db_len);
    }

    #[test]
    fn a_failed_restore_leaves_no_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap.db");
        let mut bytes = etcd_file();
        bytes.truncate(bytes.len() - 100);
        std::fs::write(&file, &bytes).unwrap();
        let mut opts = options(dir.path(), &file);
        opts.skip_hash_check = true;
        let err = restore(&opts, |_, _| {}).unwrap_err();
        assert!(matches!(err, RestoreError::Bbolt(_)), "{err}");
        assert!(!dir.path().join("n2.etcd").exists());
        assert!(!dir.path().join("n2.etcd.restoring").exists());

        // Flags naming no member of the initial cluster are refused before anything is read.
        let mut opts = options(dir.path(), &file);
        opts.name = "n9".into();
        assert!(matches!(
            restore(&opts, |_, _| {}),
            Err(RestoreError::Config(_))
        ));
    }
}
