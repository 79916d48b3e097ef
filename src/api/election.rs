//! `v3electionpb.Election`: Campaign, Proclaim, Leader, Observe, Resign (etcd `v3election`
//! over `concurrency.Election`).
//!
//! A candidate queues a key `<name>/<lease hex>` holding its proposal, attached to its lease;
//! the leader is the key under `<name>/` with the lowest create_revision, and Campaign returns
//! once every older key is gone (see [`super::concurrency`]). The returned `LeaderKey`
//! (name, key, create revision, lease) is the leader's proof: Proclaim and Resign act only
//! while `create_revision(key) == rev`, so a leader whose key expired and was re-created by
//! someone else cannot overwrite or delete the new one.
//!
//! Observe streams the leader's value: it reads the current leader (or waits for the first
//! Put under the prefix), follows that key's Puts until it is deleted, then looks again. It
//! reports every leader change and the latest value; rapid intermediate values may be
//! skipped, as in etcd.

use super::concurrency::{
    OnCancel, Recipe, created_at, delete_op, get, is_delete, oldest, prefix_end, put_op, range_kvs,
    range_op, waiter_key, waiters_prefix,
};
use crate::pb::etcdserverpb::{ResponseHeader, TxnRequest};
use crate::pb::mvccpb::{KeyValue, event::EventType};
use crate::pb::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse, election_server::Election,
};
use futures::Stream;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// etcd `concurrency.ErrElectionNoLeader`.
const NO_LEADER: &str = "election: no leader";
/// etcd `concurrency.ErrElectionNotLeader`.
const NOT_LEADER: &str = "election: not leader";
/// etcd `v3election.ErrMissingLeaderKey`.
const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";
/// Leader responses an Observe stream may buffer for a slow client before it stops reading
/// the watch (etcd hands them over one at a time).
const OBSERVE_BUFFER: usize = 16;

/// The Election service; see the module docs.
pub struct ElectionService {
    recipe: Recipe,
}

impl ElectionService {
    /// Serves Election on `recipe`.
    pub fn new(recipe: Recipe) -> Self {
        Self { recipe }
    }

    /// Sets the leader's value if `leader` still leads (etcd `Election.Proclaim`).
    /// Errors: "election: not leader"; the KV's.
    async fn proclaim_value(
        &self,
        leader: &LeaderKey,
        value: Vec<u8>,
    ) -> Result<Option<ResponseHeader>, Status> {
        let txn = TxnRequest {
            compare: vec![created_at(&leader.key, leader.rev)],
            success: vec![put_op(&leader.key, value, leader.lease)],
            failure: Vec::new(),
        };
        let done = self.recipe.txn(txn).await?;
        if !done.succeeded {
            return Err(Status::unknown(NOT_LEADER));
        }
        Ok(done.header)
    }
}

/// Deletes the leader's key if it still belongs to `leader` (etcd `Election.Resign`).
fn resign_txn(leader: &LeaderKey) -> TxnRequest {
    TxnRequest {
        compare: vec![created_at(&leader.key, leader.rev)],
        success: vec![delete_op(&leader.key)],
        failure: Vec::new(),
    }
}

fn required(leader: Option<LeaderKey>) -> Result<LeaderKey, Status> {
    leader.ok_or_else(|| Status::unknown(MISSING_LEADER_KEY))
}

type LeaderStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    /// Errors (code `Unknown`, etcd's texts): "etcdserver: requested lease not found", those
    /// of a Proclaim when re-campaigning with a new value, and the KV's.
    async fn campaign(
        &self,
        request: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let CampaignRequest { name, lease, value } = request.into_inner();
        let lease = self.recipe.session_lease(lease).await?;
        let prefix = waiters_prefix(&name);
        let key = waiter_key(&prefix, lease);
        let queue = TxnRequest {
            compare: vec![created_at(&key, 0)],
            success: vec![put_op(&key, value.clone(), lease)],
            failure: vec![range_op(get(&key))],
        };
        let queued = self.recipe.txn(queue).await?;
        let mut leader = LeaderKey {
            name,
            key,
            rev: queued.header.map_or(0, |h| h.revision),
            lease,
        };
        if !queued.succeeded {
            // This lease already campaigns: keep its place, update its value.
            let mine = range_kvs(&queued, 0)
                .first()
                .cloned()
                .ok_or_else(|| Status::internal("campaign: own key missing"))?;
            leader.rev = mine.create_revision;
            if mine.value != value {
                match self.proclaim_value(&leader, value).await {
                    Ok(_) => {}
                    Err(e) if e.message() == NOT_LEADER => return Err(e),
                    Err(e) => {
                        let _ = self.recipe.txn(resign_txn(&leader)).await;
                        return Err(e);
                    }
                }
            }
        }
        // Dropped here (client gone): the candidacy is withdrawn. A failed wait keeps it,
        // as in etcd.
        let withdraw = OnCancel::new(&self.recipe, resign_txn(&leader));
        let waited = self.recipe.wait_deletes(&prefix, leader.rev - 1).await;
        withdraw.disarm();
        waited?;
        Ok(Response::new(CampaignResponse {
            header: queued.header,
            leader: Some(leader),
        }))
    }

    /// Errors (code `Unknown`): `"leader" field must be provided`, "election: not leader",
    /// the KV's.
    async fn proclaim(
        &self,
        request: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let ProclaimRequest { leader, value } = request.into_inner();
        let mut leader = required(leader)?;
        leader.lease = self.recipe.session_lease(leader.lease).await?;
        let header = self.proclaim_value(&leader, value).await?;
        Ok(Response::new(ProclaimResponse { header }))
    }

    /// The key with the lowest create_revision under `<name>/`.
    /// Errors (code `Unknown`): "election: no leader", the KV's.
    async fn leader(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        let prefix = waiters_prefix(&request.into_inner().name);
        let found = self.recipe.range(oldest(&prefix)).await?;
        let kv = found
            .kvs
            .into_iter()
            .next()
            .ok_or_else(|| Status::unknown(NO_LEADER))?;
        Ok(Response::new(LeaderResponse {
            header: found.header,
            kv: Some(kv),
        }))
    }

    /// A stream of leader responses; it ends (status OK) when a lookup or a watch fails, as
    /// etcd's does, and its work stops when the client goes away.
    async fn observe(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<LeaderStream>, Status> {
        let prefix = waiters_prefix(&request.into_inner().name);
        let (tx, rx) = mpsc::channel(OBSERVE_BUFFER);
        let recipe = self.recipe.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = observe(&recipe, &prefix, &tx) => {}
                _ = tx.closed() => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    /// Deletes the leader key if `create_revision(key) == rev`; otherwise does nothing, and
    /// is no error either.
    /// Errors (code `Unknown`): `"leader" field must be provided`, the KV's.
    async fn resign(
        &self,
        request: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        let leader = required(request.into_inner().leader)?;
        let done = self.recipe.txn(resign_txn(&leader)).await?;
        Ok(Response::new(ResignResponse {
            header: done.header,
        }))
    }
}

type LeaderSender = mpsc::Sender<Result<LeaderResponse, Status>>;

/// The Observe loop (etcd `Election.observe`); returns when a lookup or watch fails or the
/// client is gone.
async fn observe(recipe: &Recipe, prefix: &[u8], tx: &LeaderSender) -> Option<()> {
    loop {
        let found = recipe.range(oldest(prefix)).await.ok()?;
        let (header, kv) = match found.kvs.into_iter().next() {
            Some(kv) => (found.header, kv),
            None => first_put(recipe, prefix, found.header.map_or(0, |h| h.revision)).await?,
        };
        let revision = header.as_ref().map_or(0, |h| h.revision);
        let key = kv.key.clone();
        send(tx, header, kv).await?;
        // Follow this leader's value until its key is deleted.
        let mut watch = recipe.watch(key, Vec::new(), revision + 1).await.ok()?;
        'leader: loop {
            let r = watch.next().await?;
            if r.canceled {
                return None;
            }
            let header = recipe.header(r.header.map_or(0, |h| h.revision));
            for event in r.events {
                if is_delete(&event) {
                    break 'leader;
                }
                send(tx, header, event.kv?).await?;
            }
        }
    }
}

/// Waits for the first Put under `prefix` from `revision`: with no candidate yet, that is the
/// first leader. Its header carries the Put's revision.
async fn first_put(
    recipe: &Recipe,
    prefix: &[u8],
    revision: i64,
) -> Option<(Option<ResponseHeader>, KeyValue)> {
    let mut watch = recipe
        .watch(prefix.to_vec(), prefix_end(prefix), revision)
        .await
        .ok()?;
    loop {
        let r = watch.next().await?;
        if r.canceled {
            return None;
        }
        let put = r
            .events
            .into_iter()
            .find(|e| e.r#type == EventType::Put as i32)
            .and_then(|e| e.kv);
        if let Some(kv) = put {
            return Some((recipe.header(kv.mod_revision), kv));
        }
    }
}

async fn send(tx: &LeaderSender, header: Option<ResponseHeader>, kv: KeyValue) -> Option<()> {
    let response = LeaderResponse {
        header,
        kv: Some(kv),
    };
    tx.send(Ok(response)).await.ok()
}
