//! Restart and corruption tests: the store reopened from its fjall directory is the store that
//! was closed, replays are no-ops, and damaged records are reported, never used.

use fjall::{Database, KeyspaceCreateOptions};

use super::apply::{Request, Response};
use super::backend::{KV_KEYSPACE, META_KEYSPACE};
use super::error::MvccError;
use super::fjall_backend::FjallBackend;
use super::kv::Kv;
use crate::pb::etcdserverpb::{CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest};

fn open(db: &Database) -> Result<Kv, MvccError> {
    Kv::open(FjallBackend::open(db)?)
}

fn put(key: &str, value: &str) -> Request {
    Request::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
}

/// `(key, create_revision, mod_revision, version)` of one visible key.
type Seen = (Vec<u8>, i64, i64, i64);

fn all_at(kv: &Kv, revision: i64) -> Result<Vec<Seen>, MvccError> {
    let req = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        revision,
        ..Default::default()
    };
    Ok(kv
        .range(&req)?
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.create_revision, kv.mod_revision, kv.version))
        .collect())
}

/// Applies a history with deletes and a compaction: revisions 2..=7, compacted at 4.
fn populate(kv: &mut Kv) {
    let requests = [
        put("a", "1"),
        put("b", "1"),
        put("a", "2"),
        Request::DeleteRange(DeleteRangeRequest {
            key: "b".into(),
            ..Default::default()
        }),
        put("b", "2"),
        Request::Compaction(CompactionRequest {
            revision: 4,
            physical: true,
        }),
        put("c", "1"),
    ];
    for (i, req) in requests.iter().enumerate() {
        kv.apply(i as u64 + 1, req).unwrap().unwrap();
    }
}

#[test]
fn restart_restores_index_revisions_and_applied_index() {
    let dir = tempfile::tempdir().unwrap();
    let (history, applied) = {
        let db = Database::builder(dir.path()).open().unwrap();
        let mut kv = open(&db).unwrap();
        populate(&mut kv);
        assert_eq!(
            (
                kv.current_revision(),
                kv.compact_revision(),
                kv.applied_index()
            ),
            (7, 4, 7)
        );
        let history: Vec<_> = (4..=7).map(|rev| all_at(&kv, rev).unwrap()).collect();
        (history, kv.applied_index())
    };
    let db = Database::builder(dir.path()).open().unwrap();
    let mut kv = open(&db).unwrap();
    assert_eq!(
        (
            kv.current_revision(),
            kv.compact_revision(),
            kv.applied_index()
        ),
        (7, 4, applied)
    );
    for (rev, want) in (4..=7).zip(&history) {
        assert_eq!(&all_at(&kv, rev).unwrap(), want, "revision {rev}");
    }
    assert!(matches!(all_at(&kv, 3), Err(MvccError::Compacted)));
    // Replaying entries the store already holds changes nothing.
    assert!(kv.apply(3, &put("a", "replayed")).unwrap().is_none());
    assert!(kv.apply(applied, &put("a", "replayed")).unwrap().is_none());
    assert_eq!(all_at(&kv, 0).unwrap(), history[3]);
    // The next entry continues the revision sequence and versions.
    let out = kv.apply(applied + 1, &put("a", "3")).unwrap().unwrap();
    let Response::Put(resp) = out.response else {
        panic!("put answers a PutResponse")
    };
    assert_eq!(resp.header.unwrap().revision, 8);
    let a = &all_at(&kv, 0).unwrap()[0];
    assert_eq!(a, &(b"a".to_vec(), 2, 8, 3));
}

#[test]
fn failed_request_consumes_its_entry_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::builder(dir.path()).open().unwrap();
        let mut kv = open(&db).unwrap();
        let missing = Request::Put(PutRequest {
            key: "x".into(),
            ignore_value: true,
            ..Default::default()
        });
        assert!(matches!(kv.apply(1, &missing), Err(MvccError::KeyNotFound)));
        assert_eq!((kv.applied_index(), kv.current_revision()), (1, 1));
    }
    let db = Database::builder(dir.path()).open().unwrap();
    let kv = open(&db).unwrap();
    assert_eq!((kv.applied_index(), kv.current_revision()), (1, 1));
}

/// Flips one bit in the value of the first (oldest) `kv` record.
fn corrupt_first_record(db: &Database) {
    let ks = db
        .keyspace(KV_KEYSPACE, KeyspaceCreateOptions::default)
        .unwrap();
    let (key, value) = ks.iter().next().unwrap().into_inner().unwrap();
    let mut bad = value.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    ks.insert(key, bad).unwrap();
}

#[test]
fn flipped_value_is_reported_on_read_and_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let mut kv = open(&db).unwrap();
    populate(&mut kv);
    // The first remaining record is b@3, kept by the compaction at 4 because a read at 4 sees it.
    corrupt_first_record(&db);
    assert!(
        all_at(&kv, 0).is_ok(),
        "the current revision does not read b@3"
    );
    let err = all_at(&kv, 4).unwrap_err();
    assert!(matches!(err, MvccError::Corrupt(_)), "read: {err:?}");
    assert!(err.is_fatal());
    drop(kv);
    let err = open(&db).unwrap_err();
    assert!(matches!(err, MvccError::Corrupt(_)), "open: {err:?}");
}

#[test]
fn damaged_meta_state_is_reported_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let mut kv = open(&db).unwrap();
    populate(&mut kv);
    drop(kv);
    let meta = db
        .keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)
        .unwrap();
    let (key, value) = meta.iter().next().unwrap().into_inner().unwrap();
    let mut bad = value.to_vec();
    bad[5] ^= 0x80;
    meta.insert(key, bad).unwrap();
    assert!(matches!(open(&db), Err(MvccError::Corrupt(_))));
}
