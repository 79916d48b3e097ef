//! `Ready`: one batch of effects the core asks its caller to carry out.

use super::types::{Entry, HardState, Message, ReadState, SnapshotMeta, SoftState};

/// Effects produced by a [`RawNode`](super::RawNode) since the last `advance`.
///
/// # Contract (the caller must do these steps in this order)
/// 1. **Send `messages` at once** — they need nothing durable. This includes the leader's
///    AppendEntries: a leader may replicate entries before its own append is durable
///    (Raft thesis §10.2.1), because it counts itself in the commit quorum only after the
///    entries are reported durable by `advance`.
/// 2. **Persist** `snapshot` (if `Some`), `hard_state` (if `Some`) and `entries`, atomically,
///    with one fsync for the whole Ready (group commit), the snapshot first: it replaces the
///    whole stored log (everything before and at its index is gone, the log is empty after
///    (`snapshot.index`, `snapshot.term`), the stored configuration becomes
///    `snapshot.conf_state`), and `entries`, if any, continue right after it. An entry at
///    index *i* replaces every stored entry with index ≥ *i* (a new leader may overwrite an
///    uncommitted suffix). Then copy them into the `Storage` the core reads, in the same
///    order (`MemStorage::apply_snapshot`, `set_hard_state`, `append` via
///    `RawNode::storage_mut`).
///
///    The state machine must install the store image that matches `snapshot` (the
///    transport delivered it before the `InstallSnapshot` was stepped, docs/snapshots.md §2)
///    before it applies any committed entry of a later Ready: those entries start right
///    after `snapshot.index`. A Ready with a snapshot carries no `committed_entries`.
/// 3. **Then send `persisted_messages`**: vote grants/rejections and AppendEntries acks. A
///    node never promises what a crash could make it forget (Raft Figure 2: persist before
///    answering RPCs).
/// 4. **Apply `committed_entries`** in order (they may include entries from `entries` of this
///    same Ready, which is why step 2 comes first). Handing them to an apply actor is enough;
///    only the order matters. For each entry of kind `ConfChange`, call
///    `RawNode::apply_conf_change` (before `advance`) and persist the returned `ConfState`.
///    Serve the reads in `read_states` once the state machine has applied through each
///    `ReadState::index`.
/// 5. **Call `RawNode::advance(ready)`** with this Ready (its public lists may have been
///    moved out: `advance` uses what `ready()` recorded privately). It tells the core that the
///    snapshot and entries are durable (the leader then counts its own log as matched through
///    the last of them), that the committed entries were handed to the application — and,
///    for a snapshot, that the state machine now stands at `snapshot.index` (the applied
///    index becomes that index) — and delivers the node's own vote and append
///    acknowledgement.
///
/// Only one Ready is outstanding at a time: between `ready()` and `advance()`,
/// `has_ready()` returns false; new input is accumulated for the next Ready.
///
/// Invariants: `entries` are contiguous, and start at `snapshot.index + 1` when a snapshot is
/// present; `committed_entries` are contiguous and start right after the last index applied
/// (`advance` of the previous Ready, or the snapshot index); `snapshot` and
/// `committed_entries` are never both non-empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// New leader or role, if changed since the previous Ready. Not persisted.
    pub soft_state: Option<SoftState>,
    /// Term, vote and commit index to persist, if changed since the previous Ready.
    pub hard_state: Option<HardState>,
    /// A snapshot point received from the leader to persist before everything else (Raft §7,
    /// etcd raft `Ready.Snapshot`): the stored log is replaced by it. Metadata only; the
    /// store image travels outside the core.
    pub snapshot: Option<SnapshotMeta>,
    /// Entries to append to stable storage (replacing any stored entry at or after
    /// `entries[0].index`).
    pub entries: Vec<Entry>,
    /// Messages that may be sent immediately.
    pub messages: Vec<Message>,
    /// Messages that may be sent only after `hard_state` and `entries` are durable.
    pub persisted_messages: Vec<Message>,
    /// Committed entries to apply, in log order.
    pub committed_entries: Vec<Entry>,
    /// Completed ReadIndex requests (thesis §6.4).
    pub read_states: Vec<ReadState>,
    /// Messages this node sends itself (its own vote, its own append ack); the core steps
    /// them in `advance`, i.e. after the persist.
    pub(crate) self_messages: Vec<Message>,
    /// Whether persisting needs an fsync (see [`Ready::must_sync`]).
    pub(crate) must_sync: bool,
    /// (index, term) of the last entry of `entries`, recorded by `ready()` so `advance` does
    /// not depend on the caller leaving the public lists in place (callers move them out).
    pub(crate) last_entry: Option<(u64, u64)>,
    /// Index of the last entry of `committed_entries`, for the same reason.
    pub(crate) last_committed_index: Option<u64>,
    /// Index of `snapshot`, for the same reason.
    pub(crate) snapshot_index: Option<u64>,
}

impl Ready {
    /// Whether step 2 of the contract needs an fsync: true when there is a snapshot or are
    /// entries to append, or the term or vote changed. A change of only the commit index may be written without
    /// fsync, because a lost commit index is recovered from the leader (etcd raft `MustSync`).
    pub fn must_sync(&self) -> bool {
        self.must_sync
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.self_messages.is_empty()
    }
}
