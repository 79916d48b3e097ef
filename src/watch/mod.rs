//! Watch: streams of the changes applied to the MVCC store (etcd `Watch` service).
//!
//! | file | concept |
//! | --- | --- |
//! | [`watcher`] | one watch: its key range, filters, `prev_kv` choice and the next revision it expects |
//! | [`hub`] | [`Hub`], the pure core: watchers classified synced / unsynced, events turned into per-watcher responses |
//! | [`watcher_group`] | [`watcher_group::WatcherGroup`]: watchers indexed by key and range, so a revision visits only the watchers it concerns |
//! | [`interval_tree`] | [`interval_tree::IntervalTree`]: the stabbing query "which ranges hold this key" behind the group |
//! | [`fragment`] | splitting a response above the size limit into fragments (`WatchCreateRequest.fragment`) |
//! | [`actor`] | `WatchHub`, the actor that owns a [`Hub`], the per-stream queues, and asks the `StoreActor` for history |
//!
//! The core has no actix, tokio or clock in scope, so every rule (the seam between history
//! and live events, filters, duplicate ids, compaction) is unit-tested in [`hub`]. See
//! `docs/watch.md` for how an event travels from apply to a client.

pub mod actor;
pub mod fragment;
pub mod hub;
pub mod interval_tree;
pub mod watcher;
pub mod watcher_group;

pub use hub::{Delivery, Fetch, History, Hub, StreamId};
pub use watcher::Watcher;

#[cfg(test)]
mod model_test;
