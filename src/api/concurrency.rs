//! The recipe etcd's Lock and Election services share (etcd 3.4/3.5 `clientv3/concurrency`:
//! `Mutex`, `Election`, `waitDeletes`), built on this member's own KV service and watch hub.
//!
//! ```text
//!  <name>/<lease hex>   one key per waiter, attached to the waiter's lease
//!
//!  name/694d…  create_revision 12   ◄── holder (lowest create_revision)
//!  name/694e…  create_revision 15       waits for the deletion of name/694d…
//!  name/6950…  create_revision 19       waits for the deletion of name/694e…
//! ```
//!
//! A waiter queues by creating its key (a txn: create it only if it does not exist, else read
//! it, so a second call with the same lease is the same waiter), then repeatedly looks up the
//! youngest key older than its own and waits for that key's deletion. Each release wakes only
//! the next waiter (no thundering herd), and a waiter whose predecessor vanishes (its lease
//! expired) moves on to the one before. The alternative, one watch on the whole prefix per
//! waiter, would wake every waiter on every change.
//!
//! Errors of the underlying KV calls are passed to the client as etcd does: code `Unknown`,
//! the underlying text (etcd's services are clients of the server's own KV API, and its
//! client error type carries no gRPC code).

use super::Api;
use super::kv::KvService;
use super::lease::LeaseService;
use super::subscription::Subscription;
pub use crate::mvcc::index::prefix_range_end as prefix_end;
use crate::pb::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, PutRequest, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, TxnRequest, TxnResponse, WatchCreateRequest, compare,
    kv_server::Kv as _,
    lease_server::Lease as _,
    range_request::{SortOrder, SortTarget},
    request_op, response_op,
};
use crate::pb::mvccpb::{KeyValue, event::EventType};
use crate::watch::actor::WatchHub;
use actix::Addr;
use std::sync::Arc;
use tonic::{Request, Status};

/// TTL of the lease granted for a Lock or Campaign that names no lease, seconds (etcd
/// `concurrency.defaultSessionTTL`).
pub const SESSION_TTL_SECS: i64 = 60;

/// What the Lock and Election services build on: this member's KV and Lease services (the
/// same validation, Raft path and headers a client's request gets) and its watch hub. Cheap
/// to clone.
#[derive(Clone)]
pub struct Recipe {
    kv: Arc<KvService>,
    lease: Arc<LeaseService>,
    hub: Addr<WatchHub>,
    api: Api,
}

impl Recipe {
    /// A recipe over `api`'s KV and `hub`'s watches.
    pub fn new(api: Api, hub: Addr<WatchHub>) -> Self {
        Recipe {
            kv: Arc::new(KvService::new(api.clone())),
            lease: Arc::new(LeaseService::new(api.clone())),
            hub,
            api,
        }
    }

    /// A full response header for `revision`.
    pub fn header(&self, revision: i64) -> Option<ResponseHeader> {
        Some(self.api.header(revision))
    }

    /// The lease a request's keys attach to (etcd `concurrency.NewSession(WithLease(lease))`):
    /// `lease` itself, or for 0 a new lease of [`SESSION_TTL_SECS`], which nobody keeps alive
    /// (etcd orphans the session it makes). A lease that does not exist is not checked here;
    /// the Put naming it fails with "etcdserver: requested lease not found".
    /// Errors: the grant's, as [`Recipe::txn`].
    pub async fn session_lease(&self, lease: i64) -> Result<i64, Status> {
        if lease != 0 {
            return Ok(lease);
        }
        let grant = LeaseGrantRequest {
            ttl: SESSION_TTL_SECS,
            id: 0,
        };
        Ok(answer(self.lease.lease_grant(Request::new(grant)).await)?.id)
    }

    /// KV.Txn. Errors: the KV error's text with code `Unknown`.
    pub async fn txn(&self, txn: TxnRequest) -> Result<TxnResponse, Status> {
        answer(self.kv.txn(Request::new(txn)).await)
    }

    /// KV.DeleteRange of one key. Errors: as [`Recipe::txn`].
    pub async fn delete(&self, key: Vec<u8>) -> Result<DeleteRangeResponse, Status> {
        let request = DeleteRangeRequest {
            key,
            ..Default::default()
        };
        answer(self.kv.delete_range(Request::new(request)).await)
    }

    /// A linearizable KV.Range. Errors: as [`Recipe::txn`].
    pub async fn range(&self, range: RangeRequest) -> Result<RangeResponse, Status> {
        answer(self.kv.range(Request::new(range)).await)
    }

    /// A watch of `[key, range_end)` (only `key` when `range_end` is empty) from
    /// `start_revision` (see [`Subscription`]).
    pub async fn watch(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: i64,
    ) -> Result<Subscription, Status> {
        let request = WatchCreateRequest {
            key,
            range_end,
            start_revision,
            ..Default::default()
        };
        Subscription::open(&self.hub, request).await
    }

    /// Waits until no key under `prefix` has a create_revision ≤ `max_create_revision`
    /// (etcd `waitDeletes`); answers the header of the last, empty, lookup.
    ///
    /// Errors: KV errors as [`Recipe::txn`]; a compacted watch revision; "lost watcher
    /// waiting for delete" when a watch ends otherwise.
    pub async fn wait_deletes(
        &self,
        prefix: &[u8],
        max_create_revision: i64,
    ) -> Result<Option<ResponseHeader>, Status> {
        loop {
            let youngest = self
                .range(youngest_at_most(prefix, max_create_revision))
                .await?;
            let Some(kv) = youngest.kvs.into_iter().next() else {
                return Ok(youngest.header);
            };
            let revision = youngest.header.map_or(0, |h| h.revision);
            self.wait_delete(kv.key, revision).await?;
        }
    }

