//! Every message that passes between actors, in one place (STYLE.md: "actors know messages,
//! not each other"). Actors hold `Recipient<M>`s of these, handed to them at construction,
//! so no `actor.rs` imports another actor's type and no `Attach*` message is needed to break
//! an import circle. Messages only the gRPC layer sends (reads, watch streams, lease
//! queries) stay next to the actor that answers them.
//!
//! ```text
//!  peer server ──Step──► RaftActor ──SendMessages──► PeerLink
//!                          │  ▲ ──Persist──► LogActor ──(Persisted)──┘
//!                          │ ApplyCommitted, RegisterWait, CancelWait
//!                          ▼
//!                      StoreActor ──EventsApplied, HistoryFetched──► WatchHub
//!                          │  ▲──────────────FetchHistory──────────────┘
//!                          │ LeaseApplied
//!                          ▼
//!                      LeaseReaper ──Propose(LeaseRevoke)──► RaftActor
//! ```
//!
//! Ordering rule: messages from one sender to one actor arrive in send order (one FIFO
//! mailbox per actor, whichever `Recipient` they went through). The store's waiter
//! registration before the entry's `ApplyCommitted`, and the watch hub's live events before a
//! later history answer (docs/watch.md, "the seam rule"), both rest on it.

use actix::Message;
use tokio::sync::oneshot;

pub use crate::mvcc::LeaseApplied;
use crate::mvcc::applier::ApplyResult;
use crate::node::ProposeError;
use crate::pb::mvccpb::Event;
use crate::raft::{Entry, HardState};
use crate::storage::StorageError;
use crate::watch::{Fetch, History, StreamId};

// ---- to the RaftActor ----------------------------------------------------------------------

/// Advance the Raft clock by this many ticks at once (etcd's initial election tick advance:
/// a booting member need not wait a whole election timeout before its first campaign).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AdvanceTicks(pub u32);

/// Hand leadership to member `to` (etcd `MoveLeader`: the leader catches it up, then sends
/// it TimeoutNow, Raft thesis §3.10). Ignored by a member that is not leader.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TransferLeader {
    /// The transferee.
    pub to: u64,
}

/// Raft messages from a peer (one received batch), stepped together and driven once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Step(pub Vec<crate::raft::Message>);

/// Propose one encoded `InternalRequest` for the log. The answer says only whether it was
/// accepted for proposing; its result comes from the StoreActor when the entry is applied.
/// Errors: [`ProposeError::NoLeader`].
#[derive(Message)]
#[rtype(result = "Result<(), ProposeError>")]
pub struct Propose {
    /// Encoded `peerpb::InternalRequest`, bytes.
    pub data: Vec<u8>,
    /// The request id and where its apply result goes. The RaftActor registers it with the
    /// StoreActor before proposing: both that registration and the later `ApplyCommitted` are
    /// sent from there, so the StoreActor's FIFO mailbox sees them in that order.
    pub waiter: Option<(u64, oneshot::Sender<ApplyResult>)>,
}

// ---- to the LogActor -----------------------------------------------------------------------

/// Make `hard_state` and `entries` durable (one fsync when `sync`), then answer with them, so
/// the sender can update its in-memory view without having cloned them. Errors: the log's
/// [`StorageError`] (fatal for the member).
#[derive(Message)]
#[rtype(result = "Result<Persisted, StorageError>")]
pub struct Persist {
    /// New hard state, if it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot to install in the log (it replaces every stored entry), before `entries`.
    pub snapshot: Option<crate::raft::SnapshotMeta>,
    /// New entries; index `i` replaces any stored entry `≥ i`.
    pub entries: Vec<Entry>,
    /// Whether to fsync (`Ready::must_sync`); false when only the commit index changed.
    pub sync: bool,
}

/// Log compaction behind a snapshot point ([`crate::log::LogStore::compact`]), through the
/// same `LogActor` mailbox as [`Persist`] so it lands after every earlier write. A failure is
/// fatal for the member, as for a failed append.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct CompactLog {
    /// Last index to remove.
    pub through: u64,
    /// Its term.
    pub through_term: u64,
    /// The snapshot point to record.
    pub snapshot: crate::raft::SnapshotMeta,
}

/// The fact that a [`Persist`] is durable, carrying its contents back.
pub struct Persisted {
    /// The hard state that is now durable.
    pub hard_state: Option<HardState>,
    /// The snapshot that is now durable.
    pub snapshot: Option<crate::raft::SnapshotMeta>,
    /// The entries that are now durable.
    pub entries: Vec<Entry>,
}

// ---- to a PeerLink -------------------------------------------------------------------------

/// Raft messages for this link's peer, in send order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendMessages(pub Vec<crate::raft::Message>);

// ---- to the StoreActor ---------------------------------------------------------------------

/// Committed entries, in log order (from the `RaftActor`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyCommitted {
    /// Entries to apply; indexes rise by one.
    pub entries: Vec<Entry>,
}

/// Register interest in the result of the request with this id. Sent by the `RaftActor`
/// just before it proposes the request, so it reaches the store's mailbox before the
/// `ApplyCommitted` carrying the entry (one sender, FIFO mailbox).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterWait {
    /// The `InternalRequest.id` about to be proposed.
    pub id: u64,
    /// Where the apply result goes.
    pub reply: oneshot::Sender<ApplyResult>,
}

/// Forget a waiter whose caller gave up (timeout, proposal refused).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelWait {
    /// The request id registered with [`RegisterWait`].
    pub id: u64,
}

/// Watch: read a watcher's history (`Kv::history`) and answer with [`HistoryFetched`] —
/// through the same mailbox as [`EventsApplied`], so the hub sees the live events of every
/// revision ≤ the history's revision first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FetchHistory(pub Fetch);

// ---- to the WatchHub -----------------------------------------------------------------------

/// The events of one applied entry, which produced store revision `revision` (from the
/// `StoreActor`, in apply order).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EventsApplied {
    /// The store revision the entry produced.
    pub revision: i64,
    /// Its events, in change order, `prev_kv` set when the key existed.
    pub events: Vec<Event>,
}

/// The store took a snapshot point: a consistent view of its keyspaces right after applying
/// entry `index` (every `--snapshot-count` entries; docs/snapshots.md §1). To the `RaftActor`,
/// whose driver records the point and compacts the log below it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StorePoint {
    /// The applied index the view holds.
    pub index: u64,
}

/// The outcome of sending a store image to `to` (to the `RaftActor`: the leader's progress
/// for `to` leaves the Snapshot state; etcd raft `ReportSnapshot`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SnapshotSent {
    /// The follower.
    pub to: u64,
    /// Whether the transfer or the install failed.
    pub failed: bool,
}

/// The store was replaced by a leader's snapshot image whose revision is `revision` (sent by
/// the `StoreActor` through the same mailbox as [`EventsApplied`], so in apply order).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StoreRestored {
    /// The store revision of the image.
    pub revision: i64,
}

/// The store's answer to a [`FetchHistory`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct HistoryFetched {
    /// The watcher's stream.
    pub stream: StreamId,
    /// The watcher.
    pub watch_id: i64,
    /// The watcher generation the fetch was for ([`Fetch::generation`]).
    pub generation: u64,
    /// What the store read.
    pub history: History,
}

// ---- to the LeaseReaper --------------------------------------------------------------------

/// A lease change the `StoreActor` applied, in apply order: the applier's own
/// [`LeaseApplied`] (`crate::mvcc::applier`), sent as is.
impl Message for LeaseApplied {
    type Result = ();
}
