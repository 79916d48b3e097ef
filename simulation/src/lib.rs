//! Deterministic whole-cluster simulation of ferrokv (the TigerBeetle "VOPR" idea).
//!
//! One `u64` seed derives every random choice: cluster size, network behaviour, fault
//! schedule, client workload and each node's Raft election jitter. The simulator drives the
//! same cores the server drives — [`ferrokv::raft::RawNode`] over `MemStorage` and the MVCC
//! [`ferrokv::mvcc::Kv`] on fjall — following the `RaftActor`/`StoreActor` steps exactly, but
//! with a virtual clock, a simulated network and a simulated disk instead of actix, tonic and
//! fsync. A failing seed replays bit for bit.
//!
//! Map of the crate:
//! | module | what it simulates or checks |
//! | --- | --- |
//! | [`clock`] | virtual time in ticks and the queue of future events |
//! | [`network`] | per-link delay, loss, duplication, reordering, partitions |
//! | [`disk`] | durable vs in-flight writes and log compactions; a crash loses what no fsync covered |
//! | [`cluster`] | the nodes (the server's own `NodeDriver` each), carrying out its effects, crash/restart, the two phases |
//! | [`workload`] | clients proposing Put/DeleteRange/Txn, acknowledgements |
//! | [`watch`] | watch clients: create / cancel / resume watches, stop reading streams |
//! | [`lease`] | lease clients: grant, put with a lease, revoke, keep-alive at the leader |
//! | [`oracle`] | a naive model of etcd's KV semantics to compare the final state against |
//! | [`invariants`] | one file per safety property, checked after every event |
//!
//! See `docs/simulation.md` for how to run it and what every fault and invariant means.

pub mod clock;
pub mod cluster;
pub mod disk;
pub mod invariants;
pub mod lease;
pub mod network;
pub mod oracle;
pub mod trace;
pub mod watch;
pub mod workload;

pub use cluster::{Failure, Options, RunStats, Sabotage, SnapshotStats, run_seed};
pub use invariants::Violation;