    /// Waits for a deletion of `key` at or after `revision` (etcd `waitDelete`).
    async fn wait_delete(&self, key: Vec<u8>, revision: i64) -> Result<(), Status> {
        let mut watch = self.watch(key, Vec::new(), revision).await?;
        loop {
            let Some(r) = watch.next().await else {
                return Err(super::error::stopped());
            };
            if r.events.iter().any(is_delete) {
                return Ok(());
            }
            if r.canceled {
                return Err(watch_lost(r.compact_revision));
            }
        }
    }
}

/// Runs an undo txn (release a waiter's key, resign) if dropped while armed: etcd cleans up
/// a waiter whose request context ended, and a tonic handler whose client went away is
/// dropped, not told. The txn runs on a task of its own, outliving the request.
pub struct OnCancel {
    recipe: Recipe,
    undo: Option<TxnRequest>,
}

impl OnCancel {
    /// Arms `undo`.
    pub fn new(recipe: &Recipe, undo: TxnRequest) -> Self {
        OnCancel {
            recipe: recipe.clone(),
            undo: Some(undo),
        }
    }

    /// The wait ended in a way that needs no undo.
    pub fn disarm(mut self) {
        self.undo = None;
    }
}

impl Drop for OnCancel {
    fn drop(&mut self) {
        let Some(undo) = self.undo.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let recipe = self.recipe.clone();
        runtime.spawn(async move {
            if let Err(e) = recipe.txn(undo).await {
                tracing::debug!("lock/election cleanup failed: {}", e.message());
            }
        });
    }
}

/// The message of an in-process call, its error passed through (see [`passthrough`]).
fn answer<T>(r: Result<tonic::Response<T>, Status>) -> Result<T, Status> {
    r.map(tonic::Response::into_inner).map_err(passthrough)
}

/// `Unknown` with the underlying text: how etcd's Lock and Election services report the
/// errors of their KV calls (see the module docs).
pub fn passthrough(status: Status) -> Status {
    Status::unknown(status.message())
}

/// A watch ended without the awaited event: compacted (etcd `ErrCompacted`) or otherwise
/// lost (etcd `waitDelete`'s text).
fn watch_lost(compact_revision: i64) -> Status {
    if compact_revision > 0 {
        Status::unknown("etcdserver: mvcc: required revision has been compacted")
    } else {
        Status::unknown("lost watcher waiting for delete")
    }
}

/// True for a DELETE event.
pub fn is_delete(e: &crate::pb::mvccpb::Event) -> bool {
    e.r#type == EventType::Delete as i32
}

/// `<prefix><lease>` with the lease in lower-case hex as Go's `%x` prints an int64 (a
/// negative id gets a minus sign) — the key etcd's Mutex and Election use for a waiter.
pub fn waiter_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let hex = if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    };
    [prefix, hex.as_bytes()].concat()
}

/// `<name>/`: the prefix under which waiters of `name` queue.
pub fn waiters_prefix(name: &[u8]) -> Vec<u8> {
    [name, b"/"].concat()
}

/// The key under `prefix` with the lowest create_revision: the holder / leader
/// (etcd `WithFirstCreate`).
pub fn oldest(prefix: &[u8]) -> RangeRequest {
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: SortOrder::Ascend as i32,
        sort_target: SortTarget::Create as i32,
        ..Default::default()
    }
}

/// The key under `prefix` with the highest create_revision ≤ `max_create_revision`
/// (etcd `WithLastCreate` + `WithMaxCreateRev`).
fn youngest_at_most(prefix: &[u8], max_create_revision: i64) -> RangeRequest {
    RangeRequest {
        sort_order: SortOrder::Descend as i32,
        max_create_revision,
        ..oldest(prefix)
    }
}

/// A plain Range of one key.
pub fn get(key: &[u8]) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }
}

/// The compare `create_revision(key) == revision` (0: the key does not exist).
pub fn created_at(key: &[u8], revision: i64) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.to_vec(),
        target_union: Some(compare::TargetUnion::CreateRevision(revision)),
        ..Default::default()
    }
}

/// A txn Range op.
pub fn range_op(range: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(range)),
    }
}

/// A txn Put op of `key` = `value` attached to `lease`.
pub fn put_op(key: &[u8], value: Vec<u8>, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value,
            lease,
            ..Default::default()
        })),
    }
}

/// A txn DeleteRange op of one key.
pub fn delete_op(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.to_vec(),
                ..Default::default()
            },
        )),
    }
}

/// The kvs of the `i`-th op response of a txn, if it was a Range.
pub fn range_kvs(txn: &TxnResponse, i: usize) -> &[KeyValue] {
    match txn.responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(response_op::Response::ResponseRange(r)) => &r.kvs,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiter_key_prints_the_lease_as_go_percent_x() {
        assert_eq!(
            waiter_key(b"job/", 0x694d_7f3a_11c2_0b04),
            b"job/694d7f3a11c20b04"
        );
        assert_eq!(waiter_key(b"job/", 10), b"job/a");
        assert_eq!(waiter_key(b"job/", -1), b"job/-1");
        assert_eq!(waiter_key(b"job/", i64::MIN), b"job/-8000000000000000");
    }
}
