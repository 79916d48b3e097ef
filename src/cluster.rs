//! Cluster membership as `Cluster.MemberList` reports it.
//!
//! Names and peer URLs come from `--initial-cluster`; each member publishes its client URLs
//! through the Raft log when it starts (a `MemberAttributes` entry), so every member learns
//! them in the same order. Members added, removed, promoted or updated at runtime
//! (`MemberAdd`/`Remove`/`Promote`/`Update`) change the table when their configuration-change
//! entry is applied ([`MemberChange`]), in log order on every member. The table is kept in the
//! `members` keyspace (with the ids of removed members, which may never come back: etcd's
//! `members_removed`), so a restarted member — or one that installed a leader's snapshot image,
//! which carries the keyspace — lists the same members.

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
    /// A learner: receives the log, does not vote (etcd `Member.isLearner`).
    #[serde(default)]
    pub is_learner: bool,
}

/// A change of the member table carried by a configuration-change entry (its `context`, as
/// JSON), applied by every member when it applies the entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    /// A new member (voter, or learner with `is_learner`), not started yet: no name, no
    /// client URLs until it publishes them.
    Add(Member),
    /// A member removed for good; its id is never reused.
    Remove(u64),
    /// A learner made a voter.
    Promote(u64),
    /// A member's new peer URLs.
    Update {
        /// The member.
        id: u64,
        /// Its peer URLs from now on.
        peer_urls: Vec<String>,
    },
}

/// The `context` of a configuration-change entry ferrokv proposes: the member-table change
/// and the id of the proposal waiting for it (0: none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeContext {
    /// The waiter's id (as an `InternalRequest.id`).
    pub request_id: u64,
    /// The change.
    pub change: MemberChange,
}

impl ChangeContext {
    /// The JSON bytes carried in `ConfChange.context`.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain data serializes")
    }

    /// Parses a context; `None` for an empty or foreign one (a leave-joint entry carries none).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The context of a configuration-change log entry; `None` for any other entry, an
    /// undecodable change, or a change without ferrokv's context.
    pub fn of_entry(entry: &crate::raft::Entry) -> Option<Self> {
        if entry.kind != crate::raft::EntryKind::ConfChange {
            return None;
        }
        let cc = crate::raft::ConfChange::decode(&entry.data).ok()?;
        Self::decode(&cc.context)
    }
}

/// The removed members' ids, shared with the peer transport so it can tell a removed member
/// that it is (etcd rafthttp answers such a peer "the member has been permanently removed").
pub type RemovedIds = std::sync::Arc<std::sync::RwLock<std::collections::BTreeSet<u64>>>;

/// What a member answers a removed member's Raft traffic with, and what makes the removed
/// member stop when it hears it (etcd's text).
pub const REMOVED_TEXT: &str = "the member has been permanently removed from the cluster";

/// Stops this process because it was removed from the cluster (etcd's message on stderr and in
/// the log); its data dir may never serve again.
pub fn exit_removed() -> ! {
    tracing::error!("{REMOVED_TEXT}; exiting (add a new member with a fresh data dir instead)");
    eprintln!("etcdserver: {REMOVED_TEXT}");
    std::process::exit(1);
}

/// Key prefix of the removed members' ids in the `members` keyspace (a member's own record is
/// under its 8-byte id).
const REMOVED_PREFIX: &[u8] = b"removed/";

/// The member table; see the module docs.
pub struct Members {
    members: BTreeMap<u64, Member>,
    /// The removed ids, shared (see [`RemovedIds`]).
    removed: RemovedIds,
    keyspace: Keyspace,
}

