//! `etcdserverpb.Lease` (etcd v3rpc `LeaseServer`, `EtcdServer.Lease*`).
//!
//! - Grant and Revoke are log entries: proposed, applied by every member's `StoreActor`.
//! - KeepAlive and TimeToLive need the lease *clock*, which only the leader keeps
//!   (`LeaseReaper`): the leader answers them itself; a follower forwards them to the leader
//!   over the peer port (`peerpb.RaftPeer/LeaseRenew`, `/LeaseTimeToLive`), retrying across
//!   leader changes until the request deadline, as etcd does over its peer URLs.
//! - Leases (the list) is answered from this member's applied state.

use super::{Api, error};
use crate::lease::ClockError;
use crate::lease::actor::{Renew, TimeToLive};
use crate::mvcc::actor::{GetLease, ListLeases, WaitApplied};
use crate::mvcc::{MAX_LEASE_TTL_SECS, Response as KvResponse};
use crate::pb::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, lease_server::Lease,
};
use crate::pb::peerpb::{
    LeaseRenewRequest, LeaseTimeToLiveForward, internal_request, raft_peer_client::RaftPeerClient,
};
use futures::Stream;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status, Streaming};

/// How long a forwarder waits for a leader to appear before trying again.
const LEADER_WAIT: Duration = Duration::from_millis(100);

use crate::peer::server::LeaderCalls;

impl Api {
    /// The granted TTL a grant of `ttl` seconds gets: at least the minimum TTL (etcd
    /// `lessor.Grant`, minLeaseTTL = ⌈1.5 × election timeout⌉ s).
    /// Errors: `OutOfRange` "etcdserver: too large lease TTL" above 9,000,000,000 s.
    pub fn clamp_lease_ttl(&self, ttl: i64) -> Result<i64, Status> {
        if ttl > MAX_LEASE_TTL_SECS {
            return Err(error::mvcc(crate::mvcc::MvccError::LeaseTtlTooLarge));
        }
        Ok(ttl.max(self.inner.min_lease_ttl))
    }

    /// Keep-alive of lease `id` on the leader, wherever this member is: the granted TTL,
    /// seconds, or 0 when the lease is unknown or expired (etcd answers a keep-alive of an
    /// unknown lease with TTL 0, not an error).
    /// Errors: "etcdserver: request timed out" when no leader answered within the deadline.
    pub async fn lease_renew(&self, id: i64) -> Result<i64, Status> {
        self.on_leader(
            |api| async move { api.local_renew(id).await },
            |mut client, cluster_id| async move {
                let r = client
                    .lease_renew(LeaseRenewRequest { cluster_id, id })
                    .await?;
                Ok(r.into_inner().ttl)
            },
        )
        .await
    }

