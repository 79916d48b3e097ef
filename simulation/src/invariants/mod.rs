//! Safety properties checked after every simulated event, one per file. Each names its
//! source (the Raft paper's Figure 3 properties, etcd's MVCC contract) in its doc comment.
//!
//! The cluster reports *observations* ([`NodeState`], [`Persisted`], [`Applied`],
//! [`Restarted`], a crash, history reads and watch responses, and the [`Final`] state); [`InvariantSet`] keeps the shared
//! [`History`] (every node's durable log and the committed sequence of applied entries) and
//! hands each observation to the invariants that care. The first failed check stops the run
//! with a [`Violation`] naming the invariant.

mod compaction_safety;
mod durability;
mod durable_apply;
mod election_safety;
mod kv_model;
mod leader_completeness;
mod lease_expiry;
mod linearizable_reads;
mod log_matching;
mod monotonic_state;
mod revision_sequence;
mod snapshot_image;
mod state_machine_safety;
mod store_progress;
mod watch_delivery;

use std::collections::BTreeMap;
use std::fmt;

use ferrokv::pb::mvccpb::KeyValue;
use ferrokv::raft::{Entry, HardState, NodeId, Role, SnapshotMeta};

use ferrokv::pb::etcdserverpb::WatchResponse;

use crate::trace::fnv1a;
use crate::watch::WatchRecord;
use crate::workload::Ack;

pub use compaction_safety::CompactionSafety;
pub use durability::Durability;
pub use durable_apply::DurableApply;
pub use election_safety::ElectionSafety;
pub use kv_model::KvModelAgreement;
pub use leader_completeness::LeaderCompleteness;
pub use lease_expiry::LeaseExpiry;
pub use linearizable_reads::{LinearizableReads, ServedRead};
pub use log_matching::LogMatching;
pub use monotonic_state::MonotonicState;
pub use revision_sequence::RevisionSequence;
pub use snapshot_image::SnapshotImage;
pub use state_machine_safety::StateMachineSafety;
pub use store_progress::StoreProgress;
pub use watch_delivery::{HistoryRead, WatchDelivery};

/// A broken invariant: which one, and the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name, e.g. `"election safety"`.
    pub invariant: &'static str,
    /// What was observed, with node ids, terms and indexes.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// Result of one check.
pub type Check = Result<(), Violation>;

/// Shorthand for building a failed [`Check`].
pub(crate) fn violated(invariant: &'static str, detail: String) -> Check {
    Err(Violation { invariant, detail })
}

/// One node's Raft state right after it handled an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// The node.
    pub node: NodeId,
    /// How many times it has been started (1 for the first start); in-memory state belongs
    /// to one incarnation.
    pub incarnation: u64,
    /// In-memory term, vote, commit index.
    pub hard_state: HardState,
    /// Role.
    pub role: Role,
    /// Highest index handed to the application (`Status::applied`).
    pub applied: u64,
    /// Last log index, persisted or not.
    pub last_index: u64,
    /// No write in flight and nothing pending in the core: the durable log *is* the node's
    /// whole log.
    pub settled: bool,
}

/// A write reached a node's disk.
#[derive(Debug)]
pub struct Persisted<'a> {
    /// The node.
    pub node: NodeId,
    /// The hard state written, if any.
    pub hard_state: Option<HardState>,
    /// A leader's snapshot written first, if any: the whole log is replaced by it.
    pub snapshot: Option<&'a SnapshotMeta>,
    /// The entries written (replacing the stored suffix from the first one's index).
    pub entries: &'a [Entry],
}

/// A node applied a committed entry to its MVCC store.
#[derive(Debug)]
pub struct Applied<'a> {
    /// The node.
    pub node: NodeId,
    /// The entry.
    pub entry: &'a Entry,
    /// Store revision before and after applying it.
    pub revision_before: i64,
    /// Store revision after applying it.
    pub revision_after: i64,
    /// The store's applied index after applying it.
    pub applied_index_after: u64,
}

/// A node replaced its store by a leader's image (InstallSnapshot, docs/snapshots.md §2).
#[derive(Debug)]
pub struct Installed<'a> {
    /// The node.
    pub node: NodeId,
    /// The snapshot point the image is of.
    pub meta: &'a SnapshotMeta,
    /// The store's applied index before the install.
    pub applied_index_before: u64,
    /// The store's revision before the install.
    pub revision_before: i64,
    /// The store's applied index after it, read back from the reopened store.
    pub applied_index_after: u64,
    /// The store's revision after it.
    pub revision_after: i64,
    /// Every live key of the installed store, in key order.
    pub key_space: &'a [KeyValue],
    /// The installed store's lease table, `(id, TTL seconds)` in id order.
    pub leases: &'a [(i64, i64)],
}

/// A node's durable log and store as they stand after a disk event (a write or compaction
/// made durable, a restart's repair, a crash).
#[derive(Clone, Copy, Debug)]
pub struct DurableNode {
    /// The node.
    pub node: NodeId,
    /// Last index the durable log compacted (`first_index − 1`; 0 = never compacted).
    pub compacted_through: u64,
    /// The store's durable applied index (what a crash now keeps).
    pub store_durable_applied_index: u64,
}

