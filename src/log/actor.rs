//! `LogActor`: makes Raft state durable on a thread of its own.
//!
//! It runs in a one-thread [`actix::SyncArbiter`], so the fsync in [`LogStore::persist`] blocks
//! only this thread. The `RaftActor` sends one [`Persist`] per `Ready` and fetches no further
//! `Ready` until the answer returns; everything proposed meanwhile lands in the next `Ready`, so
//! one fsync covers many writes (group commit).

use super::LogStore;
use crate::bus::{CompactLog, Persist, Persisted};
use crate::storage::StorageError;
use actix::{Actor, Handler, SyncContext};

/// Owns the [`LogStore`]; see the module docs.
pub struct LogActor {
    store: LogStore,
}

impl LogActor {
    /// Wraps an opened log store.
    pub fn new(store: LogStore) -> Self {
        Self { store }
    }
}

impl Actor for LogActor {
    type Context = SyncContext<Self>;
}

impl Handler<CompactLog> for LogActor {
    type Result = Result<(), StorageError>;

    fn handle(&mut self, msg: CompactLog, _: &mut SyncContext<Self>) -> Self::Result {
        self.store
            .compact(msg.through, msg.through_term, &msg.snapshot)
    }
}

impl Handler<Persist> for LogActor {
    type Result = Result<Persisted, StorageError>;

    fn handle(&mut self, msg: Persist, _: &mut SyncContext<Self>) -> Self::Result {
        self.store.persist(
            msg.hard_state.as_ref(),
            msg.snapshot.as_ref(),
            &msg.entries,
            msg.sync,
        )?;
        Ok(Persisted {
            hard_state: msg.hard_state,
            snapshot: msg.snapshot,
            entries: msg.entries,
        })
    }
}
