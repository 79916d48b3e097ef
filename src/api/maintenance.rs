//! `etcdserverpb.Maintenance`: Status from the member's real state; the other RPCs answer
//! `Unimplemented` until they are built (generated default stubs).

use super::{Api, error};
use crate::mvcc::actor::GetStatus;
use crate::pb::etcdserverpb::{StatusRequest, StatusResponse, maintenance_server::Maintenance};
use tonic::{Request, Response, Status};

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
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let store = self
            .api
            .store()
            .send(GetStatus)
            .await
            .map_err(|_| error::stopped())?;
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
            db_size_in_use: db_size,
            is_learner: false,
            ..Default::default()
        }))
    }
}
