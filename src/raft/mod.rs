//! The Raft consensus core: a pure state machine (no I/O, no clock, no hidden randomness)
//! modeled on etcd-io/raft's `RawNode`/`Ready` split.
//!
//! Map of the module:
//! - [`types`]: entries, hard/soft state, configurations, peer messages.
//! - [`RawNode`] (`raw_node.rs`): the API — `tick`, `step`, `propose`, `read_index`,
//!   `campaign`, then `ready` / `advance`. [`Ready`] (`ready.rs`) documents the contract.
//! - `raft.rs`: roles, elections (with pre-vote and check-quorum), replication, commit,
//!   ReadIndex, leadership transfer.
//! - `log.rs` / `log_unstable.rs`: the log = stable [`Storage`] + unstable tail.
//! - [`confchange`]: membership changes (single-voter and joint consensus).
//! - `progress.rs`: per-follower replication state and flow control; `quorum.rs`: majority
//!   and joint-majority arithmetic; `read_only.rs`: pending ReadIndex requests.
//! - Tests: unit tests in each file and `tests.rs`; paper tests named by section in
//!   `paper_tests.rs`; InstallSnapshot in `snapshot_tests.rs`; data-driven scripts in
//!   `testdata/*.txt` (`interaction_tests.rs`);
//!   a randomized fault test with safety invariants in `chaos_tests.rs`.
//!
//! The course chapters `docs/raft-1-election-and-replication.md` and
//! `docs/raft-2-reads-and-membership.md` explain the design with links to all of these.
//!
//! A minimal driving loop (what `RaftActor` does):
//! ```
//! use ferrokv::raft::{Config, ConfState, MemStorage, RawNode};
//! use rand::SeedableRng;
//!
//! let storage = MemStorage::new_with_conf_state(ConfState::from_voters([1]));
//! let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(1));
//! let mut node = RawNode::new(&Config::new(1), storage, rng).unwrap();
//! node.campaign().unwrap();
//! let mut applied = Vec::new();
//! while node.has_ready() {
//!     let ready = node.ready();
//!     // (send ready.messages here)
//!     if let Some(snapshot) = ready.snapshot.clone() {
//!         // A follower's log replaced by the leader's snapshot: persist it first, and
//!         // install the matching store image (the transport streamed it) before applying.
//!         node.storage_mut().apply_snapshot(snapshot).unwrap();
//!     }
//!     if let Some(hs) = ready.hard_state {
//!         node.storage_mut().set_hard_state(hs);
//!     }
//!     node.storage_mut().append(&ready.entries).unwrap(); // + fsync in a real server
//!     // (send ready.persisted_messages here)
//!     applied.extend(ready.committed_entries.iter().cloned());
//!     node.advance(ready);
//!     if applied.len() == 1 && node.status().soft_state.role == ferrokv::raft::Role::Leader {
//!         node.propose(b"hello".to_vec()).unwrap();
//!     }
//! }
//! assert_eq!(applied.last().unwrap().data, b"hello");
//! ```

pub mod actor;
pub mod confchange;
pub mod config;
pub mod error;
mod log;
mod log_unstable;
pub mod progress;
pub mod quorum;
// `raft/raft.rs` mirrors etcd raft's layout (raft.go inside package raft).
#[allow(clippy::module_inception)]
mod raft;
mod raw_node;
mod read_only;
mod ready;
pub mod storage;
pub mod types;

#[cfg(test)]
mod chaos_tests;
#[cfg(test)]
mod interaction_tests;
#[cfg(test)]
mod paper_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use confchange::{ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType};
pub use config::Config;
pub use error::{RaftError, Result};
pub use progress::{Progress, ProgressState};
pub use raw_node::{RawNode, Status};
pub use ready::Ready;
pub use storage::{MemStorage, Storage};
pub use types::{
    ConfState, Entry, EntryKind, HardState, Message, MessageBody, NO_NODE, NodeId, ReadState, Role,
    SnapshotMeta, SoftState,
};
