//! The node driver: the one place that turns the Raft core's [`Ready`]s into effects.
//!
//! [`NodeDriver`] owns the [`RawNode`], the `Ready` whose write is in flight, the pending
//! ReadIndex requests and the member's published [`RaftStatus`]. It is pure: no actix, tokio,
//! fjall, clock or hidden randomness. Its inputs are calls ([`tick`](NodeDriver::tick),
//! [`step`](NodeDriver::step), [`propose`](NodeDriver::propose),
//! [`read_index`](NodeDriver::read_index), [`persisted`](NodeDriver::persisted),
//! [`applied`](NodeDriver::applied)); its output is a list of [`Effect`]s as data, drained with
//! [`effects`](NodeDriver::effects). Three callers carry them out, and only carry them out:
//!
//! | caller | Send | Persist | Apply |
//! |---|---|---|---|
//! | `RaftActor` (`src/raft/actor.rs`) | `PeerLink`s | `LogActor` (fsync) | `StoreActor` |
//! | the simulator (`simulation/src/cluster.rs`) | simulated network | simulated disk | `mvcc::applier` on a crash-losing backend |
//! | the Raft test harness (`src/raft/testing.rs`) | a queue | at once | a list |
//!
//! so the simulator's thousand seeds test the server's own driving code, not a copy of it.
//!
//! ```text
//!  tick / step / propose / read_index          persisted(write)            applied(index)
//!          │                                        │                           │
//!          ▼                                        ▼                           ▼
//!   RawNode ── ready() ──► StatusChanged       Send (vote grants,          store's applied
//!                          ReadFailed (leader   append acks)               index (for log
//!                            changed)          Apply (committed entries)   compaction)
//!                          Send (messages)     ConfChangeApplied
//!                          ReadReady           advance() ──► next Ready
//!                          Persist(write) ─ waits ─┘
//! ```
//!
//! Rules that live here and nowhere else:
//! - **One write in flight** (the [`Ready`] contract): while a [`Effect::Persist`] is
//!   outstanding no new `Ready` is taken; what accumulates meanwhile lands in the next one, so
//!   one fsync covers many proposals (group commit).
//! - **Persist before promising**: `Ready::persisted_messages` leave only after
//!   [`NodeDriver::persisted`] (Raft Figure 2, "respond to RPCs" after stable storage).
//! - **Apply after durable**: committed entries are handed out after the write of the same
//!   `Ready` is durable, in log order.
//! - **Conf changes are applied to Raft here** (Raft thesis §4.1, a change takes effect when
//!   applied): each committed `ConfChange` entry goes through `RawNode::apply_conf_change`
//!   before `advance`, and is reported as [`Effect::ConfChangeApplied`].
//! - **Reads** (`reads.rs`): `read_index` needs a known leader; reads go in rounds, one
//!   ReadIndex confirmation in flight serving every read that arrived before it (etcd's
//!   linearizable read loop), resent after [`READ_RETRY_TICKS`]; a leader change fails every
//!   pending read with [`ProposeError::LeaderChanged`] (etcd `ErrLeaderChanged`), because the
//!   new leader will never answer a context the old one held.
//! - **Nothing waits for an unrelated fsync**: while a write is in flight, [`effects`] still
//!   hands out the messages that may leave at once (so the leader keeps replicating new
//!   entries: pipelining, thesis §10.2.1) and the reads Raft confirmed.
//!
//! [`effects`]: NodeDriver::effects

use rand::RngCore;

use crate::raft::{
    ConfChange, ConfState, Config, Entry, EntryKind, HardState, MemStorage, Message, NodeId,
    RaftError, RawNode, ReadState, Ready, Role, SnapshotMeta, Storage,
};

mod reads;
#[cfg(test)]
mod tests;

pub use reads::READ_RETRY_TICKS;
use reads::ReadRounds;

/// What the rest of a member may read about Raft without asking the driver: republished
/// (as [`Effect::StatusChanged`]) whenever a `Ready` changes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// Current term.
    pub term: u64,
    /// Known leader, 0 when none.
    pub leader_id: NodeId,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Whether this member is the leader.
    pub is_leader: bool,
}

