//! `etcdserverpb.Cluster`: MemberList from the member table; membership changes answer
//! `Unimplemented` until joint consensus is wired in.

use super::Api;
use crate::pb::etcdserverpb::{
    Member, MemberListRequest, MemberListResponse, cluster_server::Cluster,
};
use tonic::{Request, Response, Status};

/// The Cluster service; see the module docs.
pub struct ClusterService {
    api: Api,
}

impl ClusterService {
    /// Serves Cluster through `api`.
    pub fn new(api: Api) -> Self {
        Self { api }
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let store = self.api.store_status().await?;
        let members = store
            .members
            .into_iter()
            .map(|m| Member {
                id: m.id,
                name: m.name,
                peer_ur_ls: m.peer_urls,
                client_ur_ls: m.client_urls,
                is_learner: false,
            })
            .collect();
        Ok(Response::new(MemberListResponse {
            // etcd's Cluster service headers carry no revision (only Maintenance/KV ones do).
            header: Some(self.api.header(0)),
            members,
        }))
    }
}