/// A node came back after a crash.
#[derive(Clone, Copy, Debug)]
pub struct Restarted {
    /// The node.
    pub node: NodeId,
    /// The hard state loaded from its disk.
    pub durable: HardState,
    /// Applied index of its reopened MVCC store.
    pub kv_applied_index: u64,
    /// The store's applied index as of its last sync before the crash (what must survive).
    pub kv_synced_applied_index: u64,
    /// Revision of its reopened MVCC store.
    pub kv_revision: i64,
}

/// The end of a run: every node's final key space, and the acknowledged requests.
#[derive(Debug)]
pub struct Final<'a> {
    /// Each node's visible key-values at its current revision, in key order.
    pub key_spaces: &'a BTreeMap<NodeId, Vec<KeyValue>>,
    /// Requests whose proposer saw them applied.
    pub acks: &'a [Ack],
    /// Each node's lease table, `(id, TTL seconds)` in id order.
    pub lease_tables: &'a BTreeMap<NodeId, Vec<(i64, i64)>>,
}

/// One applied entry as first seen by any node: the committed log, as far as applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedEntry {
    /// The entry's term.
    pub term: u64,
    /// The entry's payload (an encoded `InternalRequest`, or empty for a no-op).
    pub data: Vec<u8>,
    /// The store revision right after applying it.
    pub revision: i64,
}

/// A node's durable log as the invariants track it: per index the term and a hash of the
/// whole prefix through that index, so "same prefix" is one comparison.
#[derive(Clone, Debug, Default)]
pub struct LogMirror {
    /// `(term, prefix hash)` of index `i` at position `i - 1`.
    pub entries: Vec<(u64, u64)>,
}

impl LogMirror {
    /// Applies a write (index `i` replaces every entry `≥ i`); returns the first index changed.
    fn apply(&mut self, entries: &[Entry]) -> Option<u64> {
        let first = entries.first()?.index;
        self.entries.truncate(first as usize - 1);
        let mut hash = self.entries.last().map_or(0, |e| e.1);
        for e in entries {
            debug_assert_eq!(
                e.index as usize,
                self.entries.len() + 1,
                "disk checked gaps"
            );
            hash = fnv1a(hash, &e.term.to_be_bytes());
            hash = fnv1a(hash, &e.data);
            self.entries.push((e.term, hash));
        }
        Some(first)
    }

    /// Last index.
    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Term at `index` (1-based), if present.
    pub fn term(&self, index: u64) -> Option<u64> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        self.entries.get(i).map(|e| e.0)
    }
}

/// What every invariant may consult: the durable logs and the committed (applied) sequence.
#[derive(Debug, Default)]
pub struct History {
    /// Each node's durable log.
    pub logs: BTreeMap<NodeId, LogMirror>,
    /// `committed[i - 1]` is the entry applied at index `i` (by whichever node first did).
    pub committed: Vec<CommittedEntry>,
}

impl History {
    /// The committed sequence through `index` as a [`LogMirror`]'s `(term, prefix hash)`
    /// entries: the log a snapshot at `index` stands for. `None` if not applied that far.
    pub fn committed_prefix(&self, index: u64) -> Option<Vec<(u64, u64)>> {
        let entries = self.committed.get(..usize::try_from(index).ok()?)?;
        let mut hash = 0;
        Some(
            entries
                .iter()
                .map(|c| {
                    hash = fnv1a(hash, &c.term.to_be_bytes());
                    hash = fnv1a(hash, &c.data);
                    (c.term, hash)
                })
                .collect(),
        )
    }

    /// The store revision after applying index `index` (1 for index 0: an empty store).
    pub fn revision_at(&self, index: u64) -> Option<i64> {
        if index == 0 {
            return Some(1);
        }
        self.committed.get(index as usize - 1).map(|c| c.revision)
    }
}

/// All invariants plus the shared history.
#[derive(Debug, Default)]
pub struct InvariantSet {
    /// The shared record.
    pub history: History,
    /// Raft §5.2.
    pub election_safety: ElectionSafety,
    log_matching: LogMatching,
    leader_completeness: LeaderCompleteness,
    state_machine_safety: StateMachineSafety,
    monotonic_state: MonotonicState,
    durable_apply: DurableApply,
    revision_sequence: RevisionSequence,
    compaction_safety: CompactionSafety,
    store_progress: StoreProgress,
    /// etcd watch guarantees.
    pub watch_delivery: WatchDelivery,
    /// etcd lessor: no early expiry.
    pub lease_expiry: LeaseExpiry,
}

impl InvariantSet {
    /// After any event a node handled.
    pub fn on_state(&mut self, s: &NodeState) -> Check {
        self.election_safety.on_state(s)?;
        self.monotonic_state.on_state(s)?;
        self.leader_completeness.on_state(s, &self.history)
    }

