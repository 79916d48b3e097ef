//! `LeaseReaper`: the actor that keeps lease deadlines on the leader and revokes expired
//! leases through Raft. A thin shell around [`LeaseClock`]: it feeds the clock the wall
//! clock (`Instant`), the leader role from the `RaftActor`'s published status, and the grants
//! and revokes the `StoreActor` applied; it turns expired leases into `LeaseRevoke` proposals.
//!
//! Why expiry is decided only by the leader, and why a new leader restarts every lease's TTL:
//! see docs/lease.md.

use super::clock::{ClockError, LeaseClock, RoleChange};
use crate::bus::Propose;
use crate::mvcc::LeaseApplied;
use crate::node::RaftStatus;
use crate::pb::etcdserverpb::LeaseRevokeRequest;
use crate::pb::peerpb::{InternalRequest, internal_request};
use actix::prelude::*;
use prost::Message as _;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the reaper looks for expired leases (etcd checks every 500 ms).
pub const REAP_INTERVAL: Duration = Duration::from_millis(500);
/// At most this many revocations are proposed per check (etcd `leaseRevokeRate` 1000/s).
pub const MAX_REVOKES_PER_CHECK: usize = 500;

/// Keeps lease deadlines; see the module docs.
pub struct LeaseReaper {
    clock: LeaseClock,
    epoch: Instant,
    /// Where revoke proposals go (the `RaftActor`).
    raft: Recipient<Propose>,
    /// The `RaftActor`'s published status (for the leader role).
    status: watch::Receiver<RaftStatus>,
}

impl LeaseReaper {
    /// A reaper knowing the granted `leases` as `(id, ttl seconds)` (from the MVCC store at
    /// start-up); `extend` is added to every deadline when this member becomes leader (use the
    /// election timeout). It proposes revokes to `raft` and follows the role in `status`.
    pub fn new(
        leases: Vec<(i64, i64)>,
        extend: Duration,
        raft: Recipient<Propose>,
        status: watch::Receiver<RaftStatus>,
    ) -> Self {
        Self {
            clock: LeaseClock::new(leases, extend.as_millis() as u64),
            epoch: Instant::now(),
            raft,
            status,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Follows the leader role ([`LeaseClock::observe_role`]).
    fn sync_role(&mut self) {
        let (is_leader, term) = {
            let s = self.status.borrow();
            (s.is_leader, s.term)
        };
        let now = self.now_ms();
        match self.clock.observe_role(is_leader, term, now) {
            RoleChange::Promoted => {
                tracing::info!(term, leases = self.clock.len(), "lease clock promoted")
            }
            RoleChange::Demoted => tracing::info!("lease clock demoted"),
            RoleChange::Unchanged => {}
        }
    }

    fn reap(&mut self) {
        self.sync_role();
        let now = self.now_ms();
        for id in self.clock.take_expired(now, MAX_REVOKES_PER_CHECK) {
            tracing::debug!(lease = id, "lease expired; proposing revoke");
            let data = InternalRequest {
                id: 0, // nobody waits for the answer
                request: Some(internal_request::Request::LeaseRevoke(LeaseRevokeRequest {
                    id,
                })),
            }
            .encode_to_vec();
            self.raft.do_send(Propose { data, waiter: None });
        }
    }
}

impl Actor for LeaseReaper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(REAP_INTERVAL, |this, _| this.reap());
    }
}

impl Handler<LeaseApplied> for LeaseReaper {
    type Result = ();

    fn handle(&mut self, msg: LeaseApplied, _: &mut Context<Self>) {
        self.sync_role();
        match msg {
            LeaseApplied::Granted { id, ttl_secs } => {
                let now = self.now_ms();
                self.clock.granted(id, ttl_secs, now);
            }
            LeaseApplied::Revoked { id, .. } => self.clock.revoked(id),
        }
    }
}

/// Keep-alive of one lease on this member: the granted TTL, seconds.
/// Errors: [`ClockError::NotPrimary`] on a follower, [`ClockError::NotFound`].
#[derive(Message)]
#[rtype(result = "Result<i64, ClockError>")]
pub struct Renew(pub i64);

impl Handler<Renew> for LeaseReaper {
    type Result = Result<i64, ClockError>;

    fn handle(&mut self, Renew(id): Renew, _: &mut Context<Self>) -> Self::Result {
        self.sync_role();
        let now = self.now_ms();
        self.clock.renew(id, now)
    }
}

/// `(granted TTL, remaining TTL)` of one lease, seconds. Errors as [`Renew`].
#[derive(Message)]
#[rtype(result = "Result<(i64, i64), ClockError>")]
pub struct TimeToLive(pub i64);

impl Handler<TimeToLive> for LeaseReaper {
    type Result = Result<(i64, i64), ClockError>;

    fn handle(&mut self, TimeToLive(id): TimeToLive, _: &mut Context<Self>) -> Self::Result {
        self.sync_role();
        let now = self.now_ms();
        self.clock.time_to_live(id, now)
    }
}
