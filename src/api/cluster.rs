//! `etcdserverpb.Cluster`: MemberList from the member table; MemberAdd, MemberRemove and
//! MemberUpdate as Raft configuration changes through the joint configuration
//! ([`Api::change_membership`]), with etcd 3.4's checks and error texts
//! (`etcdserver/server.go` `mayAddMember`/`mayRemoveMember`, `api/v3rpc/member.go`).
//! MemberPromote runs on the leader (a follower forwards it over the peer port), which alone
//! knows whether the learner is in sync.

use super::Api;
use crate::cluster::{Member as TableMember, MemberChange};
use crate::pb::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, cluster_server::Cluster,
};
use crate::raft::ConfChangeType;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

/// Learners a cluster may hold at once (etcd 3.4's `maxLearners`, not configurable there).
pub const MAX_LEARNERS: usize = 1;

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

fn to_pb(m: TableMember) -> Member {
    Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: m.is_learner,
    }
}

fn bad_urls() -> Status {
    Status::invalid_argument("etcdserver: given member URLs are invalid")
}

fn not_found() -> Status {
    Status::not_found("etcdserver: member not found")
}

fn not_enough_started() -> Status {
    Status::failed_precondition(
        "etcdserver: re-configuration failed due to not enough started members",
    )
}

/// Peer URLs as etcd's `types.NewURLs` accepts them: `http(s)://host:port`, no path; returned
/// sorted, in etcd's string form. Errors: "etcdserver: given member URLs are invalid".
fn peer_urls(raw: &[String]) -> Result<Vec<String>, Status> {
    if raw.is_empty() {
        return Err(bad_urls());
    }
    let mut out = Vec::with_capacity(raw.len());
    for text in raw {
        let url = url::Url::parse(text.trim()).map_err(|_| bad_urls())?;
        let path_ok = url.path().is_empty() || url.path() == "/";
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.port().is_none()
            || !path_ok
        {
            return Err(bad_urls());
        }
        out.push(crate::config::etcd_url_string(&url));
    }
    out.sort();
    Ok(out)
}

/// Refuses `urls` when a member other than `except` already has one of them. Errors:
/// "etcdserver: Peer URLs already exists".
fn check_urls_free(
    members: &[TableMember],
    urls: &[String],
    except: Option<u64>,
) -> Result<(), Status> {
    let taken = members
        .iter()
        .filter(|m| Some(m.id) != except)
        .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)));
    if taken {
        return Err(Status::failed_precondition(
            "etcdserver: Peer URLs already exists",
        ));
    }
    Ok(())
}

/// How long a member must have been connected to a peer to count it healthy for a
/// reconfiguration (etcd `HealthInterval`).
pub const HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

fn unhealthy() -> Status {
    Status::unavailable("etcdserver: unhealthy cluster")
}

/// Majority of `n` voters.
fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// A started member has published its name (etcd `RaftCluster.IsReadyToAddVotingMember`).
fn started(m: &TableMember) -> bool {
    !m.name.is_empty()
}

/// A new member's id: the first 8 bytes of SHA-256 over its sorted peer URLs and the time
/// (etcd hashes the same with SHA-1 in `membership.NewMember`); never 0 or a present id.
fn new_member_id(urls: &[String], taken: &[TableMember]) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut salt = 0u64;
    loop {
        let mut h = Sha256::new();
        for u in urls {
            h.update(u.as_bytes());
        }
        h.update(now.to_be_bytes());
        h.update(salt.to_be_bytes());
        let digest = h.finalize();
        let id = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        if id != 0 && taken.iter().all(|m| m.id != id) {
            return id;
        }
        salt += 1;
    }
}

/// A learner is in sync when its match index is above this share of the leader's (etcd
/// `readyPercent`).
pub const LEARNER_READY_SHARE: f64 = 0.9;

