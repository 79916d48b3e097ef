//! The receiving half of the transport: a tonic service stepping every message into Raft,
//! and answering the calls followers forward to the leader (lease keep-alives and
//! time-to-live, member promotion).
//!
//! It knows the `RaftActor` only as a `Recipient<Step>` and the lease answers only as the
//! [`LeaderCalls`] trait (implemented by the gRPC layer's `Api`), so the transport depends on
//! neither the Raft actor nor the API layer.

use std::sync::Arc;

use super::convert::message_from_pb;
use crate::bus::Step;
use crate::lease::ClockError;
use crate::mvcc::actor::InstallImage;
use crate::pb::etcdserverpb::{LeaseTimeToLiveRequest, LeaseTimeToLiveResponse};
use crate::pb::peerpb::{
    LeaseRenewRequest, LeaseRenewResponse, LeaseTimeToLiveForward, MessageBatch, SendAck,
    SnapshotAck, SnapshotChunk, raft_peer_server::RaftPeer,
};
use crate::raft::MessageBody;
use crate::snapshot::image;
use actix::Recipient;
use tonic::{Request, Response, Status, Streaming};

/// `FailedPrecondition` text a non-leader answers a forwarded lease call with; the forwarder
/// retries with the leader it learns next.
pub const NOT_LEADER: &str = "ferrokv: not the leader";

/// The status a member answers a forwarded lease call with when it is not the leader.
pub fn not_leader() -> Status {
    Status::failed_precondition(NOT_LEADER)
}

/// Calls only the leader can answer — lease calls (its lease clock decides expiry), member
/// promotion (its progress knows whether a learner is in sync); what a follower forwards here
/// over the peer port.
#[tonic::async_trait]
pub trait LeaderCalls: Send + Sync + 'static {
    /// MemberPromote on the leader. Errors: the API's status (etcd's texts), [`not_leader`].
    async fn promote(&self, id: u64) -> Result<(), Status>;
    /// Keep-alive: the granted TTL in seconds (0 = unknown lease). Errors:
    /// [`ClockError::NotPrimary`] when this member does not lead.
    async fn renew(&self, id: i64) -> Result<i64, ClockError>;
    /// Lease.LeaseTimeToLive (ttl -1 = unknown lease). Errors as [`LeaderCalls::renew`].
    async fn time_to_live(
        &self,
        request: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, ClockError>;
}

/// Serves `peerpb.RaftPeer/Send`: one client stream per sending peer.
pub struct PeerService {
    raft: Recipient<Step>,
    cluster_id: u64,
    leases: Arc<dyn LeaderCalls>,
    images: Option<Recipient<InstallImage>>,
    members: Option<Recipient<crate::mvcc::actor::GetStatus>>,
    removed: crate::cluster::RemovedIds,
}

impl PeerService {
    /// Steps received messages into `raft`; refuses batches of another `cluster_id`; answers
    /// forwarded lease calls through `leases`.
    pub fn new(raft: Recipient<Step>, cluster_id: u64, leases: Arc<dyn LeaderCalls>) -> Self {
        Self {
            raft,
            cluster_id,
            leases,
            images: None,
            members: None,
            removed: Default::default(),
        }
    }

    /// Refuses Raft traffic from the members in `removed` with
    /// [`crate::cluster::REMOVED_TEXT`], which stops them.
    pub fn with_removed(mut self, removed: crate::cluster::RemovedIds) -> Self {
        self.removed = removed;
        self
    }

    /// Answers `Members` from `store`'s member table (the `StoreActor`).
    pub fn with_members(mut self, store: Recipient<crate::mvcc::actor::GetStatus>) -> Self {
        self.members = Some(store);
        self
    }

    /// Installs received snapshot images through `store` (the `StoreActor`); without it,
    /// `InstallSnapshot` is refused.
    pub fn with_images(mut self, store: Recipient<InstallImage>) -> Self {
        self.images = Some(store);
        self
    }

    fn check_cluster(&self, cluster_id: u64) -> Result<(), Status> {
        if cluster_id == self.cluster_id {
            Ok(())
        } else {
            Err(Status::failed_precondition("cluster id mismatch"))
        }
    }
}

/// A forwarded lease call this member cannot answer because it does not lead.
fn clock_status(e: ClockError) -> Status {
    match e {
        ClockError::NotPrimary => not_leader(),
        ClockError::NotFound => Status::not_found(e.to_string()),
    }
}

