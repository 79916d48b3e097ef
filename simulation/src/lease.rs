//! Simulated lease clients: they grant leases (ids `1..=LEASE_IDS`, TTL 1..=6 s) on random
//! nodes, put keys with a random lease (which fails with "lease not found" when that id is not
//! granted — fine, the model knows), revoke leases, and send keep-alives to the node they
//! believe leads — the server forwards a follower's keep-alive to the leader, so the simulator
//! calls `LeaseClock::renew` on a node that *believes* it is leader, possibly a deposed one.
//!
//! Every renewal the clock acknowledged is recorded with its time; what expiry must respect is
//! checked by [`crate::invariants::LeaseExpiry`]. The node side (a `LeaseClock` per node,
//! driven like the `LeaseReaper`) lives in the cluster driver.

use ferrokv::pb::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, PutRequest};
use ferrokv::pb::peerpb::internal_request::Request;
use ferrokv::raft::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::workload::{KEY_COUNT, key};

/// Lease ids the clients use (few, so grants collide and ids are reused after a revoke).
pub const LEASE_IDS: i64 = 8;
/// Longest TTL a client asks for, seconds.
pub const TTL_MAX_SECS: i64 = 6;

/// Per-tick chances of each client action, per mille (drawn per seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRates {
    /// Grant a random id.
    pub grant: u32,
    /// Put a random key with a random lease.
    pub put: u32,
    /// Revoke a random id.
    pub revoke: u32,
    /// Keep-alives of a random subset of the ids.
    pub keep_alive: u32,
}

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseStats {
    /// Grants that took effect (first apply of a successful LeaseGrant entry).
    pub granted: u64,
    /// Keep-alives a leader's clock acknowledged.
    pub renewed: u64,
    /// Of those, acknowledged by a deposed leader (a newer term's leader was already up).
    pub renewed_deposed: u64,
    /// Leases a leader's clock handed out as expired (each becomes a revoke proposal).
    pub expired: u64,
    /// Revokes that took effect (clients' and expiries'), first apply.
    pub revoked: u64,
    /// Keys those revokes deleted.
    pub keys_deleted: u64,
}

/// The lease clients of one run.
#[derive(Debug)]
pub struct LeaseClients {
    rng: ChaCha8Rng,
    /// This run's rates.
    pub rates: LeaseRates,
    /// The node the keep-alive client last reached as leader.
    pub leader_hint: Option<NodeId>,
    /// What happened so far.
    pub stats: LeaseStats,
    puts: u64,
}

impl LeaseClients {
    /// Clients drawing from `rng`.
    pub fn new(mut rng: ChaCha8Rng) -> Self {
        let rates = LeaseRates {
            grant: rng.random_range(10..=60),
            put: rng.random_range(20..=100),
            revoke: rng.random_range(0..=15),
            keep_alive: rng.random_range(10..=150),
        };
        LeaseClients {
            rng,
            rates,
            leader_hint: None,
            stats: LeaseStats::default(),
            puts: 0,
        }
    }

    /// True with `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.random_range(0..1000) < per_mille
    }

    /// A uniform pick in `range`.
    pub fn pick(&mut self, range: std::ops::Range<usize>) -> usize {
        self.rng.random_range(range)
    }

    /// A random lease id.
    pub fn id(&mut self) -> i64 {
        self.rng.random_range(1..=LEASE_IDS)
    }

    /// Each lease id with probability 1/2, in id order.
    pub fn some_ids(&mut self) -> Vec<i64> {
        (1..=LEASE_IDS)
            .filter(|_| self.rng.random_bool(0.5))
            .collect()
    }

    /// A grant of a random id with a random TTL.
    pub fn grant(&mut self) -> Request {
        Request::LeaseGrant(LeaseGrantRequest {
            ttl: self.rng.random_range(1..=TTL_MAX_SECS),
            id: self.id(),
        })
    }

    /// A revoke of a random id.
    pub fn revoke(&mut self) -> Request {
        Request::LeaseRevoke(LeaseRevokeRequest { id: self.id() })
    }

    /// A put of a random key with a random lease; values are unique (`l<n>`).
    pub fn put(&mut self) -> Request {
        self.puts += 1;
        Request::Put(PutRequest {
            key: key(self.rng.random_range(0..KEY_COUNT)),
            value: format!("l{}", self.puts).into_bytes(),
            lease: self.id(),
            ..Default::default()
        })
    }
}