    /// Lease.LeaseTimeToLive answered by the leader (forwarded if needed): an unknown lease
    /// gets `ttl = -1`, as in etcd. Errors as [`Api::lease_renew`].
    pub async fn lease_time_to_live(
        &self,
        request: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, Status> {
        self.on_leader(
            |api| async move { api.local_time_to_live(request).await },
            |mut client, cluster_id| async move {
                let r = client
                    .lease_time_to_live(LeaseTimeToLiveForward {
                        cluster_id,
                        request: Some(request),
                    })
                    .await?;
                Ok(r.into_inner())
            },
        )
        .await
    }

    /// Renew on this member, which must be the leader. An unknown lease is looked up again
    /// once this member has applied everything committed (a grant may be committed but not
    /// yet applied here; etcd `waitAppliedIndex`). `Err(NotPrimary)` when not the leader.
    pub async fn local_renew(&self, id: i64) -> Result<i64, ClockError> {
        match self.reaper_call(Renew(id)).await? {
            Err(ClockError::NotFound) => {
                self.wait_applied_committed().await;
                match self.reaper_call(Renew(id)).await? {
                    Err(ClockError::NotFound) => Ok(0),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// TimeToLive on this member, which must be the leader. `Err(NotPrimary)` when not.
    pub async fn local_time_to_live(
        &self,
        request: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, ClockError> {
        let id = request.id;
        let mut clock = self.reaper_call(TimeToLive(id)).await?;
        if clock == Err(ClockError::NotFound) {
            self.wait_applied_committed().await;
            clock = self.reaper_call(TimeToLive(id)).await?;
        }
        let header = Some(self.header(self.current_revision()));
        let (granted_ttl, ttl) = match clock {
            Ok(t) => t,
            Err(ClockError::NotFound) => {
                return Ok(LeaseTimeToLiveResponse {
                    header,
                    id,
                    ttl: -1,
                    granted_ttl: 0,
                    keys: Vec::new(),
                });
            }
            Err(e) => return Err(e),
        };
        let keys = if request.keys {
            match self.inner.store.send(GetLease(id)).await {
                Ok(Some(info)) => info.keys,
                _ => Vec::new(),
            }
        } else {
            Vec::new()
        };
        Ok(LeaseTimeToLiveResponse {
            header,
            id,
            ttl,
            granted_ttl,
            keys,
        })
    }

    async fn reaper_call<M>(&self, msg: M) -> Result<M::Result, ClockError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        crate::lease::actor::LeaseReaper: actix::Handler<M>,
    {
        // A stopped reaper is treated like "not the leader": the caller retries until its
        // deadline, then times out.
        self.inner
            .reaper
            .send(msg)
            .await
            .map_err(|_| ClockError::NotPrimary)
    }

    async fn wait_applied_committed(&self) {
        let index = self.raft_status().commit_index;
        let (reply, done) = oneshot::channel();
        self.inner.store.do_send(WaitApplied { index, reply });
        let _ = tokio::time::timeout(self.inner.request_timeout, done).await;
    }

    /// Runs `local` if this member leads, else `remote` against the leader's peer port;
    /// retries across leader changes until the request deadline.
    async fn on_leader<T, L, LF, R, RF>(&self, local: L, remote: R) -> Result<T, Status>
    where
        L: Fn(Api) -> LF,
        LF: Future<Output = Result<T, ClockError>>,
        R: Fn(RaftPeerClient<tonic::transport::Channel>, u64) -> RF,
        RF: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + self.inner.request_timeout;
        let mut status_rx = self.inner.raft_status.clone();
        loop {
            let status = status_rx.borrow_and_update().clone();
            if status.is_leader {
                match local(self.clone()).await {
                    Ok(t) => return Ok(t),
                    Err(e) => tracing::debug!("lease call on this member: {e}; retrying"),
                }
            } else if status.leader_id != 0 {
                match self.peer_client(status.leader_id) {
                    Some(client) => match remote(client, self.inner.cluster_id).await {
                        Ok(t) => return Ok(t),
                        Err(s) if s.code() == tonic::Code::NotFound => return Err(s),
                        Err(s) => tracing::debug!(
                            leader = format_args!("{:x}", status.leader_id),
                            "forwarding a lease call: {}; retrying",
                            s.message()
                        ),
                    },
                    None => tracing::warn!(
                        leader = format_args!("{:x}", status.leader_id),
                        "no peer URL for the leader"
                    ),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(error::timed_out());
            }
            let _ =
                tokio::time::timeout(LEADER_WAIT.min(deadline - now), status_rx.changed()).await;
        }
    }

    pub(super) fn peer_client(
        &self,
        member_id: u64,
    ) -> Option<RaftPeerClient<tonic::transport::Channel>> {
        let mut channels = self.inner.peer_channels.lock().ok()?;
        if let Some(channel) = channels.get(&member_id) {
            return Some(RaftPeerClient::new(channel.clone()));
        }
        let url = self.inner.peer_urls.get(&member_id)?;
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .ok()?
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        channels.insert(member_id, channel.clone());
        Some(RaftPeerClient::new(channel))
    }
}

/// What a follower forwards to this member over the peer port.
#[tonic::async_trait]
impl LeaderCalls for Api {
    async fn promote(&self, id: u64) -> Result<(), Status> {
        if !self.inner.raft_status.borrow().is_leader {
            return Err(crate::peer::server::not_leader());
        }
        self.promote_on_leader(id).await
    }

    async fn renew(&self, id: i64) -> Result<i64, ClockError> {
        self.local_renew(id).await
    }

    async fn time_to_live(
        &self,
        request: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, ClockError> {
        self.local_time_to_live(request).await
    }
}

/// The Lease service; see the module docs.
pub struct LeaseService {
    api: Api,
}

impl LeaseService {
    /// Serves Lease through `api`.
    pub fn new(api: Api) -> Self {
        Self { api }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    /// etcd `LeaseGrant`: `id` 0 → the server picks a positive id; TTL raised to the
    /// minimum; errors "etcdserver: too large lease TTL" (OutOfRange), "etcdserver: lease
    /// already exists" (FailedPrecondition).
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let mut r = request.into_inner();
        r.ttl = self.api.clamp_lease_ttl(r.ttl)?;
        if r.id == 0 {
            r.id = (self.api.next_id() & (i64::MAX as u64)) as i64;
        }
        match self
            .api
            .apply(internal_request::Request::LeaseGrant(r))
            .await?
        {
            KvResponse::LeaseGrant(mut resp) => {
                resp.header = self.api.full_header(resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(Status::internal("lease grant: unexpected apply result")),
        }
    }

    /// etcd `LeaseRevoke`: deletes every attached key in one revision. Errors: NotFound
    /// "etcdserver: requested lease not found".
    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let r = request.into_inner();
        match self
            .api
            .apply(internal_request::Request::LeaseRevoke(r))
            .await?
        {
            KvResponse::LeaseRevoke(mut resp) => {
                resp.header = self.api.full_header(resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(Status::internal("lease revoke: unexpected apply result")),
        }
    }

    /// etcd `LeaseKeepAlive`: one answer per request, in order; TTL 0 for an unknown lease.
    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<KeepAliveStream>, Status> {
        let mut incoming = request.into_inner();
        let api = self.api.clone();
        let output = async_stream_like(move |tx| async move {
            loop {
                let r = match incoming.message().await {
                    Ok(Some(r)) => r,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!("keep-alive stream ended: {e}");
                        return;
                    }
                };
                let answer = api
                    .lease_renew(r.id)
                    .await
                    .map(|ttl| LeaseKeepAliveResponse {
                        header: Some(api.header(api.current_revision())),
                        id: r.id,
                        ttl,
                    });
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(output))
    }

    /// etcd `LeaseTimeToLive`: `ttl` -1 for an unknown lease; `keys` when asked.
    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.api
            .lease_time_to_live(request.into_inner())
            .await
            .map(Response::new)
    }

    /// etcd `LeaseLeases`: every granted lease of this member's applied state, by id.
    async fn lease_leases(
        &self,
        _: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self
            .api
            .inner
            .store
            .send(ListLeases)
            .await
            .map_err(|_| error::stopped())?;
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.api.header(self.api.current_revision())),
            leases: leases
                .into_iter()
                .map(|(id, _)| LeaseStatus { id })
                .collect(),
        }))
    }
}

/// A response stream fed by a task through a bounded channel.
fn async_stream_like<T, F, Fut>(body: F) -> Pin<Box<dyn Stream<Item = T> + Send>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