impl Api {
    /// MemberPromote on the leader (etcd `mayPromoteMember`): the learner must exist, be a
    /// learner, be in sync, and the started voters must stay a quorum of the configuration
    /// with it. Errors: "etcdserver: member not found", "etcdserver: can only promote a
    /// learner member", "etcdserver: can only promote a learner member which is in sync with
    /// leader", "etcdserver: re-configuration failed due to not enough started members".
    pub async fn promote_on_leader(&self, id: u64) -> Result<(), Status> {
        let members = self.store_status().await?.members;
        let target = members.iter().find(|m| m.id == id).ok_or_else(not_found)?;
        if !target.is_learner {
            return Err(Status::failed_precondition(
                "etcdserver: can only promote a learner member",
            ));
        }
        let progress = self
            .inner
            .raft
            .send(crate::raft::actor::LearnerProgress { id })
            .await
            .map_err(|_| super::error::stopped())?;
        let in_sync = progress
            .is_some_and(|(learner, leader)| learner as f64 > leader as f64 * LEARNER_READY_SHARE);
        if !in_sync {
            return Err(Status::failed_precondition(
                "etcdserver: can only promote a learner member which is in sync with leader",
            ));
        }
        let voters = members.iter().filter(|m| !m.is_learner).count();
        let started_after = members
            .iter()
            .filter(|m| (!m.is_learner || m.id == id) && started(m))
            .count();
        if started_after < quorum(voters + 1) {
            return Err(not_enough_started());
        }
        self.change_membership(
            ConfChangeType::AddVoter,
            id,
            MemberChange::Promote(id),
            true,
        )
        .await
        .map(|_| ())
    }

    /// MemberPromote from any member: run here when leading, else forwarded to the leader.
    /// Errors: as [`Api::promote_on_leader`]; "etcdserver: no leader".
    async fn promote(&self, id: u64) -> Result<(), Status> {
        let status = self.inner.raft_status.borrow().clone();
        if status.is_leader {
            return self.promote_on_leader(id).await;
        }
        if status.leader_id == 0 {
            return Err(super::error::propose(crate::node::ProposeError::NoLeader));
        }
        let mut client = self
            .peer_client(status.leader_id)
            .ok_or_else(|| super::error::propose(crate::node::ProposeError::NoLeader))?;
        let forward = crate::pb::peerpb::PromoteForward {
            cluster_id: self.inner.cluster_id,
            id,
        };
        match tokio::time::timeout(self.inner.request_timeout, client.promote(forward)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(s)) => Err(Status::new(s.code(), s.message().to_string())),
            Err(_) => Err(super::error::timed_out()),
        }
    }
}

impl ClusterService {
    /// This member itself, or a peer this member has been connected to for at least
    /// [`HEALTH_INTERVAL`].
    fn connected_since(&self, id: u64) -> bool {
        id == self.api.member_id()
            || self
                .api
                .peer_active_since(id)
                .is_some_and(|t| t.elapsed() >= HEALTH_INTERVAL)
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let store = self.api.store_status().await?;
        Ok(Response::new(MemberListResponse {
            // etcd's Cluster service headers carry no revision (only Maintenance/KV ones do).
            header: Some(self.api.header(0)),
            members: store.members.into_iter().map(to_pb).collect(),
        }))
    }

