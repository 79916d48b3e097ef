//! `LogActor`: makes Raft state durable on a thread of its own.
//!
//! It runs in a one-thread [`actix::SyncArbiter`], so the fsync in [`LogStore::persist`] blocks
//! only this thread. The `RaftActor` sends one [`Persist`] per `Ready` and fetches no further
//! `Ready` until the answer returns; everything proposed meanwhile lands in the next `Ready`, so
//! one fsync covers many writes (group commit).

use super::LogStore;
use crate::raft::{Entry, HardState};
use crate::storage::StorageError;
use actix::{Actor, Handler, Message, SyncContext};

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

/// Make `hard_state` and `entries` durable (one fsync), then answer with them, so the sender
/// can update its in-memory view without having cloned them.
#[derive(Message)]
#[rtype(result = "Result<Persisted, StorageError>")]
pub struct Persist {
    /// New hard state, if it changed.
    pub hard_state: Option<HardState>,
    /// New entries; index `i` replaces any stored entry `≥ i`.
    pub entries: Vec<Entry>,
    /// Whether to fsync (`Ready::must_sync`); false when only the commit index changed.
    pub sync: bool,
}

/// The fact that a [`Persist`] is durable, carrying its contents back.
pub struct Persisted {
    /// The hard state that is now durable.
    pub hard_state: Option<HardState>,
    /// The entries that are now durable.
    pub entries: Vec<Entry>,
}

impl Handler<Persist> for LogActor {
    type Result = Result<Persisted, StorageError>;

    fn handle(&mut self, msg: Persist, _: &mut SyncContext<Self>) -> Self::Result {
        self.store
            .persist(msg.hard_state.as_ref(), &msg.entries, msg.sync)?;
        Ok(Persisted {
            hard_state: msg.hard_state,
            entries: msg.entries,
        })
    }
}
