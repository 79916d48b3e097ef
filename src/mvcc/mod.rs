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
//! | [`backend`] | the fjall keyspaces `kv` and `kv_meta`, checksummed records, atomic batches |
//! | [`kv`] | [`Kv`]: reads at a revision and write transactions producing watch events |
//! | [`lease`] | the granted leases and the keys each holds (the durable half of leases) |
//! | [`apply`] | etcd's KV and lease requests (Range/Put/DeleteRange/Txn/Compaction, LeaseGrant/LeaseRevoke) applied per raft entry |
//!
//! The store is a pure synchronous library: no actix, tokio or clock. `StoreActor` owns a [`Kv`].

pub mod actor;
pub mod apply;
pub mod backend;
pub mod error;
pub mod index;
pub mod key_index;
pub mod kv;
pub mod lease;
pub mod revision;

pub use apply::{ApplyOutcome, Request, Response};
pub use error::MvccError;
pub use kv::{Kv, RangeOptions, RangeResult, WriteTxn};
pub use lease::{LeaseEntry, LeaseTable, MAX_LEASE_TTL_SECS};
pub use revision::Revision;

#[cfg(test)]
mod durability_test;
#[cfg(test)]
mod model_test;
