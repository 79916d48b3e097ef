//! The receiving half of the transport: a tonic service stepping every message into Raft,
//! and answering the lease calls followers forward to the leader.

use super::convert::message_from_pb;
use crate::api::Api;
use crate::lease::ClockError;
use crate::pb::etcdserverpb::LeaseTimeToLiveResponse;
use crate::pb::peerpb::{
    LeaseRenewRequest, LeaseRenewResponse, LeaseTimeToLiveForward, MessageBatch, SendAck,
    raft_peer_server::RaftPeer,
};
use crate::raft::actor::{RaftActor, Step};
use actix::Addr;
use tonic::{Request, Response, Status, Streaming};

/// Serves `peerpb.RaftPeer/Send`: one client stream per sending peer.
pub struct PeerService {
    raft: Addr<RaftActor>,
    cluster_id: u64,
    api: Api,
}

impl PeerService {
    /// Steps received messages into `raft`; refuses batches of another `cluster_id`; answers
    /// forwarded lease calls through `api`.
    pub fn new(raft: Addr<RaftActor>, cluster_id: u64, api: Api) -> Self {
        Self {
            raft,
            cluster_id,
            api,
        }
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
        ClockError::NotPrimary => Api::not_leader(),
        ClockError::NotFound => Status::not_found(e.to_string()),
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

    async fn lease_renew(
        &self,
        request: Request<LeaseRenewRequest>,
    ) -> Result<Response<LeaseRenewResponse>, Status> {
        let r = request.into_inner();
        self.check_cluster(r.cluster_id)?;
        let ttl = self.api.local_renew(r.id).await.map_err(clock_status)?;
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
            .api
            .local_time_to_live(request)
            .await
            .map_err(clock_status)?;
        Ok(Response::new(answer))
    }
}