    /// After a write became durable on a node. A snapshot in it replaces the mirrored log by
    /// the committed sequence through its index (what the snapshot stands for), after checking
    /// that its term is the committed entry's there.
    pub fn on_persisted(&mut self, p: &Persisted<'_>) -> Check {
        self.monotonic_state.on_persisted(p)?;
        let mut changed = None;
        if let Some(snapshot) = p.snapshot {
            let prefix = self.history.committed_prefix(snapshot.index);
            let committed_term = self.history.committed.get(snapshot.index as usize - 1);
            match (prefix, committed_term) {
                (Some(prefix), Some(c)) if c.term == snapshot.term => {
                    self.history.logs.entry(p.node).or_default().entries = prefix;
                    changed = Some(1);
                }
                (_, c) => {
                    return violated(
                        "log matching (Raft §5.3)",
                        format!(
                            "n{} persisted snapshot {}/{}, but the committed entry there is \
                             {:?}",
                            p.node,
                            snapshot.term,
                            snapshot.index,
                            c.map(|c| c.term)
                        ),
                    );
                }
            }
        }
        let log = self.history.logs.entry(p.node).or_default();
        if let Some(first) = log.apply(p.entries) {
            changed = Some(changed.map_or(first, |c: u64| c.min(first)));
        }
        if let Some(first) = changed {
            self.log_matching.on_changed(p.node, first, &self.history)?;
        }
        Ok(())
    }

    /// After a node installed a leader's store image.
    pub fn on_installed(&mut self, i: &Installed<'_>) -> Check {
        SnapshotImage::check(i, &self.history)?;
        self.store_progress.on_installed(i)?;
        self.monotonic_state.on_installed(i);
        self.revision_sequence.on_installed(i);
        Ok(())
    }

    /// After a node's durable log or store changed (see [`DurableNode`]).
    pub fn on_durable(&mut self, d: &DurableNode) -> Check {
        self.compaction_safety.check(d)
    }

    /// A store re-applied an entry its installed image already covered (the applier skipped
    /// it): the entry must still be the committed one.
    pub fn on_replayed(&mut self, node: NodeId, entry: &Entry) -> Check {
        self.state_machine_safety
            .on_replayed(node, entry, &self.history)
    }

    /// After a node applied an entry.
    pub fn on_applied(&mut self, a: &Applied<'_>) -> Check {
        self.store_progress.on_applied(a)?;
        self.revision_sequence.on_applied(a)?;
        self.monotonic_state.on_applied(a)?;
        self.state_machine_safety.on_applied(a, &mut self.history)
    }

    /// When a node serves a linearizable read.
    pub fn on_read_served(&mut self, r: &ServedRead<'_>) -> Check {
        LinearizableReads::check(r, &self.history)
    }

    /// When a node read a watcher's history: see [`WatchDelivery::on_history_read`].
    pub fn on_history_read(
        &mut self,
        node: NodeId,
        applied_index: u64,
        watch: (ferrokv::watch::StreamId, i64),
        read: HistoryRead,
        compacted: bool,
    ) -> Check {
        self.watch_delivery.on_history_read(
            &self.history,
            node,
            applied_index,
            watch,
            read,
            compacted,
        )
    }

    /// When a watch client read a response: see [`WatchDelivery::on_response`]. Returns
    /// whether the watch ended.
    pub fn on_watch_response(
        &mut self,
        w: &mut WatchRecord,
        response: &WatchResponse,
        read: Option<HistoryRead>,
    ) -> Result<bool, Violation> {
        self.watch_delivery
            .on_response(&self.history, w, response, read)
    }

    /// When a watch client read a progress response: see [`WatchDelivery::on_progress`].
    pub fn on_watch_progress<'a>(
        &mut self,
        watches: impl Iterator<Item = &'a mut WatchRecord>,
        revision: i64,
    ) -> Check {
        self.watch_delivery
            .on_progress(&self.history, watches, revision)
    }

    /// At the end, for each watch on a running node: see [`WatchDelivery::on_final`].
    pub fn on_watch_final(&mut self, w: &WatchRecord, current_revision: i64) -> Check {
        self.watch_delivery
            .on_final(&self.history, w, current_revision)
    }

    /// After a node crashed (its in-memory state is gone); `durable` is what its disks kept.
    pub fn on_crash(&mut self, node: NodeId, durable: &DurableNode, store_revision: i64) -> Check {
        self.leader_completeness.on_crash(node);
        self.store_progress
            .on_crash(node, durable.store_durable_applied_index, store_revision);
        self.compaction_safety.check(durable)
    }

    /// After a node restarted from its disk and store.
    pub fn on_restart(&mut self, r: &Restarted) -> Check {
        self.monotonic_state.on_restart(r)?;
        self.durable_apply.on_restart(r)?;
        self.store_progress.on_restart(r)?;
        self.revision_sequence.on_restart(r, &self.history)
    }

    /// At the end of the liveness phase.
    pub fn on_final(&mut self, f: &Final<'_>) -> Check {
        LeaseExpiry::check_final(f.lease_tables)?;
        KvModelAgreement::check(f, &self.history)?;
        Durability::check(f, &self.history)
    }
}
