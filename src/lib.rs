//! ferrokv: a distributed, reliable key-value store that speaks etcd's v3 API.
//!
//! # Map of the code
//! Everything that *decides* lives in a pure core; actors only carry effects out
//! (see `docs/architecture.md`).
//!
//! | module | what it is | actor |
//! |---|---|---|
//! | [`node`] | the pure node driver: `RawNode` + the `Ready` in flight + reads -> effects as data | (driven by `RaftActor`, the simulator, the raft test harness) |
//! | [`raft`] | hand-written Raft: `RawNode` (step/tick/propose/ready/advance), log, progress, quorum | `RaftActor` |
//! | [`log`] | the durable Raft log + hard state in fjall, checksummed, group-committed fsync | `LogActor` |
//! | [`mvcc`] | revisions, key generations, the tree index, Range/Put/DeleteRange/Txn/Compact | `StoreActor` |
//! | [`watch`] | watch streams: synced/unsynced watchers fed by applied events and history | `WatchHub` |
//! | [`lease`] | lease expiry: the leader-only `LeaseClock` (the lease table itself is in [`mvcc::lease`]) | `LeaseReaper` |
//! | [`peer`] | Raft messages between members over a tonic stream per peer | `PeerLink` |
//! | [`api`] | etcd's gRPC services: validation, proposals, read index, error texts | – |
//! | [`bus`] | every message between actors (actors hold `Recipient`s of these, not each other's types) | – |
//! | [`cluster`] | the member table behind `MemberList` | – |
//! | [`storage`] | the fjall database shared by log and store, keyspace names, checksums | – |
//! | [`metrics`] | etcd's Prometheus metrics (served as `/metrics` by `api::http`) | – |
//! | [`config`] | etcd-compatible flags and `ETCD_*` environment variables | – |
//! | [`crashpoint`] | named places a member can be made to die at (`FERROKV_CRASH_AT`), for crash tests | – |
//! | [`server`] | start-up: identity check, restore, actor system, gRPC servers | – |
//! | [`pb`] | code generated from `proto/` | – |

pub mod api;
pub mod bus;
pub mod cluster;
pub mod compactor;
pub mod config;
pub mod crashpoint;
pub mod lease;
pub mod log;
pub mod logging;
pub mod metrics;
pub mod mvcc;
pub mod node;
pub mod pb;
pub mod peer;
pub mod raft;
pub mod server;
pub mod snapshot;
pub mod storage;
pub mod watch;
