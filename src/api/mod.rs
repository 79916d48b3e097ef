//! The etcd v3 gRPC services (tonic). Handlers validate, then either propose through the
//! `RaftActor` and await the `StoreActor`'s apply result, or read through a read index.
//! Services not written yet answer `Unimplemented` (generated default stubs), never hang.

pub mod cluster;
pub mod concurrency;
pub mod election;
pub mod error;
pub mod http;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod subscription;
pub mod validate;
pub mod watch;

use crate::bus::{CancelWait, Propose};
use crate::lease::actor::LeaseReaper;
use crate::mvcc::ApplyOutcome;
use crate::mvcc::actor::{
    GetStatus, HashAll, HashKv, LocalRange, StoreActor, StoreProgress, StoreStatus,
};
use crate::node::RaftStatus;
use crate::pb::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
use crate::pb::peerpb::{InternalRequest, internal_request};
use crate::raft::actor::{RaftActor, ReadIndex};
use actix::Addr;
use prost::Message as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::Status;

/// Most committed-but-unapplied entries a member tolerates before refusing proposals with
/// "etcdserver: too many requests" (etcd `maxGapBetweenApplyAndCommitIndex`).
pub const APPLY_GAP_MAX: u64 = 5000;

/// Whether `request` adds data to the store (Put, LeaseGrant, a Txn that puts): what the
/// quota and the NOSPACE alarm hold back (etcd `quotaKVServer`, `applierV3Capped`).
fn adds_data(request: &internal_request::Request) -> bool {
    use internal_request::Request as R;
    match request {
        R::Put(_) | R::LeaseGrant(_) => true,
        R::Txn(t) => crate::mvcc::apply::txn_puts(t),
        _ => false,
    }
}

/// Whether a member with `committed` entries committed and `applied` applied is too far
/// behind to take a proposal (more than [`APPLY_GAP_MAX`] unapplied).
fn overloaded(committed: u64, applied: u64) -> bool {
    committed.saturating_sub(applied) > APPLY_GAP_MAX
}

/// What every service handler needs: actor addresses, ids and limits. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Addr<RaftActor>,
    store: Addr<StoreActor>,
    raft_status: tokio::sync::watch::Receiver<RaftStatus>,
    cluster_id: u64,
    member_id: u64,
    /// `--max-request-bytes`: largest encoded proposal accepted, bytes.
    max_request_bytes: usize,
    /// `--max-txn-ops`.
    max_txn_ops: usize,
    /// How long a proposal or read may wait before "etcdserver: request timed out".
    request_timeout: Duration,
    next_request_id: AtomicU64,
    db: fjall::Database,
    /// Leases: the leader-side clock.
    reaper: Addr<LeaseReaper>,
    /// The store revision and applied index as last applied (kept by the `StoreActor`): for
    /// headers of answers that apply nothing (keep-alive, time-to-live, lease list) and the
    /// overload check of proposals.
    progress: Arc<StoreProgress>,
    /// `--election-timeout`-derived minimum lease TTL, seconds.
    min_lease_ttl: i64,
    /// Every member's first peer URL, for forwarding lease calls to the leader.
    peer_urls: BTreeMap<u64, String>,
    /// Lazily connected channels to peers, by member id.
    peer_channels: Mutex<HashMap<u64, tonic::transport::Channel>>,
    /// `--quota-backend-bytes`, bytes (`u64::MAX` = none).
    quota_backend_bytes: u64,
    /// A NOSPACE alarm proposal is in flight ([`Api::over_quota`]).
    raising_nospace: std::sync::atomic::AtomicBool,
    /// Connected peers and since when.
    active_peers: crate::peer::actor::ActivePeers,
}

/// Parameters of [`Api::new`].
pub struct ApiConfig {
    /// This member's id.
    pub member_id: u64,
    /// The cluster's id.
    pub cluster_id: u64,
    /// `--max-request-bytes`, bytes.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// Proposal/read deadline (etcd: 5 s + 2 × election timeout).
    pub request_timeout: Duration,
    /// Smallest lease TTL granted, seconds (etcd: ⌈1.5 × election timeout⌉).
    pub min_lease_ttl: i64,
    /// Every member's first peer URL, by member id.
    pub peer_urls: BTreeMap<u64, String>,
    /// `--quota-backend-bytes` (resolved; `u64::MAX` = none), bytes.
    pub quota_backend_bytes: u64,
    /// Which peers this member is connected to, and since when (membership checks).
    pub active_peers: crate::peer::actor::ActivePeers,
}

