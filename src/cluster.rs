//! Cluster membership as `Cluster.MemberList` reports it.
//!
//! Names and peer URLs come from `--initial-cluster`; each member publishes its client URLs
//! through the Raft log when it starts (a `MemberAttributes` entry), so every member learns
//! them in the same order. Published attributes are kept in the `members` keyspace so a
//! restarted member lists them before its peers publish again.

use crate::storage::{StorageError, seal, unseal};
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Keyspace of published member attributes: key = member id (u64 BE), value = seal(JSON).
pub const MEMBERS_KEYSPACE: &str = "members";

/// One member as `MemberList` shows it (etcd's `Member` message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Member id (ferrokv's derivation from peer URLs and cluster token; see `config`).
    pub id: u64,
    /// `--name`; empty until the member has published it (etcd shows unstarted members so).
    pub name: String,
    /// URLs peers reach it on.
    pub peer_urls: Vec<String>,
    /// URLs clients reach it on; empty until published.
    pub client_urls: Vec<String>,
}

/// The member table; see the module docs.
pub struct Members {
    members: BTreeMap<u64, Member>,
    keyspace: Keyspace,
}

impl Members {
    /// Starts from the initial cluster (`initial`: id → peer URLs) and overlays attributes
    /// persisted earlier. Errors: fjall I/O, or a corrupt record.
    pub fn open(db: &Database, initial: &BTreeMap<u64, Vec<String>>) -> Result<Self, StorageError> {
        let keyspace = db.keyspace(MEMBERS_KEYSPACE, KeyspaceCreateOptions::default)?;
        let mut members: BTreeMap<u64, Member> = initial
            .iter()
            .map(|(id, urls)| {
                let member = Member {
                    id: *id,
                    name: String::new(),
                    peer_urls: urls.clone(),
                    client_urls: Vec::new(),
                };
                (*id, member)
            })
            .collect();
        for item in keyspace.iter() {
            let (key, value) = item.into_inner()?;
            let bad = |reason: &str| StorageError::Corrupt {
                keyspace: MEMBERS_KEYSPACE,
                key: format!("{key:?}"),
                reason: reason.into(),
            };
            let payload = unseal(&value).ok_or_else(|| bad("checksum mismatch"))?;
            let stored: Member =
                serde_json::from_slice(payload).map_err(|_| bad("undecodable member"))?;
            if let Some(m) = members.get_mut(&stored.id) {
                m.name = stored.name;
                m.client_urls = stored.client_urls;
            }
        }
        Ok(Self { members, keyspace })
    }

    /// Reads the published attributes again from `db` (after a store image replaced them),
    /// keeping the members and their peer URLs. Errors: as [`Members::open`].
    pub fn reload(&mut self, db: &Database) -> Result<(), StorageError> {
        let initial = self
            .members
            .iter()
            .map(|(id, m)| (*id, m.peer_urls.clone()))
            .collect();
        *self = Self::open(db, &initial)?;
        Ok(())
    }

    /// Records a member's published name and client URLs (applied from the log in order).
    /// Attributes of an unknown member are ignored. Errors: fjall I/O.
    pub fn publish(
        &mut self,
        id: u64,
        name: String,
        client_urls: Vec<String>,
    ) -> Result<(), StorageError> {
        let Some(m) = self.members.get_mut(&id) else {
            tracing::warn!(id, "attributes of an unknown member ignored");
            return Ok(());
        };
        m.name = name;
        m.client_urls = client_urls;
        let json = serde_json::to_vec(m).expect("plain data serializes");
        self.keyspace.insert(id.to_be_bytes(), seal(&json))?;
        Ok(())
    }

    /// All members, ordered by id.
    pub fn list(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }
}