impl Members {
    /// Starts from the initial cluster (`initial`: id → peer URLs) and overlays what the
    /// keyspace holds: published attributes, members added or updated at runtime, removed
    /// ids. Errors: fjall I/O, or a corrupt record.
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
                    is_learner: false,
                };
                (*id, member)
            })
            .collect();
        let mut removed = std::collections::BTreeSet::new();
        for item in keyspace.iter() {
            let (key, value) = item.into_inner()?;
            let bad = |reason: &str| StorageError::Corrupt {
                keyspace: MEMBERS_KEYSPACE,
                key: format!("{key:?}"),
                reason: reason.into(),
            };
            if let Some(id) = key.strip_prefix(REMOVED_PREFIX) {
                let id = <[u8; 8]>::try_from(id).map_err(|_| bad("bad removed id"))?;
                removed.insert(u64::from_be_bytes(id));
                continue;
            }
            let payload = unseal(&value).ok_or_else(|| bad("checksum mismatch"))?;
            let stored: Member =
                serde_json::from_slice(payload).map_err(|_| bad("undecodable member"))?;
            members.insert(stored.id, stored);
        }
        for id in &removed {
            members.remove(id);
        }
        Ok(Self {
            members,
            removed: RemovedIds::new(std::sync::RwLock::new(removed)),
            keyspace,
        })
    }

    /// Reads the table again from `db` (after a store image replaced the keyspace), keeping
    /// the initial members it started from as the base. Errors: as [`Members::open`].
    pub fn reload(&mut self, db: &Database) -> Result<(), StorageError> {
        let initial = self
            .members
            .iter()
            .map(|(id, m)| (*id, m.peer_urls.clone()))
            .collect();
        // Those holding the shared set keep it: refill it rather than replace it.
        let shared = self.removed.clone();
        *self = Self::open(db, &initial)?;
        let reloaded = std::mem::take(&mut *self.removed.write().expect("not poisoned"));
        *shared.write().expect("not poisoned") = reloaded;
        self.removed = shared;
        Ok(())
    }

    /// The removed ids, shared and kept current (see [`RemovedIds`]).
    pub fn removed_view(&self) -> RemovedIds {
        self.removed.clone()
    }

    fn is_removed(&self, id: u64) -> bool {
        self.removed.read().expect("not poisoned").contains(&id)
    }

    fn store(&self, id: u64) -> Result<(), StorageError> {
        if let Some(m) = self.members.get(&id) {
            let json = serde_json::to_vec(m).expect("plain data serializes");
            self.keyspace.insert(id.to_be_bytes(), seal(&json))?;
        }
        Ok(())
    }

    /// Applies a change from the log (idempotent: a replay after a crash gives the same
    /// table). A change naming a removed or unknown member is ignored with a warning (the
    /// proposer checked it; a concurrent change may have overtaken it). Errors: fjall I/O.
    pub fn apply(&mut self, change: &MemberChange) -> Result<(), StorageError> {
        match change {
            MemberChange::Add(m) => {
                if self.is_removed(m.id) {
                    tracing::warn!(id = m.id, "add of a removed member ignored");
                    return Ok(());
                }
                self.members.insert(m.id, m.clone());
                self.store(m.id)
            }
            MemberChange::Remove(id) => {
                self.members.remove(id);
                self.removed.write().expect("not poisoned").insert(*id);
                let mut key = REMOVED_PREFIX.to_vec();
                key.extend_from_slice(&id.to_be_bytes());
                self.keyspace.insert(key, [])?;
                self.keyspace.remove(id.to_be_bytes())?;
                Ok(())
            }
            MemberChange::Promote(id) => {
                let Some(m) = self.members.get_mut(id) else {
                    tracing::warn!(id, "promote of an unknown member ignored");
                    return Ok(());
                };
                m.is_learner = false;
                self.store(*id)
            }
            MemberChange::Update { id, peer_urls } => {
                let Some(m) = self.members.get_mut(id) else {
                    tracing::warn!(id, "update of an unknown member ignored");
                    return Ok(());
                };
                m.peer_urls = peer_urls.clone();
                self.store(*id)
            }
        }
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
        self.store(id)
    }

    /// All members, ordered by id.
    pub fn list(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }
}
