//! The durable half of leases: which leases exist (id → granted TTL) and which keys each one
//! holds. It lives in the MVCC store because both change in log order with the keys: a put with
//! a lease must find the lease (etcd `ErrLeaseNotFound`), and a revoke deletes every attached
//! key in one revision. The other half — *when* a lease expires — is a clock only the leader
//! keeps (`crate::lease`), and never touches this table except by proposing a revoke.
//!
//! Persistence: the `lease` keyspace ([`super::backend`]) holds `id → ttl`; attachments are not
//! stored but rebuilt at open from each live key's `KeyValue.lease` (etcd does the same when it
//! recovers its lessor from the backend).

use std::collections::{BTreeMap, BTreeSet};

/// etcd `MaxLeaseTTL`: the largest TTL a grant may ask for, seconds (9,000,000,000).
pub const MAX_LEASE_TTL_SECS: i64 = 9_000_000_000;

/// One granted lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseEntry {
    /// Granted TTL, seconds (already raised to the minimum TTL by the proposer).
    pub ttl: i64,
    /// Live keys whose latest version carries this lease.
    pub keys: BTreeSet<Vec<u8>>,
}

/// A change to the lease table made by a write transaction, applied at commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum LeaseChange {
    Grant { id: i64, ttl: i64 },
    Revoke { id: i64 },
    Attach { id: i64, key: Vec<u8> },
    Detach { id: i64, key: Vec<u8> },
}

/// The lease table: every granted lease and its keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseTable {
    leases: BTreeMap<i64, LeaseEntry>,
}

impl LeaseTable {
    /// The lease `id`, if granted and not yet revoked.
    pub fn get(&self, id: i64) -> Option<&LeaseEntry> {
        self.leases.get(&id)
    }

    /// Every lease as `(id, ttl seconds)`, in id order.
    pub fn list(&self) -> Vec<(i64, i64)> {
        self.leases.iter().map(|(id, l)| (*id, l.ttl)).collect()
    }

    /// Number of granted leases.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// True when no lease is granted.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    pub(super) fn apply(&mut self, change: LeaseChange) {
        match change {
            LeaseChange::Grant { id, ttl } => {
                self.leases.insert(
                    id,
                    LeaseEntry {
                        ttl,
                        keys: BTreeSet::new(),
                    },
                );
            }
            LeaseChange::Revoke { id } => {
                self.leases.remove(&id);
            }
            LeaseChange::Attach { id, key } => {
                if let Some(l) = self.leases.get_mut(&id) {
                    l.keys.insert(key);
                }
            }
            LeaseChange::Detach { id, key } => {
                if let Some(l) = self.leases.get_mut(&id) {
                    l.keys.remove(&key);
                }
            }
        }
    }
}
