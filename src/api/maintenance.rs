//! `etcdserverpb.Maintenance`: Status from the member's real state; the other RPCs answer
//! `Unimplemented` until they are built (generated default stubs).

use super::Api;
use crate::pb::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, StatusRequest,
    StatusResponse, alarm_request::AlarmAction, maintenance_server::Maintenance,
};
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

impl MaintenanceService {
    async fn revision(&self) -> Result<i64, Status> {
        Ok(self.api.store_status().await?.revision)
    }
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    /// Alarms: ferrokv raises none yet (no space quota), so GET lists none and DEACTIVATE
    /// of an alarm that is not active is a no-op, as in etcd. ACTIVATE answers
    /// `Unimplemented` rather than pretending to raise an alarm.
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        if request.into_inner().action() == AlarmAction::Activate {
            return Err(Status::unimplemented(
                "alarm activation is not supported yet",
            ));
        }
        Ok(Response::new(AlarmResponse {
            header: Some(self.api.header(self.revision().await?)),
            alarms: Vec::new(),
        }))
    }

    /// Defragment: asks fjall to compact every keyspace of this member's database fully,
    /// reclaiming space from deleted and compacted records (etcd rewrites its bolt file).
    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.api.defragment().await?;
        Ok(Response::new(DefragmentResponse {
            header: Some(self.api.header(self.revision().await?)),
        }))
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
            db_size_in_use: db_size,
            is_learner: false,
        }))
    }
}
