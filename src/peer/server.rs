//! The receiving half of the transport: a tonic service stepping every message into Raft.

use super::convert::message_from_pb;
use crate::pb::peerpb::{MessageBatch, SendAck, raft_peer_server::RaftPeer};
use crate::raft::actor::{RaftActor, Step};
use actix::Addr;
use tonic::{Request, Response, Status, Streaming};

/// Serves `peerpb.RaftPeer/Send`: one client stream per sending peer.
pub struct PeerService {
    raft: Addr<RaftActor>,
    cluster_id: u64,
}

impl PeerService {
    /// Steps received messages into `raft`; refuses batches of another `cluster_id`.
    pub fn new(raft: Addr<RaftActor>, cluster_id: u64) -> Self {
        Self { raft, cluster_id }
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
            for m in batch.messages {
                match message_from_pb(m) {
                    Ok(m) => self.raft.do_send(Step(m)),
                    Err(e) => tracing::warn!("bad raft message dropped: {e}"),
                }
            }
        }
        Ok(Response::new(SendAck {}))
    }
}
