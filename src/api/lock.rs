//! `v3lockpb.Lock`: Lock and Unlock (etcd `v3lock` over `concurrency.Mutex`, 3.5 semantics).
//!
//! Lock queues a key `<name>/<lease hex>` attached to the request's lease and waits until it
//! is the oldest key under `<name>/` (see [`super::concurrency`]); the lock is held while
//! that key exists. Unlock deletes the key. Locking twice with one lease is the same
//! acquisition: the second call finds the key and waits (or not) like the first.
//!
//! After the wait, the waiter's own key is read again: if its lease expired meanwhile the key
//! is gone and Lock fails with "mutex: session is expired" instead of reporting a lock it does
//! not hold (etcd 3.5; etcd 3.4 returned success there). A waiter whose client goes away, or
//! whose wait fails, has its key deleted.

use super::concurrency::{
    OnCancel, Recipe, created_at, delete_op, get, oldest, put_op, range_kvs, range_op, waiter_key,
    waiters_prefix,
};
use crate::pb::etcdserverpb::TxnRequest;
use crate::pb::v3lockpb::{
    LockRequest, LockResponse, UnlockRequest, UnlockResponse, lock_server::Lock,
};
use tonic::{Request, Response, Status};

/// etcd `concurrency.ErrSessionExpired`: the waiter's key vanished while it waited.
const SESSION_EXPIRED: &str = "mutex: session is expired";

/// The Lock service; see the module docs.
pub struct LockService {
    recipe: Recipe,
}

impl LockService {
    /// Serves Lock on `recipe`.
    pub fn new(recipe: Recipe) -> Self {
        Self { recipe }
    }
}

/// A txn that deletes `key` (etcd `Mutex.Unlock`).
fn unlock_txn(key: &[u8]) -> TxnRequest {
    TxnRequest {
        success: vec![delete_op(key)],
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    /// Errors (code `Unknown`, etcd's texts): "etcdserver: requested lease not found",
    /// "mutex: session is expired", and those of the KV calls underneath.
    async fn lock(&self, request: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let LockRequest { name, lease } = request.into_inner();
        let lease = self.recipe.session_lease(lease).await?;
        let prefix = waiters_prefix(&name);
        let key = waiter_key(&prefix, lease);
        // Queue (or find our key from an earlier call with this lease) and read the holder,
        // in one round trip.
        let queue = TxnRequest {
            compare: vec![created_at(&key, 0)],
            success: vec![put_op(&key, Vec::new(), lease), range_op(oldest(&prefix))],
            failure: vec![range_op(get(&key)), range_op(oldest(&prefix))],
        };
        let queued = self.recipe.txn(queue).await?;
        let my_revision = if queued.succeeded {
            queued.header.map_or(0, |h| h.revision)
        } else {
            range_kvs(&queued, 0)
                .first()
                .map(|kv| kv.create_revision)
                .ok_or_else(|| Status::internal("lock: own key missing after a failed create"))?
        };
        let holder = range_kvs(&queued, 1).first().map(|kv| kv.create_revision);
        if holder.is_none_or(|rev| rev == my_revision) {
            return Ok(Response::new(LockResponse {
                header: queued.header,
                key,
            }));
        }
        // Dropped here (client gone) or failed below: the key is released.
        let release = OnCancel::new(&self.recipe, unlock_txn(&key));
        self.recipe.wait_deletes(&prefix, my_revision - 1).await?;
        let mine = self.recipe.range(get(&key)).await?;
        release.disarm();
        if mine.kvs.is_empty() {
            return Err(Status::unknown(SESSION_EXPIRED));
        }
        Ok(Response::new(LockResponse {
            header: mine.header,
            key,
        }))
    }

    /// Deletes `key`; a key that does not exist is no error (nothing is written).
    /// Errors: "etcdserver: key is not provided" (code `Unknown`).
    async fn unlock(
        &self,
        request: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let done = self.recipe.delete(request.into_inner().key).await?;
        Ok(Response::new(UnlockResponse {
            header: done.header,
        }))
    }
}