/// Why a proposal or read could not be started or finished (etcd's texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// No leader is known (election in progress or this member is cut off).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// The leader changed before a read index was confirmed.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
}

/// One `Ready`'s hard state and entries, to make durable atomically (one fsync when `sync`).
///
/// The caller hands the same value back to [`NodeDriver::persisted`] once it is durable, so
/// the entries are moved, never copied, on their way to disk and back into the core's view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Write {
    /// New term/vote/commit, if changed.
    pub hard_state: Option<HardState>,
    /// A snapshot the leader sent (its store image already installed): persisted before the
    /// entries, replacing the whole stored log (`Ready::snapshot`).
    pub snapshot: Option<SnapshotMeta>,
    /// New entries; the entry at index `i` replaces every stored entry with index ≥ `i`.
    pub entries: Vec<Entry>,
    /// Whether durability needs an fsync (`Ready::must_sync`: entries or a term/vote change;
    /// a commit-index-only change may be lost in a crash and relearned from the leader).
    pub sync: bool,
}

/// An effect for the caller to carry out, in the order the driver lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Raft messages that may leave now, in order (several may go to one peer).
    Send(Vec<Message>),
    /// Make the write durable, then call [`NodeDriver::persisted`] with it. At most one is
    /// outstanding.
    Persist(Write),
    /// Committed entries for the state machine, in log order, indexes rising by one
    /// (`ConfChange` entries included: the store only counts them as applied).
    Apply(Vec<Entry>),
    /// A committed membership change took effect in Raft at log `index`; `conf_state` is the
    /// configuration a restart from that applied index must start from.
    ConfChangeApplied {
        /// Log index of the `ConfChange` entry.
        index: u64,
        /// The configuration after it.
        conf_state: ConfState,
    },
    /// The read started by `read_index(id)` may be served once the store has applied through
    /// `index` (Raft thesis §6.4).
    ReadReady {
        /// The id the caller passed to [`NodeDriver::read_index`].
        id: u64,
        /// Commit index the read must wait for.
        index: u64,
    },
    /// The read started by `read_index(id)` will never be confirmed.
    ReadFailed {
        /// The id the caller passed to [`NodeDriver::read_index`].
        id: u64,
        /// Why (always [`ProposeError::LeaderChanged`] today).
        error: ProposeError,
    },
    /// The published status changed.
    StatusChanged(RaftStatus),
    /// Log compaction (docs/snapshots.md §1): record `snapshot` as the latest snapshot point
    /// and remove every durable entry through `through` (term `through_term`). Needs no
    /// fsync and nothing waits for it; the in-memory log is already compacted.
    CompactLog {
        /// Last index to remove (the compaction point).
        through: u64,
        /// Its term (kept as the log's dummy entry).
        through_term: u64,
        /// The snapshot point.
        snapshot: SnapshotMeta,
    },
}

/// Entries kept behind a snapshot point for slow followers, so a follower a little behind
/// catches up from the log instead of a whole image (etcd 3.4 `snapshotCatchUpEntries`).
pub const SNAPSHOT_CATCHUP_ENTRIES: u64 = 5000;

/// What [`NodeDriver::persisted`] refuses: a report that does not match the write in flight.
/// Either is a bug in the caller, reported as what it is (never as corrupt storage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// `persisted` was called while no write was in flight.
    #[error("persisted() called with no write in flight")]
    NothingInFlight,
    /// The reported write is not the one in flight (another last entry or hard state).
    #[error(
        "persisted write (last entry {got:?}) is not the write in flight (last entry {want:?})"
    )]
    WrongWrite {
        /// (index, term) of the last entry the caller reported.
        got: Option<(u64, u64)>,
        /// (index, term) of the last entry of the write in flight.
        want: Option<(u64, u64)>,
    },
    /// The durable entries do not extend the in-memory log (a gap): a core bug.
    #[error("durable entries do not fit the in-memory log: {0}")]
    LogGap(RaftError),
}

