//! Leases on the simulated nodes: each running node owns a `ferrokv::lease::LeaseClock`,
//! driven the way the `LeaseReaper` actor drives it (`src/lease/actor.rs`):
//!
//! ```text
//!   start ─► LeaseClock::new(kv.leases().list(), extend = one election timeout)
//!   after every drive/observe ─► LeaseClock::observe_role(is_leader, term, now): the
//!                                reaper's own rule (promote on a new term, demote on losing it)
//!   apply LeaseGrant / LeaseRevoke (ok) ─► granted(id, ttl, now) / revoked(id)
//!   every 5 ticks (500 ms) ─► take_expired(now) ─► propose LeaseRevoke on that node
//! ```
//!
//! Virtual time in ms is `tick × 100` (one tick is the server's 100 ms heartbeat). The
//! simulator follows the role eagerly (after every event), where the reaper re-reads it only
//! before each action; promoting earlier gives earlier deadlines, so this is the stricter
//! case for the no-early-expiry check. A crash drops the node's clock; a restart builds a new
//! one from the store's lease table, as `server::run` does.

use ferrokv::lease::LeaseClock;
use ferrokv::lease::actor::MAX_REVOKES_PER_CHECK;
use ferrokv::lease::clock::RoleChange;
use ferrokv::pb::etcdserverpb::{LeaseRevokeRequest, RangeRequest};
use ferrokv::pb::mvccpb::KeyValue;
use ferrokv::pb::peerpb::{InternalRequest, internal_request};
use ferrokv::raft::Role;

use super::{Cluster, ELECTION_TICKS, LeaseApplied, Phase, Sabotage, storage_violation};
use crate::invariants::{Check, LeaseExpiry, Violation};

/// Virtual milliseconds per tick (the server's default heartbeat interval).
pub(super) const TICK_MS: u64 = 100;
/// The server's `lease_extend` (`src/server.rs`): one election timeout.
pub(super) const LEASE_EXTEND_MS: u64 = ELECTION_TICKS as u64 * TICK_MS;
/// The reaper's `REAP_INTERVAL` (500 ms), in ticks.
const REAP_TICKS: u64 = 5;

/// The lease side of one running node (one incarnation).
#[derive(Debug)]
pub(super) struct NodeLease {
    clock: LeaseClock,
    /// When this incarnation started, ms (`Sabotage::LeaseNoFreshTtl` promotes as of then).
    started_ms: u64,
}

impl NodeLease {
    pub(super) fn new(leases: Vec<(i64, i64)>, now_ms: u64) -> Self {
        NodeLease {
            clock: LeaseClock::new(leases, LEASE_EXTEND_MS),
            started_ms: now_ms,
        }
    }
}

impl Cluster {
    pub(super) fn now_ms(&self) -> u64 {
        self.now * TICK_MS
    }

    /// The lease clients' actions (safety phase) and, every 5 ticks, each leader's reaping.
    pub(super) fn lease_tick(&mut self, phase: Phase) -> Check {
        if phase == Phase::Safety {
            let rates = self.lease_clients.rates;
            if self.lease_clients.chance(rates.grant) {
                let request = self.lease_clients.grant();
                self.lease_propose(request)?;
            }
            if self.lease_clients.chance(rates.put) {
                let request = self.lease_clients.put();
                self.lease_propose(request)?;
            }
            if self.lease_clients.chance(rates.revoke) {
                let request = self.lease_clients.revoke();
                self.lease_propose(request)?;
            }
            if self.lease_clients.chance(rates.keep_alive) {
                self.lease_keep_alive();
            }
        }
        if self.now.is_multiple_of(REAP_TICKS) {
            for i in 0..self.nodes.len() {
                self.lease_reap(i)?;
            }
        }
        Ok(())
    }

    /// A lease client's request, proposed on a random running node like any client write.
    fn lease_propose(&mut self, request: internal_request::Request) -> Check {
        let up = self.running_nodes();
        let i = up[self.lease_clients.pick(0..up.len())];
        let request = self.workload.with_id(request);
        self.propose(i, request).map(|_| ())
    }