impl PeerService {
    async fn receive_snapshot(
        &self,
        mut stream: Streaming<SnapshotChunk>,
        from: &mut u64,
    ) -> Result<SnapshotAck, Status> {
        let Some(images) = &self.images else {
            return Err(Status::unimplemented("this member installs no snapshots"));
        };
        let mut message = None;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            self.check_cluster(chunk.cluster_id)?;
            if message.is_none() {
                let m = chunk
                    .message
                    .ok_or_else(|| Status::invalid_argument("first chunk carries no message"))?;
                let m = super::convert::message_from_pb(m)
                    .map_err(|e| Status::invalid_argument(format!("bad message: {e}")))?;
                *from = m.from;
                message = Some(m);
            }
            bytes.extend_from_slice(&chunk.data);
        }
        let message = message.ok_or_else(|| Status::invalid_argument("no chunks"))?;
        let MessageBody::InstallSnapshot { snapshot } = &message.body else {
            return Err(Status::invalid_argument("not an InstallSnapshot message"));
        };
        let received = bytes.len();
        let img = image::decode(&bytes).map_err(|e| Status::data_loss(e.to_string()))?;
        drop(bytes);
        if img.meta != *snapshot {
            return Err(Status::invalid_argument(format!(
                "image of index {} term {} for a snapshot at index {} term {}",
                img.meta.index, img.meta.term, snapshot.index, snapshot.term
            )));
        }
        tracing::info!(
            from = format_args!("{:x}", message.from),
            index = snapshot.index,
            bytes = received,
            "received a snapshot image"
        );
        crate::crashpoint::hit(crate::crashpoint::SNAPSHOT_RECEIVED);
        let _applying = crate::snapshot::TRANSFERS.applying();
        let installed = images
            .send(InstallImage(img))
            .await
            .map_err(|e| Status::unavailable(format!("store gone: {e}")))?
            .map_err(Status::internal)?;
        self.raft.do_send(Step(vec![message]));
        Ok(SnapshotAck { installed })
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn send(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<SendAck>, Status> {
        let mut stream = request.into_inner();
        while let Some(batch) = stream.message().await? {
            if batch.cluster_id != self.cluster_id {
                tracing::warn!(
                    got = format_args!("{:x}", batch.cluster_id),
                    "refusing raft traffic from another cluster"
                );
                return Err(Status::failed_precondition("cluster id mismatch"));
            }
            if let Some(m) = batch.messages.first()
                && self.removed.read().expect("not poisoned").contains(&m.from)
            {
                tracing::warn!(
                    peer = format_args!("{:x}", m.from),
                    "refusing a removed member"
                );
                return Err(Status::failed_precondition(crate::cluster::REMOVED_TEXT));
            }
            let mut messages = Vec::with_capacity(batch.messages.len());
            for m in batch.messages {
                match message_from_pb(m) {
                    Ok(m) => messages.push(m),
                    Err(e) => tracing::warn!("bad raft message dropped: {e}"),
                }
            }
            if !messages.is_empty() {
                // One Step per batch: the driver steps them all, then drives once.
                self.raft.do_send(Step(messages));
            }
        }
        Ok(Response::new(SendAck {}))
    }

    /// Receives a whole image (held in memory: one atomic install needs all of it), checks its
    /// SHA-256 and that it is the state of the message's snapshot point, installs it, and only
    /// then steps the InstallSnapshot message into Raft (docs/snapshots.md §2). Any failure
    /// leaves the store as it was; the leader retries.
    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<SnapshotAck>, Status> {
        let started = std::time::Instant::now();
        let mut from = 0;
        let outcome = self.receive_snapshot(request.into_inner(), &mut from).await;
        crate::snapshot::TRANSFERS.received(from, outcome.is_ok(), started.elapsed());
        if let Err(status) = &outcome {
            tracing::warn!("snapshot receive failed: {}", status.message());
        }
        outcome.map(Response::new)
    }

    /// The member table, for a member about to join (`--initial-cluster-state existing`).
    async fn members(
        &self,
        _: Request<crate::pb::peerpb::MembersRequest>,
    ) -> Result<Response<crate::pb::peerpb::MembersResponse>, Status> {
        let Some(store) = &self.members else {
            return Err(Status::unimplemented("this member serves no member table"));
        };
        let status = store
            .send(crate::mvcc::actor::GetStatus)
            .await
            .map_err(|e| Status::unavailable(format!("store gone: {e}")))?;
        let members = status
            .members
            .into_iter()
            .map(|m| crate::pb::peerpb::PeerMember {
                id: m.id,
                peer_urls: m.peer_urls,
                is_learner: m.is_learner,
                name: m.name,
                client_urls: m.client_urls,
            })
            .collect();
        Ok(Response::new(crate::pb::peerpb::MembersResponse {
            cluster_id: self.cluster_id,
            members,
        }))
    }

    async fn promote(
        &self,
        request: Request<crate::pb::peerpb::PromoteForward>,
    ) -> Result<Response<crate::pb::peerpb::PromoteAck>, Status> {
        let r = request.into_inner();
        self.check_cluster(r.cluster_id)?;
        self.leases.promote(r.id).await?;
        Ok(Response::new(crate::pb::peerpb::PromoteAck {}))
    }

    async fn lease_renew(
        &self,
        request: Request<LeaseRenewRequest>,
    ) -> Result<Response<LeaseRenewResponse>, Status> {
        let r = request.into_inner();
        self.check_cluster(r.cluster_id)?;
        let ttl = self.leases.renew(r.id).await.map_err(clock_status)?;
        Ok(Response::new(LeaseRenewResponse { ttl }))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveForward>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let r = request.into_inner();
        self.check_cluster(r.cluster_id)?;
        let request = r.request.unwrap_or_default();
        let answer = self
            .leases
            .time_to_live(request)
            .await
            .map_err(clock_status)?;
        Ok(Response::new(answer))
    }
}