/// What identifies a [`Write`]: (index, term) of its last entry, its hard state and its
/// snapshot's (index, term).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WriteId {
    last_entry: Option<(u64, u64)>,
    hard_state: Option<HardState>,
    snapshot: Option<(u64, u64)>,
}

impl WriteId {
    fn of(write: &Write) -> Self {
        WriteId {
            last_entry: write.entries.last().map(|e| (e.index, e.term)),
            hard_state: write.hard_state,
            snapshot: write.snapshot.as_ref().map(|s| (s.index, s.term)),
        }
    }
}

/// The pure node driver; see the module docs.
///
/// Invariant: `in_flight.is_some()` exactly while an [`Effect::Persist`] has been handed out
/// and not yet reported by [`NodeDriver::persisted`].
pub struct NodeDriver {
    raw: RawNode<MemStorage>,
    /// The `Ready` whose write is being made durable.
    in_flight: Option<Ready>,
    /// What identifies the write in flight, to check the caller's report.
    in_flight_write: Option<WriteId>,
    /// The reads started here and not yet answered, in rounds.
    reads: ReadRounds,
    status: RaftStatus,
    /// The store's applied index as last reported by [`NodeDriver::applied`].
    store_applied_index: u64,
    effects: Vec<Effect>,
    /// Configurations applied since the last snapshot point, by log index, over the one in
    /// force at that point (`conf_base`): the configuration of a later point is looked up here.
    conf_history: Vec<(u64, ConfState)>,
    conf_base: ConfState,
    /// Entries kept behind each snapshot point ([`SNAPSHOT_CATCHUP_ENTRIES`]).
    catchup_entries: u64,
}

impl NodeDriver {
    /// A driver around a core built from `config` and `storage` (the durable log loaded into
    /// memory), with election jitter from `rng`.
    ///
    /// Errors: the core's validation of `config` and `storage` ([`RaftError::ConfigInvalid`],
    /// [`RaftError::Storage`]).
    pub fn new(
        config: &Config,
        storage: MemStorage,
        rng: Box<dyn RngCore + Send>,
    ) -> Result<Self, RaftError> {
        let mut rng = rng;
        // Read contexts must never repeat across restarts: a ReadIndex answer sent to this
        // member's previous incarnation can arrive after it restarted, and must not confirm a
        // newer read (found by the simulator, seed 403). Rounds count up from a random start.
        let reads = ReadRounds {
            last_round: rng.next_u64() >> 1,
            ..ReadRounds::default()
        };
        let conf_base = storage.conf_state().clone();
        let mut raw = RawNode::new(config, storage, rng)?;
        let store_applied_index = config.applied;
        let conf_history = replay_conf_changes(&mut raw, config.applied)?;
        // The restored term and commit index: the core reports only *changes* of its hard
        // state in later Readies, so a restarted member must start from what it restored.
        let hs = raw.hard_state();
        let status = RaftStatus {
            term: hs.term,
            commit_index: hs.commit,
            ..RaftStatus::default()
        };
        Ok(NodeDriver {
            raw,
            in_flight: None,
            in_flight_write: None,
            reads,
            status,
            store_applied_index,
            effects: Vec::new(),
            conf_history,
            conf_base,
            catchup_entries: SNAPSHOT_CATCHUP_ENTRIES,
        })
    }

    /// Advances logical time by one tick (the server's `--heartbeat-interval`); resends the
    /// read round unanswered for [`READ_RETRY_TICKS`].
    pub fn tick(&mut self) {
        self.raw.tick();
        let Some(round) = &mut self.reads.in_flight else {
            return;
        };
        round.age_ticks += 1;
        if round.age_ticks < READ_RETRY_TICKS {
            return;
        }
        // Resent under the same context (etcd does the same): the leader ignores a duplicate
        // of a request it still holds, and answers anew one it lost or already answered.
        round.age_ticks = 0;
        let ctx = encode_read_ctx(self.raw.id(), round.id);
        if self.raw.read_index(ctx).is_err() {
            for id in self.reads.take_all() {
                self.effects.push(Effect::ReadFailed {
                    id,
                    error: ProposeError::LeaderChanged,
                });
            }
        }
    }

