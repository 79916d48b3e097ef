//! `etcdserverpb.Maintenance`: Status from the member's real state, Hash and HashKV of the
//! store, Defragment, Alarm, MoveLeader, and Snapshot as an etcd-format bbolt file
//! (`etcdctl snapshot save`; docs/snapshots.md §4).

use super::Api;
use crate::pb::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse,
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
    maintenance_server::Maintenance,
};
use crate::snapshot::etcd_file as etcd;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// Responses buffered between the file writer's thread and the gRPC stream (32 KiB each).
const SNAPSHOT_QUEUE: usize = 8;

/// The etcd API version this member reports in `Status.version` (what etcdctl prints).
pub const REPORTED_VERSION: &str = "3.5.0";

/// The Maintenance service; see the module docs.
pub struct MaintenanceService {
    api: Api,
}

impl MaintenanceService {
    /// Serves Maintenance through `api`.
    pub fn new(api: Api) -> Self {
        Self { api }
    }
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    /// Alarm: GET, ACTIVATE and DEACTIVATE go through the log, as in etcd, so every member
    /// agrees on the active alarms; while NOSPACE is active writes that add data fail with
    /// "etcdserver: mvcc: database space exceeded", while CORRUPT is active every request
    /// through the log fails with "etcdserver: corrupt cluster" (etcd's capped and corrupt
    /// appliers, `mvcc::apply`).
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        use crate::mvcc::Response as Applied;
        use crate::pb::peerpb::internal_request::Request as Internal;
        match self
            .api
            .apply(Internal::Alarm(request.into_inner()))
            .await?
        {
            Applied::Alarm(mut r) => {
                r.header = self.api.full_header(r.header);
                Ok(Response::new(r))
            }
            _ => Err(Status::internal("unexpected apply result for alarm")),
        }
    }

    /// Defragment: asks fjall to compact every keyspace of this member's database fully,
    /// reclaiming space from deleted and compacted records (etcd rewrites its bolt file).
    /// Answers an empty response, no header, as etcd 3.4 does.
    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.api.defragment().await?;
        Ok(Response::new(DefragmentResponse { header: None }))
    }

    /// MoveLeader (`etcdctl move-leader`): [`Api::move_leader`]; answers an empty response,
    /// no header, as etcd does.
    async fn move_leader(
        &self,
        request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.api.move_leader(request.into_inner().target_id).await?;
        Ok(Response::new(MoveLeaderResponse { header: None }))
    }

    /// Hash: a checksum of this member's whole store ([`crate::mvcc::Kv::hash`]); the header
    /// carries the store revision it was taken at. Its value is ferrokv's own (etcd hashes its
    /// bbolt file); compare members with HashKV.
    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, revision) = self.api.hash_all().await?;
        Ok(Response::new(HashResponse {
            header: Some(self.api.header(revision)),
            hash,
        }))
    }

    /// HashKV (`etcdctl endpoint hashkv`): etcd's hash of the MVCC history up to
    /// `revision` (0 = current), [`crate::mvcc::Kv::hash_kv`]; equal on every member and, for
    /// the same history, equal to etcd's. Errors: `OutOfRange` "etcdserver: mvcc: required
    /// revision has been compacted" / "... is a future revision".
    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let h = self.api.hash_kv(request.into_inner().revision).await?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.api.header(h.revision)),
            hash: h.hash,
            compact_revision: h.compact_revision,
        }))
    }

    /// Snapshot (`etcdctl snapshot save`): the store as the bbolt file etcd 3.4 would hold
    /// for the same history ([`etcd::buckets`]), streamed as etcd 3.4's `maintenance.go` does:
    /// 32 KiB chunks with `remaining_bytes` counting down, then the file's SHA-256 with
    /// `remaining_bytes` 0, no header. The view is cut by the store actor between two batches;
    /// the file is built and sent from a blocking thread, so the actor applies on meanwhile.
    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<BoxStream<SnapshotResponse>>, Status> {
        let view = self.api.etcd_snapshot_view().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(SNAPSHOT_QUEUE);
        tokio::task::spawn_blocking(move || {
            let file = match etcd::export(&view) {
                Ok(file) => file,
                Err(e) => {
                    tracing::error!("snapshot for a client failed: {e}");
                    let _ = tx.blocking_send(Err(Status::internal(e.to_string())));
                    return;
                }
            };
            drop(view);
            tracing::info!(
                bytes = file.len(),
                "sending a database snapshot to a client"
            );
            for response in etcd::responses(&file) {
                if tx.blocking_send(Ok(response)).is_err() {
                    return; // the client went away
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let store = self.api.store_status().await?;
        let raft = self.api.raft_status();
        let db_size = self.api.db_size_bytes();
        Ok(Response::new(StatusResponse {
            header: Some(self.api.header(store.revision)),
            version: REPORTED_VERSION.into(),
            db_size,
            leader: raft.leader_id,
            raft_index: raft.commit_index,
            raft_term: raft.term,
            raft_applied_index: store.applied_index,
            errors: Vec::new(),
            db_size_in_use: self.api.db_size_in_use_bytes(),
            is_learner: store
                .members
                .iter()
                .any(|m| m.id == self.api.member_id() && m.is_learner),
        }))
    }
}