    /// MemberAdd (`etcdctl member add NAME --peer-urls=... [--learner]`): a new voter or
    /// learner, unstarted (no name, no client URLs) until it joins and publishes them.
    /// Errors (etcd's): "etcdserver: given member URLs are invalid", "etcdserver: Peer URLs
    /// already exists", "etcdserver: too many learner members in cluster", and for a voter
    /// "etcdserver: re-configuration failed due to not enough started members" when the
    /// started voters would be fewer than a quorum of the new configuration.
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let r = request.into_inner();
        let urls = peer_urls(&r.peer_ur_ls)?;
        let members = self.api.store_status().await?.members;
        check_urls_free(&members, &urls, None)?;
        let voters: Vec<&TableMember> = members.iter().filter(|m| !m.is_learner).collect();
        if r.is_learner {
            if members.iter().filter(|m| m.is_learner).count() >= MAX_LEARNERS {
                return Err(Status::failed_precondition(
                    "etcdserver: too many learner members in cluster",
                ));
            }
        } else if voters.iter().filter(|m| started(m)).count() < quorum(voters.len() + 1) {
            return Err(not_enough_started());
        }
        // etcd `isConnectedFullySince`, for learners too: connected to every voter for a
        // health interval.
        if voters.iter().any(|m| !self.connected_since(m.id)) {
            return Err(unhealthy());
        }
        let member = TableMember {
            id: new_member_id(&urls, &members),
            name: String::new(),
            peer_urls: urls,
            client_urls: Vec::new(),
            is_learner: r.is_learner,
        };
        let change_type = if r.is_learner {
            ConfChangeType::AddLearner
        } else {
            ConfChangeType::AddVoter
        };
        let members = self
            .api
            .change_membership(
                change_type,
                member.id,
                MemberChange::Add(member.clone()),
                true,
            )
            .await?;
        Ok(Response::new(MemberAddResponse {
            header: Some(self.api.header(0)),
            member: Some(to_pb(member)),
            members: members.into_iter().map(to_pb).collect(),
        }))
    }

    /// MemberRemove (`etcdctl member remove ID`). The removed member stops when it applies
    /// its removal; its id never comes back. Errors: "etcdserver: member not found" (also for
    /// an id removed before, as etcd maps `ErrIDRemoved`); for a voter, "etcdserver:
    /// re-configuration failed due to not enough started members" when the started voters
    /// left would be fewer than a quorum of the rest.
    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let id = request.into_inner().id;
        let members = self.api.store_status().await?.members;
        let target = members.iter().find(|m| m.id == id).ok_or_else(not_found)?;
        if !target.is_learner {
            let voters: Vec<&TableMember> = members.iter().filter(|m| !m.is_learner).collect();
            let started_left = voters.iter().filter(|m| started(m) && m.id != id).count();
            if started_left < quorum(voters.len() - 1) {
                return Err(not_enough_started());
            }
            // A member that is down is safe to remove; otherwise the voters this member is
            // connected to (itself included), less the one removed, must still be a quorum
            // (etcd `mayRemoveMember`).
            let me = self.api.member_id();
            let down = id != me && self.api.peer_active_since(id).is_none();
            let active = voters.iter().filter(|m| self.connected_since(m.id)).count();
            if !down && active.saturating_sub(1) < 1 + (voters.len() - 1) / 2 {
                return Err(unhealthy());
            }
        }
        let members = self
            .api
            .change_membership(
                ConfChangeType::RemoveNode,
                id,
                MemberChange::Remove(id),
                true,
            )
            .await?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(self.api.header(0)),
            members: members.into_iter().map(to_pb).collect(),
        }))
    }

    /// MemberPromote (`etcdctl member promote ID`): a learner becomes a voter, through the
    /// joint configuration. Errors: see [`Api::promote_on_leader`].
    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let id = request.into_inner().id;
        self.api.promote(id).await?;
        let members = self.api.store_status().await?.members;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(self.api.header(0)),
            members: members.into_iter().map(to_pb).collect(),
        }))
    }

    /// MemberUpdate (`etcdctl member update ID --peer-urls=...`): new peer URLs for a member,
    /// through the log (a configuration change that keeps the member's role). Errors:
    /// "etcdserver: member not found", "etcdserver: given member URLs are invalid",
    /// "etcdserver: Peer URLs already exists" (another member's).
    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let r = request.into_inner();
        let members = self.api.store_status().await?.members;
        let target = members
            .iter()
            .find(|m| m.id == r.id)
            .ok_or_else(not_found)?;
        let urls = peer_urls(&r.peer_ur_ls)?;
        check_urls_free(&members, &urls, Some(r.id))?;
        let change_type = if target.is_learner {
            ConfChangeType::AddLearner
        } else {
            ConfChangeType::AddVoter
        };
        let change = MemberChange::Update {
            id: r.id,
            peer_urls: urls,
        };
        let members = self
            .api
            .change_membership(change_type, r.id, change, false)
            .await?;
        Ok(Response::new(MemberUpdateResponse {
            header: Some(self.api.header(0)),
            members: members.into_iter().map(to_pb).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_checked_and_sorted_as_etcd_does() {
        let ok = peer_urls(&["http://10.0.0.2:2380".into(), "http://10.0.0.1:2380".into()]);
        assert_eq!(
            ok.unwrap(),
            vec!["http://10.0.0.1:2380", "http://10.0.0.2:2380"]
        );
        for bad in [
            "10.0.0.1:2380",
            "http://10.0.0.1",
            "http://h:1/path",
            "ftp://h:1",
            "",
        ] {
            assert!(peer_urls(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(peer_urls(&[]).is_err());
    }

    #[test]
    fn quorums_are_majorities() {
        assert_eq!((quorum(1), quorum(2), quorum(3), quorum(4)), (1, 2, 2, 3));
    }
}
