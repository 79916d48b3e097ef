//! The MVCC store: etcd's multi-version key-value model on fjall.
//!
//! Every write transaction gets one store-wide *revision* (`main`); each change inside it gets a
//! `sub` revision. Old versions stay readable until compaction. The layers, bottom up (one
//! concept per file, modelled on etcd `server/storage/mvcc`; see `docs/mvcc.md`):
//!
//! | file | concept |
//! | --- | --- |
//! | [`revision`] | `Revision { main, sub }` and its big-endian backend key encoding |
//! | [`key_index`] | one key's history: generations closed by tombstones |
//! | [`index`] | the in-memory tree of key indexes, etcd's range rules |
//! | [`backend`] | the [`Backend`] trait and its contract, [`WriteBatch`], the shared checksummed record format |
//! | [`fjall_backend`] | [`FjallBackend`]: the fjall keyspaces `kv`, `kv_meta`, `lease` (the server) |
//! | [`mem_backend`] | [`MemBackend`]: in memory, loses unsynced batches on a simulated crash (tests, simulator) |
//! | [`kv`] | [`Kv`]: reads at a revision and write transactions producing watch events |
//! | [`lease`] | the granted leases and the keys each holds (the durable half of leases) |
//! | [`apply`] | etcd's KV and lease requests (Range/Put/DeleteRange/Txn/Compaction, LeaseGrant/LeaseRevoke) applied per raft entry |
//! | [`applier`] | [`apply_entry`]: one committed raft entry → the store, and what the caller must route |
//!
//! The store is a pure synchronous library: no actix, tokio or clock, and only
//! [`fjall_backend`] names a storage engine. `StoreActor` owns a [`Kv`] and applies committed
//! entries with [`apply_entry`]; the simulator does the same over a [`MemBackend`].

pub mod actor;
pub mod applier;
pub mod apply;
pub mod backend;
pub mod error;
pub mod fjall_backend;
pub mod index;
pub mod key_index;
pub mod kv;
pub mod lease;
pub mod mem_backend;
pub mod revision;

pub use applier::{Applied, LeaseApplied, Skipped, apply_entry};
pub use apply::{ApplyOutcome, Request, Response};
pub use backend::{Backend, IntoBackend, MetaState, WriteBatch, WriteOp};
pub use error::MvccError;
pub use fjall_backend::FjallBackend;
pub use kv::{Kv, KvHash, RangeOptions, RangeResult, WriteTxn};
pub use lease::{LeaseEntry, LeaseTable, MAX_LEASE_TTL_SECS};
pub use mem_backend::MemBackend;
pub use revision::Revision;

#[cfg(test)]
mod durability_test;
#[cfg(test)]
mod model_test;