    /// Steps one message from a peer. Errors: the core's refusal
    /// ([`RaftError::WrongRecipient`], [`RaftError::ProposalDropped`] for a forwarded proposal
    /// or read this node cannot serve); the caller drops the message.
    pub fn step(&mut self, msg: Message) -> Result<(), RaftError> {
        self.raw.step(msg)
    }

    /// Proposes one entry (an encoded `peerpb::InternalRequest`). Its outcome is learned only
    /// by applying it. Errors: [`ProposeError::NoLeader`] when the core drops it (no leader,
    /// candidate, leadership transfer in progress).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), ProposeError> {
        self.raw.propose(data).map_err(|_| ProposeError::NoLeader)
    }

    /// Proposes a membership change (Raft thesis §4). Errors: as [`RawNode::propose_conf_change`].
    pub fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<(), RaftError> {
        self.raw.propose_conf_change(cc)
    }

    /// Starts a linearizable read with the caller's `id` (unique among this member's pending
    /// reads); its answer is a later [`Effect::ReadReady`] or [`Effect::ReadFailed`] with the
    /// same id. It joins the next read round (`reads.rs`); with no round in flight one starts
    /// now.
    ///
    /// Errors: [`ProposeError::NoLeader`] when no leader is known (as published) or the core
    /// refuses the read (a candidate).
    pub fn read_index(&mut self, id: u64) -> Result<(), ProposeError> {
        if self.status.leader_id == 0 {
            return Err(ProposeError::NoLeader);
        }
        self.reads.queued.push(id);
        if self.reads.in_flight.is_none() && !self.start_read_round(ProposeError::NoLeader) {
            // Refused at once: the caller learns it from the error, not from an effect.
            self.effects
                .retain(|e| !matches!(e, Effect::ReadFailed { id: failed, .. } if *failed == id));
            return Err(ProposeError::NoLeader);
        }
        Ok(())
    }

    /// Sends one ReadIndex for every queued read; false (and the reads failed with `error`)
    /// when the core refuses it (no leader known, or a candidate). Reads that were accepted
    /// under a leader fail as [`ProposeError::LeaderChanged`].
    fn start_read_round(&mut self, error: ProposeError) -> bool {
        let round = self.reads.start();
        let ctx = encode_read_ctx(self.raw.id(), round);
        if self.raw.read_index(ctx).is_ok() {
            return true;
        }
        for id in self.reads.take_all() {
            self.effects.push(Effect::ReadFailed { id, error });
        }
        false
    }

    /// Answers the reads of the round a confirmed read state belongs to, then starts the next
    /// round for the reads queued meanwhile.
    fn reads_confirmed(&mut self, states: Vec<ReadState>) {
        let me = self.raw.id();
        for rs in states {
            let round = decode_read_ctx(me, &rs.request_ctx);
            let Some(in_flight) = &self.reads.in_flight else {
                continue;
            };
            if round != Some(in_flight.id) {
                // An answer to a round already answered (a resend answered twice).
                tracing::debug!(index = rs.index, "read state of an old round dropped");
                continue;
            }
            let done = self.reads.in_flight.take().expect("checked").reads;
            for id in done {
                self.effects.push(Effect::ReadReady {
                    id,
                    index: rs.index,
                });
            }
            if !self.reads.queued.is_empty() {
                self.start_read_round(ProposeError::LeaderChanged);
            }
        }
    }

    /// Forgets a read whose caller gave up (timeout); a later answer for it is dropped.
    pub fn cancel_read(&mut self, id: u64) {
        self.reads.cancel(id);
    }

    /// Leader: starts a leadership transfer to voter `to` (thesis §3.10). Ignored elsewhere.
    pub fn transfer_leader(&mut self, to: NodeId) {
        self.raw.transfer_leader(to);
    }

    /// Starts an election now. Errors: [`RaftError::NotVoter`].
    pub fn campaign(&mut self) -> Result<(), RaftError> {
        self.raw.campaign()
    }

    /// Reports that the [`Effect::Persist`] handed out last is durable, handing its write back.
    /// Sends what waited for it, hands out the committed entries and advances the core.
    ///
    /// Errors: [`DriverError`] when no write is in flight or `write` is not that write (a
    /// caller bug; the driver's state is unchanged).
    pub fn persisted(&mut self, write: Write) -> Result<(), DriverError> {
        let Some(want) = self.in_flight_write else {
            return Err(DriverError::NothingInFlight);
        };
        let got = WriteId::of(&write);
        if got != want {
            return Err(DriverError::WrongWrite {
                got: got.last_entry,
                want: want.last_entry,
            });
        }
        let storage = self.raw.storage_mut();
        if let Some(snapshot) = write.snapshot {
            // The store already holds this snapshot's image (the transport installs it before
            // stepping the message); the log now starts after it (Ready contract).
            self.conf_base = snapshot.conf_state.clone();
            self.conf_history.clear();
            storage
                .apply_snapshot(snapshot)
                .map_err(DriverError::LogGap)?;
        }
        storage
            .append(&write.entries)
            .map_err(DriverError::LogGap)?;
        if let Some(hs) = write.hard_state {
            storage.set_hard_state(hs);
        }
        self.in_flight_write = None;
        let ready = self
            .in_flight
            .take()
            .expect("in_flight_write implies in_flight");
        self.finish(ready);
        Ok(())
    }

    /// Reports the store's applied index (what the state machine has applied, durably or
    /// not). Never goes back.
    pub fn applied(&mut self, index: u64) {
        self.store_applied_index = self.store_applied_index.max(index);
    }

    /// Sets how many entries stay behind each snapshot point (default
    /// [`SNAPSHOT_CATCHUP_ENTRIES`]; the simulator and tests use fewer).
    pub fn set_snapshot_catchup_entries(&mut self, entries: u64) {
        self.catchup_entries = entries;
    }

    /// The store took a snapshot point at applied index `index` (its view holds exactly the
    /// entries through it; docs/snapshots.md §1). Records the point in the core's storage —
    /// what a follower whose next entry is gone is sent — and compacts the log to
    /// `index − catchup entries`, handing the same to the caller as [`Effect::CompactLog`].
    ///
    /// Safe because the store applied `index` before this call (the caller reports points the
    /// store took after writing that batch), so the removal is written after it in the one
    /// journal. A point at or below the current one, or above the log, is ignored.
    pub fn snapshot_point(&mut self, index: u64) {
        let conf_state = self.conf_at(index);
        let storage = self.raw.storage_mut();
        let snapshot = match storage.create_snapshot(index, conf_state) {
            Ok(meta) => meta,
            Err(e) => {
                tracing::debug!(index, "snapshot point ignored: {e}");
                return;
            }
        };
        let first = storage.first_index().expect("MemStorage never fails");
        let through = index.saturating_sub(self.catchup_entries).max(first - 1);
        let through_term = storage
            .term(through)
            .expect("between first − 1 and the point");
        if through >= first
            && let Err(e) = storage.compact(through)
        {
            tracing::warn!(through, "log compaction refused: {e}");
            return;
        }
        self.prune_conf_history(index);
        self.effects.push(Effect::CompactLog {
            through,
            through_term,
            snapshot,
        });
    }

    /// The outcome of sending the store image of an InstallSnapshot to `to` (etcd raft
    /// `ReportSnapshot`): the leader's progress for `to` leaves the Snapshot state.
    pub fn snapshot_sent(&mut self, to: NodeId, failed: bool) {
        self.raw.report_snapshot(to, failed);
    }

    fn conf_at(&self, index: u64) -> ConfState {
        self.conf_history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.conf_base.clone(), |(_, cs)| cs.clone())
    }

    fn prune_conf_history(&mut self, index: u64) {
        self.conf_base = self.conf_at(index);
        self.conf_history.retain(|(i, _)| *i > index);
    }

    /// Takes every `Ready` the core has until one needs the disk (or none is left) and
    /// returns the effects accumulated so far, in order.
    ///
    /// While a write is in flight, the messages that may leave at once and the confirmed reads
    /// are handed out too (see the module docs): neither needs the disk.
    pub fn effects(&mut self) -> Vec<Effect> {
        if self.in_flight.is_some() {
            let states = self.raw.take_read_states();
            self.reads_confirmed(states);
            let messages = self.raw.take_messages();
            if !messages.is_empty() {
                self.effects.push(Effect::Send(messages));
            }
        }
        while self.drive_one() {}
        std::mem::take(&mut self.effects)
    }

    /// Takes at most one `Ready` into effects (kept for [`NodeDriver::effects`] or
    /// [`NodeDriver::take_effects`]); false when blocked on a write or nothing is ready. For
    /// callers that show one `Ready` at a time (the interaction-test harness).
    pub fn drive_one(&mut self) -> bool {
        if self.in_flight.is_some() || !self.raw.has_ready() {
            return false;
        }
        let mut ready = self.raw.ready();
        self.publish_status(&ready);
        let messages = std::mem::take(&mut ready.messages);
        if !messages.is_empty() {
            self.effects.push(Effect::Send(messages));
        }
        let states = std::mem::take(&mut ready.read_states);
        self.reads_confirmed(states);
        let hard_state = ready.hard_state;
        let snapshot = ready.snapshot.clone();
        let entries = std::mem::take(&mut ready.entries);
        if hard_state.is_none() && snapshot.is_none() && entries.is_empty() {
            self.finish(ready);
            return true;
        }
        let write = Write {
            hard_state,
            snapshot,
            entries,
            sync: ready.must_sync(),
        };
        self.in_flight_write = Some(WriteId::of(&write));
        self.effects.push(Effect::Persist(write));
        self.in_flight = Some(ready);
        true
    }

    /// The effects accumulated so far, without taking new `Ready`s.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// After the write: send what needed it, apply conf changes, hand out committed entries,
    /// advance.
    fn finish(&mut self, mut ready: Ready) {
        let persisted_messages = std::mem::take(&mut ready.persisted_messages);
        if !persisted_messages.is_empty() {
            self.effects.push(Effect::Send(persisted_messages));
        }
        let committed = std::mem::take(&mut ready.committed_entries);
        let mut conf_changes = Vec::new();
        for entry in committed.iter().filter(|e| e.kind == EntryKind::ConfChange) {
            match ConfChange::decode(&entry.data) {
                Ok(cc) => match self.raw.apply_conf_change(&cc) {
                    Ok(conf_state) => {
                        self.raw.storage_mut().set_conf_state(conf_state.clone());
                        self.conf_history.push((entry.index, conf_state.clone()));
                        conf_changes.push(Effect::ConfChangeApplied {
                            index: entry.index,
                            conf_state,
                        });
                    }
                    // Refused alike on every member (it does not fit the configuration).
                    Err(e) => tracing::warn!(index = entry.index, "conf change ignored: {e}"),
                },
                Err(e) => tracing::error!(index = entry.index, "undecodable conf change: {e}"),
            }
        }
        if !committed.is_empty() {
            self.effects.push(Effect::Apply(committed));
        }
        self.effects.extend(conf_changes);
        self.raw.advance(ready);
    }

    fn publish_status(&mut self, ready: &Ready) {
        let mut status = self.status.clone();
        let term = ready.hard_state.map_or(self.status.term, |hs| hs.term);
        if let Some(ss) = &ready.soft_state {
            status.leader_id = ss.leader_id;
            status.is_leader = ss.role == Role::Leader;
            let me = self.raw.id();
            // etcd's wording, which operators and scripts grep for.
            if status.is_leader && !self.status.is_leader {
                tracing::info!("{me:x} became leader at term {term}");
            }
            if ss.leader_id != self.status.leader_id {
                if ss.leader_id == 0 {
                    let lost = self.status.leader_id;
                    tracing::info!("raft.node: {me:x} lost leader {lost:x} at term {term}");
                } else {
                    let leader = ss.leader_id;
                    tracing::info!("raft.node: {me:x} elected leader {leader:x} at term {term}");
                }
                for id in self.reads.take_all() {
                    self.effects.push(Effect::ReadFailed {
                        id,
                        error: ProposeError::LeaderChanged,
                    });
                }
            }
        }
        if let Some(hs) = &ready.hard_state {
            status.term = hs.term;
            status.commit_index = hs.commit;
        }
        if status != self.status {
            self.status = status.clone();
            self.effects.push(Effect::StatusChanged(status));
        }
    }

    /// Whether nothing is in flight and nothing is ready (the simulator's "settled").
    pub fn is_settled(&self) -> bool {
        self.in_flight.is_none() && !self.raw.has_ready()
    }

    /// Whether a write is in flight.
    pub fn is_persisting(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The status as last published.
    pub fn status(&self) -> &RaftStatus {
        &self.status
    }

    /// The store's applied index as last reported by [`NodeDriver::applied`] (at start:
    /// `Config::applied`).
    pub fn store_applied_index(&self) -> u64 {
        self.store_applied_index
    }

    /// Ids of the reads waiting for an answer: the round in flight first, then the queued.
    pub fn pending_reads(&self) -> impl Iterator<Item = u64> + '_ {
        self.reads.pending()
    }

    /// The core, to read its state (`status()`, `storage()`).
    pub fn raw(&self) -> &RawNode<MemStorage> {
        &self.raw
    }
}

