//! [`FjallBackend`]: the MVCC [`Backend`] on fjall, the server's storage. The only file of the
//! MVCC store that names fjall.
//!
//! Three keyspaces inside the caller's `fjall::Database` — `kv`, `kv_meta`, `lease`, holding the
//! shared record format of [`super::backend`] byte for byte (existing data directories open
//! unchanged). The raft log lives in other keyspaces of the same database, so it shares fjall's
//! one journal: the `LogActor`'s fsync of the log also makes every earlier store batch durable
//! (`crate::storage`).
//!
//! A commit is one fjall write batch, atomic across keyspaces (contract points 1 and 2 of
//! [`Backend`]). `sync = false` commits with fjall's default `PersistMode::Buffer` (written to
//! the OS, durable at the journal's next fsync): the raft log is the durable record and the server
//! replays entries after `applied_index` (the rejected alternative, an fsync per entry, costs
//! ~0.5 ms each). `sync = true` adds `PersistMode::SyncData`, as the raft log's own fsync does.

use fjall::{Database, Keyspace, PersistMode};

use super::backend::{
    Backend, LeaseIter, MetaState, RecordIter, Space, WriteBatch, decode_kv, decode_lease,
    decode_record, decode_state,
};
use super::error::{MvccError, Result};
use super::revision::Revision;
use crate::pb::mvccpb::KeyValue;

/// Handles to the MVCC keyspaces of one fjall database. Cloning shares them.
#[derive(Clone)]
pub struct FjallBackend {
    db: Database,
    kv: Keyspace,
    meta: Keyspace,
    lease: Keyspace,
}

/// A fjall failure as the store's (fatal) storage error, its source kept.
fn storage(e: fjall::Error) -> MvccError {
    MvccError::Storage(Box::new(e))
}

impl FjallBackend {
    /// Opens (creating if absent) the `kv`, `kv_meta` and `lease` keyspaces of `db`.
    ///
    /// Errors: [`MvccError::Storage`] when fjall cannot open or create a keyspace.
    pub fn open(db: &Database) -> Result<Self> {
        let keyspace = |space: Space| {
            db.keyspace(space.name(), crate::storage::keyspace_options)
                .map_err(storage)
        };
        Ok(FjallBackend {
            db: db.clone(),
            kv: keyspace(Space::Kv)?,
            meta: keyspace(Space::Meta)?,
            lease: keyspace(Space::Lease)?,
        })
    }

    fn keyspace(&self, space: Space) -> &Keyspace {
        match space {
            Space::Kv => &self.kv,
            Space::Meta => &self.meta,
            Space::Lease => &self.lease,
        }
    }
}

impl Backend for FjallBackend {
    fn get(&self, rev: Revision, tombstone: bool) -> Result<Option<KeyValue>> {
        let key = rev.to_key(tombstone);
        match self.kv.get(&key).map_err(storage)? {
            None => Ok(None),
            Some(value) => decode_kv(&key, &value).map(Some),
        }
    }

    fn scan(&self) -> RecordIter<'_> {
        Box::new(self.kv.iter().map(|guard| {
            let (key, value) = guard.into_inner().map_err(storage)?;
            decode_record(&key, &value)
        }))
    }

    fn scan_leases(&self) -> LeaseIter<'_> {
        Box::new(self.lease.iter().map(|guard| {
            let (key, value) = guard.into_inner().map_err(storage)?;
            decode_lease(&key, &value)
        }))
    }

    fn scan_alarms(&self) -> super::backend::AlarmIter<'_> {
        Box::new(self.meta.prefix(super::backend::ALARM_PREFIX).map(|guard| {
            let (key, value) = guard.into_inner().map_err(storage)?;
            super::backend::decode_alarm(&key, &value)
        }))
    }

    fn load_state(&self) -> Result<Option<MetaState>> {
        match self.meta.get(super::backend::STATE_KEY).map_err(storage)? {
            None => Ok(None),
            Some(value) => decode_state(&value).map(Some),
        }
    }

    fn commit(&mut self, batch: WriteBatch, state: &MetaState, sync: bool) -> Result<()> {
        let mut out = self.db.batch();
        if sync {
            out = out.durability(Some(PersistMode::SyncData));
        }
        for write in batch.to_raw(state) {
            let keyspace = self.keyspace(write.space);
            match write.value {
                Some(value) => out.insert(keyspace, write.key, value),
                None => out.remove(keyspace, write.key),
            }
        }
        out.commit().map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        (dir, db)
    }

    #[test]
    fn round_trip() {
        let (_dir, db) = open();
        super::super::backend::tests::round_trip(&mut FjallBackend::open(&db).unwrap());
    }

    #[test]
    fn commits_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let state = MetaState {
            applied_index: 3,
            current_revision: 2,
            compact_revision: -1,
        };
        let kv = KeyValue {
            key: b"a".to_vec(),
            mod_revision: 2,
            ..Default::default()
        };
        {
            let db = Database::builder(dir.path()).open().unwrap();
            let mut backend = FjallBackend::open(&db).unwrap();
            let mut batch = WriteBatch::new();
            batch.put(Revision::new(2, 0), false, kv.clone());
            backend.commit(batch, &state, true).unwrap();
        }
        let db = Database::builder(dir.path()).open().unwrap();
        let backend = FjallBackend::open(&db).unwrap();
        assert_eq!(backend.load_state().unwrap(), Some(state));
        assert_eq!(backend.get(Revision::new(2, 0), false).unwrap(), Some(kv));
    }

    /// The on-disk format is the one written before the `Backend` trait existed: the
    /// record of a batch is exactly `frame(key, payload)` in the keyspace of that name.
    #[test]
    fn stores_the_shared_record_format_in_named_keyspaces() {
        use super::super::backend::{STATE_KEY, frame};
        use prost::Message as _;
        let (_dir, db) = open();
        let mut backend = FjallBackend::open(&db).unwrap();
        let kv = KeyValue {
            key: b"k".to_vec(),
            mod_revision: 2,
            ..Default::default()
        };
        let state = MetaState {
            applied_index: 1,
            current_revision: 2,
            compact_revision: -1,
        };
        let mut batch = WriteBatch::new();
        batch.put(Revision::new(2, 0), false, kv.clone());
        batch.put_lease(5, 9);
        backend.commit(batch, &state, false).unwrap();
        let ks = |name| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .unwrap()
        };
        let key = Revision::new(2, 0).to_key(false);
        assert_eq!(
            &*ks("kv").get(&key).unwrap().unwrap(),
            frame(&key, &kv.encode_to_vec()).as_slice()
        );
        // Golden bytes (crc32 IEEE of key ‖ payload, then the payload), computed outside Rust:
        // a change here breaks every existing data directory.
        let hex = |v: &[u8]| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(&ks("lease").get(5i64.to_be_bytes()).unwrap().unwrap()),
            "dff0b6be0000000000000009"
        );
        assert_eq!(
            hex(&ks("kv_meta").get(STATE_KEY).unwrap().unwrap()),
            "cd81d03d00000000000000010000000000000002ffffffffffffffff"
        );
    }
}
