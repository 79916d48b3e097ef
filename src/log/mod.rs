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
//! ```
//! Every record carries a CRC-32 ([`crate::storage::seal`]); a mismatch at load is reported as
//! [`StorageError::Corrupt`] and the member refuses to start rather than use a damaged log.

pub mod actor;

use crate::raft::{ConfState, Entry, EntryKind, HardState};
use crate::storage::{StorageError, keyspaces, seal, unseal};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};

const HARD_STATE_KEY: &[u8] = b"hard_state";
const CONF_STATE_KEY: &[u8] = b"conf_state";
const IDENTITY_KEY: &[u8] = b"identity";

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

/// The on-disk form of a [`ConfState`], kept here so the Raft core needs no serde.
#[derive(Serialize, Deserialize)]
struct StoredConfState {
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
    /// Every stored entry, contiguous from index 1. Invariant: `entries[i].index == i + 1`.
    pub entries: Vec<Entry>,
    /// The identity written at bootstrap, `None` for an empty data dir.
    pub identity: Option<Identity>,
}

/// Synchronous writer and loader of the Raft log.
#[derive(Clone)]
pub struct LogStore {
    db: Database,
    log: Keyspace,
    state: Keyspace,
    /// Index of the last stored entry, so an append knows which conflicting suffix to delete.
    last_index: u64,
}

impl LogStore {
    /// Opens the log keyspaces of `db` (creating them if new).
    ///
    /// Errors: [`StorageError::Fjall`] on I/O failure.
    pub fn open(db: &Database) -> Result<Self, StorageError> {
        let log = db.keyspace(keyspaces::RAFT_LOG, KeyspaceCreateOptions::default)?;
        let state = db.keyspace(keyspaces::RAFT_STATE, KeyspaceCreateOptions::default)?;
        let last_index = match log.last_key_value() {
            Some(kv) => decode_index(&kv.key()?)?,
            None => 0,
        };
        Ok(Self {
            db: db.clone(),
            log,
            state,
            last_index,
        })
    }

    /// Reads everything back, verifying every checksum and that indexes are contiguous from 1.
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
        for item in self.log.iter() {
            let (key, value) = item.into_inner()?;
            let index = decode_index(&key)?;
            let expected = loaded.entries.len() as u64 + 1;
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
    pub fn persist(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
        sync: bool,
    ) -> Result<(), StorageError> {
        if hard_state.is_none() && entries.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
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

fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    let mut payload = Vec::with_capacity(24);
    for v in [hs.term, hs.vote, hs.commit] {
        payload.extend_from_slice(&v.to_be_bytes());
    }
    seal(&payload)
}

fn decode_hard_state(raw: &[u8]) -> Result<HardState, StorageError> {
    let bad = |reason: &str| corrupt(keyspaces::RAFT_STATE, "hard_state", reason.into());
    let payload = unseal(raw).ok_or_else(|| bad("checksum mismatch"))?;
    if payload.len() != 24 {
        return Err(bad("record is not 24 bytes"));
    }
    let word = |i: usize| u64::from_be_bytes(payload[i * 8..i * 8 + 8].try_into().expect("8"));
    Ok(HardState {
        term: word(0),
        vote: word(1),
        commit: word(2),
    })
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
            &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
            true,
        )
        .unwrap();
        // A new leader overwrites index 2 onward with a shorter suffix (Raft §5.3).
        log.persist(None, &[entry(2, 2, b"x")], true).unwrap();
        drop(log);
        drop(db);

        let db = crate::storage::open(dir.path()).unwrap();
        let loaded = LogStore::open(&db).unwrap().load().unwrap();
        assert_eq!(loaded.hard_state, hs);
        assert_eq!(loaded.entries, vec![entry(1, 1, b"a"), entry(2, 2, b"x")]);
        assert_eq!(loaded.identity, None);
    }

    #[test]
    fn a_corrupt_entry_is_reported_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let mut log = LogStore::open(&db).unwrap();
        log.persist(None, &[entry(1, 1, b"payload")], true).unwrap();
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