    /// Keep-alives of a random subset of the leases (one client session's stream), answered
    /// by the node the client believes leads: its
    /// last leader if that node still believes it leads (a deposed leader may), else any
    /// node that believes it leads (the server forwards a follower's keep-alive there).
    fn lease_keep_alive(&mut self) {
        let ids = self.lease_clients.some_ids();
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].running() && self.nodes[i].role == Role::Leader)
            .collect();
        let hinted = self
            .lease_clients
            .leader_hint
            .map(super::index_of)
            .filter(|i| leaders.contains(i));
        let i = match hinted {
            Some(i) => i,
            None if leaders.is_empty() => return,
            None => leaders[self.lease_clients.pick(0..leaders.len())],
        };
        let now_ms = self.now_ms();
        let term = |n: &super::Node| n.driver.as_ref().map_or(0, |d| d.raw().hard_state().term);
        let deposed = leaders
            .iter()
            .any(|&j| j != i && term(&self.nodes[j]) > term(&self.nodes[i]));
        let node = &mut self.nodes[i];
        self.lease_clients.leader_hint = Some(node.id);
        let applied = node.store.as_ref().expect("running").kv.applied_index();
        let Some(nl) = node.lease.as_mut() else {
            return;
        };
        for id in ids {
            let result = nl.clock.renew(id, now_ms);
            self.trace.line(format_args!(
                "t={} n{} lease {id} keep-alive {result:?}",
                self.now, node.id
            ));
            let Ok(ttl) = result else { continue };
            self.lease_clients.stats.renewed += 1;
            if deposed {
                self.lease_clients.stats.renewed_deposed += 1;
            }
            if self.lease_renewals_checked {
                self.invariants
                    .lease_expiry
                    .on_renewed(node.id, applied, id, ttl, now_ms);
            }
        }
    }

    /// Node `i`'s clock hands out its expired leases; each becomes a revoke proposal that no
    /// client waits for (the reaper's `reap`).
    fn lease_reap(&mut self, i: usize) -> Check {
        let now_ms = self.now_ms();
        let node = &mut self.nodes[i];
        let Some(nl) = node.lease.as_mut() else {
            return Ok(());
        };
        let expired = nl.clock.take_expired(now_ms, MAX_REVOKES_PER_CHECK);
        if expired.is_empty() {
            return Ok(());
        }
        let (id, applied) = (
            node.id,
            node.store.as_ref().expect("running").kv.applied_index(),
        );
        for lease in expired {
            self.trace.line(format_args!(
                "t={} n{id} lease {lease} expired; proposing revoke",
                self.now
            ));
            self.lease_clients.stats.expired += 1;
            self.invariants
                .lease_expiry
                .on_expired(id, applied, lease, now_ms)?;
            let request = InternalRequest {
                id: 0, // nobody waits for the answer
                request: Some(internal_request::Request::LeaseRevoke(LeaseRevokeRequest {
                    id: lease,
                })),
            };
            if !self.nodes[i].running() {
                break;
            }
            self.propose(i, request)?;
        }
        Ok(())
    }

    /// Follows node `i`'s role with the reaper's own rule ([`LeaseClock::observe_role`]).
    /// `Sabotage::LeaseNoFreshTtl` is a filter on its input: the clock is told the node's
    /// start time instead of now, so a promotion restarts no TTL.
    pub(super) fn lease_role(&mut self, i: usize, role: Role, term: u64) {
        let now_ms = self.now_ms();
        let sabotage = self.options.sabotage == Some(Sabotage::LeaseNoFreshTtl);
        let node = &mut self.nodes[i];
        let Some(nl) = node.lease.as_mut() else {
            return;
        };
        let now_ms = if sabotage { nl.started_ms } else { now_ms };
        match nl.clock.observe_role(role == Role::Leader, term, now_ms) {
            RoleChange::Promoted => self.trace.line(format_args!(
                "t={} n{} lease clock promoted term={term} leases={}",
                self.now,
                node.id,
                nl.clock.len()
            )),
            RoleChange::Demoted => self.trace.line(format_args!(
                "t={} n{} lease clock demoted",
                self.now, node.id
            )),
            RoleChange::Unchanged => {}
        }
    }

    /// Node `i` applied a lease change at `index` (the `StoreActor`'s `LeaseApplied`): the
    /// clock follows it, and the node's table and keys must agree with it.
    pub(super) fn lease_applied(&mut self, i: usize, index: u64, change: LeaseApplied) -> Check {
        let now_ms = self.now_ms();
        let node = &mut self.nodes[i];
        let id = node.id;
        let kv = &node.store.as_ref().expect("running").kv;
        if let Some(nl) = node.lease.as_mut() {
            match change {
                LeaseApplied::Granted { id, ttl_secs } => nl.clock.granted(id, ttl_secs, now_ms),
                LeaseApplied::Revoked { id, .. } => nl.clock.revoked(id),
            }
        }
        match change {
            LeaseApplied::Granted { id: lease, .. } => {
                if self.invariants.lease_expiry.on_granted(lease, index) {
                    self.lease_clients.stats.granted += 1;
                }
                LeaseExpiry::check_granted(id, lease, kv.leases())
            }
            LeaseApplied::Revoked {
                id: lease,
                keys_deleted: deleted,
            } => {
                if index > self.lease_revoked_max_index {
                    self.lease_revoked_max_index = index;
                    self.lease_clients.stats.revoked += 1;
                    self.lease_clients.stats.keys_deleted += deleted as u64;
                }
                let kvs = live_keys(kv).map_err(|e| storage_violation(id, &e))?;
                LeaseExpiry::check_revoked(id, lease, kv.leases(), &kvs)
            }
        }
    }

    /// Node `i`'s store was replaced by a leader's image (the `StoreActor` after
    /// `InstallImage`): the clock follows the table — leases the image lacks are gone, new
    /// ones are granted now. A lease is new unless the old table held the same id *with the
    /// same TTL*: an id revoked and granted again with another TTL under the image is a new
    /// grant (seed 340: the old TTL of 1 s survived a re-grant with 6 s, and a later leader
    /// expired the lease 5 s early). `Sabotage::ImageLeasesById` compares ids only, as the
    /// server's `StoreActor` did when this was found.
    pub(super) fn lease_restored(&mut self, i: usize, old: &[(i64, i64)], new: &[(i64, i64)]) {
        let now_ms = self.now_ms();
        let by_id = self.options.sabotage == Some(Sabotage::ImageLeasesById);
        let Some(nl) = self.nodes[i].lease.as_mut() else {
            return;
        };
        let same = |a: &(i64, i64), b: &(i64, i64)| a.0 == b.0 && (by_id || a.1 == b.1);
        for o in old {
            if !new.iter().any(|n| same(n, o)) {
                nl.clock.revoked(o.0);
            }
        }
        for n in new {
            if !old.iter().any(|o| same(o, n)) {
                nl.clock.granted(n.0, n.1, now_ms);
            }
        }
    }

    /// At the end: every node's lease table, `(id, TTL)`, after checking that every live key
    /// of the node carries a lease its table holds.
    pub(super) fn lease_tables(
        &self,
        key_spaces: &std::collections::BTreeMap<ferrokv::raft::NodeId, Vec<KeyValue>>,
    ) -> Result<std::collections::BTreeMap<ferrokv::raft::NodeId, Vec<(i64, i64)>>, Violation> {
        let mut tables = std::collections::BTreeMap::new();
        for node in &self.nodes {
            let kv = &node.store.as_ref().expect("converged: running").kv;
            LeaseExpiry::check_attached(node.id, kv.leases(), &key_spaces[&node.id])?;
            tables.insert(node.id, kv.leases().list());
        }
        Ok(tables)
    }
}

/// Every live key of `kv`.
pub(super) fn live_keys(kv: &ferrokv::mvcc::Kv) -> Result<Vec<KeyValue>, ferrokv::mvcc::MvccError> {
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    Ok(kv.range(&all)?.kvs)
}