/// The actors and shared cells [`Api`] talks to.
pub struct ApiLinks {
    /// Proposals and read indexes.
    pub raft: Addr<RaftActor>,
    /// Applied state.
    pub store: Addr<StoreActor>,
    /// Lease deadlines (leader).
    pub reaper: Addr<LeaseReaper>,
    /// The RaftActor's published status.
    pub raft_status: tokio::sync::watch::Receiver<RaftStatus>,
    /// The store revision and applied index, kept by the StoreActor.
    pub progress: Arc<StoreProgress>,
}

impl Api {
    /// Builds the shared handler state.
    pub fn new(links: ApiLinks, db: fjall::Database, config: ApiConfig) -> Self {
        let ApiLinks {
            raft,
            store,
            reaper,
            raft_status,
            progress,
        } = links;
        // Request ids must be unique across members and restarts: the member id's low 16 bits
        // on top, the start time in ms shifted left 8 bits below, then a counter.
        let start_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let first_id = ((config.member_id & 0xffff) << 48) | ((start_ms << 8) & ((1 << 48) - 1));
        Self {
            inner: Arc::new(Inner {
                raft,
                store,
                raft_status,
                cluster_id: config.cluster_id,
                member_id: config.member_id,
                max_request_bytes: config.max_request_bytes,
                quota_backend_bytes: config.quota_backend_bytes,
                raising_nospace: std::sync::atomic::AtomicBool::new(false),
                active_peers: config.active_peers,
                max_txn_ops: config.max_txn_ops,
                request_timeout: config.request_timeout,
                next_request_id: AtomicU64::new(first_id),
                db,
                reaper,
                progress,
                min_lease_ttl: config.min_lease_ttl,
                peer_urls: config.peer_urls,
                peer_channels: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A response header for `revision` (etcd fills cluster_id, member_id, revision, raft_term).
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.inner.cluster_id,
            member_id: self.inner.member_id,
            revision,
            raft_term: self.inner.raft_status.borrow().term,
        }
    }

    /// A fresh request id: unique across members and restarts (also used as a server-chosen
    /// lease id, masked to 63 bits).
    pub fn next_id(&self) -> u64 {
        self.inner.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The store revision as last applied on this member.
    pub fn current_revision(&self) -> i64 {
        self.inner.progress.revision()
    }

    /// Proposes `request` through Raft and waits until this member has applied it.
    ///
    /// Errors: "etcdserver: request is too large" when the encoded entry exceeds
    /// `--max-request-bytes`; "etcdserver: no leader"; "etcdserver: request timed out";
    /// the apply's MVCC error mapped by [`error::mvcc`].
    pub async fn propose(
        &self,
        request: internal_request::Request,
    ) -> Result<Option<ApplyOutcome>, Status> {
        // Overload: a member far behind in applying takes no new work (etcd
        // `processInternalRaftRequestOnce`): the backlog is bounded, the client retries.
        let committed = self.inner.raft_status.borrow().commit_index;
        if overloaded(committed, self.inner.progress.applied_index()) {
            return Err(error::too_many_requests());
        }
        let id = self.next_id();
        let adds_data = adds_data(&request);
        let data = InternalRequest {
            id,
            request: Some(request),
        }
        .encode_to_vec();
        if data.len() > self.inner.max_request_bytes {
            return Err(error::request_too_large());
        }
        if adds_data && self.over_quota(data.len()) {
            return Err(error::mvcc(crate::mvcc::MvccError::NoSpace));
        }
        let (reply, waiter) = oneshot::channel();
        let cancel = || self.inner.store.do_send(CancelWait { id });
        let proposal = Propose {
            data,
            waiter: Some((id, reply)),
        };
        match self.inner.raft.send(proposal).await {
            Ok(Ok(())) => {}
            // The RaftActor already withdrew the waiter.
            Ok(Err(e)) => return Err(error::propose(e)),
            Err(_) => return Err(error::stopped()),
        }
        match tokio::time::timeout(self.inner.request_timeout, waiter).await {
            Ok(Ok(result)) => result.map_err(error::mvcc),
            Ok(Err(_)) => Err(error::stopped()),
            Err(_) => {
                cancel();
                Err(error::timed_out())
            }
        }
    }

    /// etcd's backend quota (`quotaKVServer`): a request that adds data (Put, LeaseGrant, a
    /// Txn that puts) and would take the store past `--quota-backend-bytes` is refused, and
    /// this member raises the NOSPACE alarm through the log, so every member refuses such
    /// writes until an operator frees space (compaction, defragment) and disarms it.
    fn over_quota(&self, request_bytes: usize) -> bool {
        use internal_request::Request as R;
        let size = self.inner.progress.size_bytes();
        if size.saturating_add(request_bytes as u64) <= self.inner.quota_backend_bytes {
            return false;
        }
        // One raise in flight at a time: a flood of refused writes proposes one alarm, not one
        // each (the alarm, once applied, refuses them all in the store anyway).
        if self.inner.raising_nospace.swap(true, Ordering::AcqRel) {
            return true;
        }
        tracing::warn!(
            quota_size_bytes = self.inner.quota_backend_bytes,
            current_size_bytes = size,
            "exceeded database space quota; raising the NOSPACE alarm"
        );
        let api = self.clone();
        let member_id = self.inner.member_id;
        tokio::spawn(async move {
            use crate::pb::etcdserverpb::{AlarmRequest, AlarmType, alarm_request::AlarmAction};
            let raise = R::Alarm(AlarmRequest {
                action: AlarmAction::Activate as i32,
                member_id,
                alarm: AlarmType::Nospace as i32,
            });
            if let Err(e) = api.propose(raise).await {
                tracing::warn!("raising the NOSPACE alarm failed: {}", e.message());
            }
            api.inner.raising_nospace.store(false, Ordering::Release);
        });
        true
    }

    /// [`Api::propose`] for requests that always answer with a KV/lease response.
    /// Errors: as `propose`; `Internal` if the apply produced no response.
    pub async fn apply(
        &self,
        request: internal_request::Request,
    ) -> Result<crate::mvcc::Response, Status> {
        self.propose(request)
            .await?
            .map(|outcome| outcome.response)
            .ok_or_else(|| Status::internal("apply produced no KV response"))
    }

    /// The full header for a header the store filled with only its revision.
    pub fn full_header(&self, partial: Option<ResponseHeader>) -> Option<ResponseHeader> {
        Some(self.header(partial.map_or(0, |h| h.revision)))
    }

    /// Serves a Range: `serializable` reads answer from local state at once; others wait for
    /// a read index from the leader and for this member to apply through it (linearizable,
    /// Raft thesis §6.4).
    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, Status> {
        let min_applied_index = if request.serializable {
            0
        } else {
            self.read_index().await?
        };
        let (reply, answer) = oneshot::channel();
        self.inner.store.do_send(LocalRange {
            request,
            min_applied_index,
            reply,
        });
        match tokio::time::timeout(self.inner.request_timeout, answer).await {
            Ok(Ok(result)) => result.map_err(error::mvcc),
            Ok(Err(_)) => Err(error::stopped()),
            Err(_) => Err(error::timed_out()),
        }
    }

    async fn read_index(&self) -> Result<u64, Status> {
        let waiter = self
            .inner
            .raft
            .send(ReadIndex)
            .await
            .map_err(|_| error::stopped())?
            .map_err(error::propose)?;
        match tokio::time::timeout(self.inner.request_timeout, waiter).await {
            Ok(Ok(result)) => result.map_err(error::propose),
            Ok(Err(_)) => Err(error::stopped()),
            Err(_) => Err(error::timed_out()),
        }
    }

    /// `--max-txn-ops`.
    pub fn max_txn_ops(&self) -> usize {
        self.inner.max_txn_ops
    }

    /// The Raft status as last published.
    pub fn raft_status(&self) -> RaftStatus {
        self.inner.raft_status.borrow().clone()
    }

    /// The StoreActor's revision, applied index and member table.
    /// Errors: "etcdserver: server stopped" when the actor is gone.
    pub async fn store_status(&self) -> Result<StoreStatus, Status> {
        self.inner
            .store
            .send(GetStatus)
            .await
            .map_err(|_| error::stopped())
    }

    /// The store's HashKV at `revision` (0 = current). Errors: etcd's Compacted /
    /// FutureRevision (`OutOfRange`), `Unavailable` when the store actor is gone.
    pub async fn hash_kv(&self, revision: i64) -> Result<crate::mvcc::KvHash, Status> {
        self.inner
            .store
            .send(HashKv(revision))
            .await
            .map_err(|_| error::stopped())?
            .map_err(error::mvcc)
    }

    /// A consistent view of the store for `Maintenance.Snapshot`
    /// ([`crate::mvcc::actor::ExportEtcdSnapshot`]). Errors: `Unavailable` when the store actor
    /// is gone, `Internal` when the store keeps no database.
    pub async fn etcd_snapshot_view(
        &self,
    ) -> Result<crate::snapshot::etcd_file::StoreView, Status> {
        self.inner
            .store
            .send(crate::mvcc::actor::ExportEtcdSnapshot)
            .await
            .map_err(|_| error::stopped())?
            .map_err(Status::internal)
    }

    /// The whole store's hash and the current revision ([`crate::mvcc::Kv::hash`]).
    pub async fn hash_all(&self) -> Result<(u32, i64), Status> {
        self.inner
            .store
            .send(HashAll)
            .await
            .map_err(|_| error::stopped())?
            .map_err(error::mvcc)
    }

    /// etcd `MoveLeader`: this member must lead ("etcdserver: not leader", FailedPrecondition)
    /// and `target` must be a voting member ("etcdserver: bad leader transferee",
    /// FailedPrecondition); asks Raft to hand leadership over and waits until `target` leads,
    /// at most the request timeout ("etcdserver: request timed out, leader transfer took too
    /// long", Unavailable).
    pub async fn move_leader(&self, target: u64) -> Result<(), Status> {
        let me = self.inner.member_id;
        if !self.inner.raft_status.borrow().is_leader {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        let members = self.store_status().await?.members;
        if !members.iter().any(|m| m.id == target) {
            return Err(Status::failed_precondition(
                "etcdserver: bad leader transferee",
            ));
        }
        let started = std::time::Instant::now();
        tracing::info!(
            local_member_id = %format!("{me:x}"),
            current_leader_member_id = %format!("{me:x}"),
            transferee_member_id = %format!("{target:x}"),
            "leadership transfer starting"
        );
        if target == me {
            return Ok(());
        }
        let mut status = self.inner.raft_status.clone();
        self.inner
            .raft
            .send(crate::bus::TransferLeader { to: target })
            .await
            .map_err(|_| error::stopped())?;
        let led = tokio::time::timeout(
            self.inner.request_timeout,
            status.wait_for(|s| s.leader_id == target),
        )
        .await;
        match led {
            Ok(Ok(_)) => {
                tracing::info!(
                    local_member_id = %format!("{me:x}"),
                    old_leader_member_id = %format!("{me:x}"),
                    new_leader_member_id = %format!("{target:x}"),
                    took = ?started.elapsed(),
                    "leadership transfer finished"
                );
                Ok(())
            }
            Ok(Err(_)) => Err(error::stopped()),
            Err(_) => Err(Status::unavailable(
                "etcdserver: request timed out, leader transfer took too long",
            )),
        }
    }

    /// Proposes a membership change: one Raft configuration change of `change_type` for
    /// `node`, carrying `change` for the member table; with `joint`, through the joint
    /// configuration C_old,new, left automatically once applied (Raft thesis §4.3;
    /// `ConfChangeTransition::JointImplicit`), else applied directly (a change that keeps the
    /// configuration, as a peer-URL update). Waits until this member has applied it, then returns the
    /// member table.
    ///
    /// Errors: "etcdserver: no leader"; "etcdserver: request timed out"; a change already in
    /// progress → `FailedPrecondition` "etcdserver: a membership change is already in
    /// progress; retry once it is applied" (etcd serializes them in Raft, ferrokv refuses the
    /// second rather than interleave).
    pub async fn change_membership(
        &self,
        change_type: crate::raft::ConfChangeType,
        node: u64,
        change: crate::cluster::MemberChange,
        joint: bool,
    ) -> Result<Vec<crate::cluster::Member>, Status> {
        use crate::raft::{ConfChange, ConfChangeSingle, ConfChangeTransition, RaftError};
        let id = self.next_id();
        let context = crate::cluster::ChangeContext {
            request_id: id,
            change,
        }
        .encode();
        let cc = ConfChange {
            transition: if joint {
                ConfChangeTransition::JointImplicit
            } else {
                ConfChangeTransition::Auto
            },
            changes: vec![ConfChangeSingle {
                change_type,
                node_id: node,
            }],
            context,
        };
        let (reply, waiter) = oneshot::channel();
        let proposal = crate::raft::actor::ProposeConfChange {
            change: cc,
            waiter: (id, reply),
        };
        match self.inner.raft.send(proposal).await {
            Ok(Ok(())) => {}
            Ok(Err(RaftError::ConfChangePending)) => {
                return Err(Status::failed_precondition(
                    "etcdserver: a membership change is already in progress; retry once it is applied",
                ));
            }
            Ok(Err(RaftError::ConfChangeInvalid(why))) => {
                return Err(Status::failed_precondition(format!("etcdserver: {why}")));
            }
            Ok(Err(_)) => return Err(error::propose(crate::node::ProposeError::NoLeader)),
            Err(_) => return Err(error::stopped()),
        }
        match tokio::time::timeout(self.inner.request_timeout, waiter).await {
            Ok(Ok(Ok(_))) => Ok(self.store_status().await?.members),
            Ok(Ok(Err(e))) => Err(error::mvcc(e)),
            Ok(Err(_)) => Err(error::stopped()),
            Err(_) => {
                self.inner.store.do_send(CancelWait { id });
                Err(error::timed_out())
            }
        }
    }

    /// Since when this member's stream to `peer` has been open; `None` when it is not
    /// (etcd rafthttp `ActiveSince`).
    pub fn peer_active_since(&self, peer: u64) -> Option<std::time::Instant> {
        self.inner.active_peers.active_since(peer)
    }

    /// `--max-request-bytes`, bytes.
    pub fn max_request_bytes(&self) -> usize {
        self.inner.max_request_bytes
    }

    /// This member's id.
    pub fn member_id(&self) -> u64 {
        self.inner.member_id
    }

    /// Fully compacts every keyspace of the member's database (Maintenance.Defragment), on a
    /// blocking thread. Errors: `Internal` with fjall's error.
    pub async fn defragment(&self) -> Result<(), Status> {
        let db = self.inner.db.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<(), fjall::Error> {
            for name in db.list_keyspace_names() {
                db.keyspace(&name, fjall::KeyspaceCreateOptions::default)?
                    .major_compact()?;
            }
            Ok(())
        })
        .await
        .map_err(|_| error::stopped())?;
        result.map_err(|e| Status::internal(format!("defragment: {e}")))
    }

    /// etcd's `db_size` counterpart, bytes: what the MVCC store occupies — its keyspaces'
    /// table files, or its record bytes while those are still in memtables (the journal the
    /// store shares with the Raft log is left out, as etcd leaves its WAL out; it is
    /// preallocated, so counting it made an empty member report 64 MiB).
    pub fn db_size_bytes(&self) -> i64 {
        use crate::mvcc::backend::{KV_KEYSPACE, LEASE_KEYSPACE, META_KEYSPACE};
        let tables: u64 = [KV_KEYSPACE, META_KEYSPACE, LEASE_KEYSPACE]
            .into_iter()
            .filter_map(|name| {
                self.inner
                    .db
                    .keyspace(name, fjall::KeyspaceCreateOptions::default)
                    .ok()
            })
            .map(|k| k.disk_space())
            .sum();
        i64::try_from(tables.max(self.inner.progress.size_bytes())).unwrap_or(i64::MAX)
    }

    /// Bytes of the records the store holds ([`crate::mvcc::Kv::size_bytes`], as last
    /// published): `Status.db_size_in_use` and the quota's measure.
    pub fn db_size_in_use_bytes(&self) -> i64 {
        i64::try_from(self.inner.progress.size_bytes()).unwrap_or(i64::MAX)
    }
}

/// Services not built yet: every RPC answers `Unimplemented` (generated default stubs).
pub struct Unimplemented;

impl crate::pb::etcdserverpb::auth_server::Auth for Unimplemented {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_are_refused_only_beyond_the_apply_gap() {
        assert!(!overloaded(APPLY_GAP_MAX, 0));
        assert!(overloaded(APPLY_GAP_MAX + 1, 0));
        assert!(
            !overloaded(10, 20),
            "a store ahead of the published commit is not behind"
        );
    }
}