/// Restart: the configuration the core starts from is the stored one (bootstrap, or the latest
/// snapshot's); every configuration change after it up to the store's applied index was
/// applied before the restart but is not handed out again (`Config::applied`), so apply it to
/// the core now, in log order, as etcd re-applies the WAL's conf changes at start. Returns
/// the (index, configuration) history for [`NodeDriver::conf_at`]-style lookups. Errors: the
/// storage failing to read its own entries.
fn replay_conf_changes(
    raw: &mut RawNode<MemStorage>,
    applied: u64,
) -> Result<Vec<(u64, ConfState)>, RaftError> {
    use crate::raft::Storage;
    let base_index = raw.storage().snapshot()?.index;
    let last = raw.storage().last_index()?.min(applied);
    let mut history = Vec::new();
    if last <= base_index {
        return Ok(history);
    }
    let entries = raw.storage().entries(base_index + 1, last + 1, None)?;
    for entry in entries.iter().filter(|e| e.kind == EntryKind::ConfChange) {
        let Ok(cc) = ConfChange::decode(&entry.data) else {
            continue;
        };
        match raw.apply_conf_change(&cc) {
            Ok(conf_state) => {
                raw.storage_mut().set_conf_state(conf_state.clone());
                history.push((entry.index, conf_state));
            }
            Err(e) => tracing::warn!(index = entry.index, "conf change ignored at restart: {e}"),
        }
    }
    Ok(history)
}

/// A read index request context: the member's id then the read round's id, 16 bytes
/// big-endian. The leader keys pending reads by context (etcd raft's readOnly does the same),
/// so contexts must be unique across members, not only within one.
pub fn encode_read_ctx(member_id: NodeId, id: u64) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(16);
    ctx.extend_from_slice(&member_id.to_be_bytes());
    ctx.extend_from_slice(&id.to_be_bytes());
    ctx
}

/// The round id of a context made by [`encode_read_ctx`] for `member_id`; `None` for another
/// member's context or another shape.
pub fn decode_read_ctx(member_id: NodeId, ctx: &[u8]) -> Option<u64> {
    if ctx.len() != 16 {
        return None;
    }
    let (member, id) = ctx.split_at(8);
    if member != member_id.to_be_bytes() {
        return None;
    }
    id.try_into().ok().map(u64::from_be_bytes)
}
