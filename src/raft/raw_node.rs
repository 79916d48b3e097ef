//! `RawNode`: the public face of the Raft core — input methods plus the `ready`/`advance`
//! cycle that hands effects to the caller.

use std::collections::BTreeMap;

use rand::RngCore;

use super::confchange::ConfChange;
use super::config::Config;
use super::error::{RaftError, Result};
use super::progress::Progress;
use super::raft::Raft;
use super::ready::Ready;
use super::storage::Storage;
use super::types::{
    ConfState, Entry, EntryKind, HardState, Message, NodeId, ReadState, Role, SoftState,
};

/// A snapshot of a node's state for `Maintenance.Status` and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Term, vote and commit index (in memory; may be ahead of what is persisted).
    pub hard_state: HardState,
    /// Role and known leader.
    pub soft_state: SoftState,
    /// Highest index handed to the application and acknowledged by `advance`.
    pub applied: u64,
    /// Last log index (persisted or not).
    pub last_index: u64,
    /// Current configuration.
    pub conf_state: ConfState,
    /// On a leader: every member's replication progress (this node included). Empty otherwise.
    pub progress: BTreeMap<NodeId, Progress>,
    /// On a leader: target of an ongoing leadership transfer, or 0.
    pub lead_transferee: NodeId,
}

/// A Raft node driven by its caller: feed it `tick`, `step`, `propose`, `read_index`; drain
/// its effects with `ready`; report them done with `advance` (see [`Ready`] for the contract).
///
/// The node owns its storage `S` (for [`MemStorage`](super::MemStorage), the caller copies
/// each Ready's entries and hard state into it through [`RawNode::storage_mut`] before
/// `advance`). Randomness (election timeout jitter) comes only from the `rng` given to `new`,
/// time only from `tick`, so a run is reproducible from its inputs and seed.
pub struct RawNode<S: Storage> {
    pub(crate) raft: Raft<S>,
    prev_soft_state: SoftState,
    prev_hard_state: HardState,
    ready_outstanding: bool,
}

impl<S: Storage> RawNode<S> {
    /// Creates a node from `config`, restoring term, vote, commit index and configuration
    /// from `storage`. It starts as a follower.
    ///
    /// Errors: [`RaftError::ConfigInvalid`] (see [`Config::validate`], or `config.applied`
    /// beyond the stored commit index); storage errors; [`RaftError::Storage`] when the stored
    /// commit index lies outside the stored log.
    pub fn new(config: &Config, storage: S, rng: Box<dyn RngCore + Send>) -> Result<Self> {
        let raft = Raft::new(config, storage, rng)?;
        let prev_soft_state = raft.soft_state();
        let prev_hard_state = raft.hard_state();
        Ok(RawNode {
            raft,
            prev_soft_state,
            prev_hard_state,
            ready_outstanding: false,
        })
    }

    /// Advances logical time by one tick (election timeout, heartbeats, check quorum).
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Starts an election now (with a pre-vote round if `pre_vote` is on). Ignored on a leader.
    /// Errors: [`RaftError::NotVoter`] if this node is not a voter.
    pub fn campaign(&mut self) -> Result<()> {
        if !self.raft.promotable() {
            return Err(RaftError::NotVoter);
        }
        self.raft.hup(false);
        Ok(())
    }

    /// Proposes `data` as a new `Normal` entry. On the leader it is appended and replicated;
    /// on a follower that knows a leader it is forwarded as `Propose`. The caller learns the
    /// outcome only by seeing the entry among `committed_entries` (it may be lost if
    /// leadership changes: match applied entries to requests by an id inside `data`).
    ///
    /// Errors: [`RaftError::ProposalDropped`] when no leader is known, this node is a
    /// candidate, or a leadership transfer is in progress.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<()> {
        let entry = Entry {
            term: 0,
            index: 0,
            kind: EntryKind::Normal,
            data,
        };
        self.raft.propose_entries(vec![entry])
    }

    /// Proposes a membership change as an entry of kind `ConfChange` (Raft thesis §4). It
    /// takes effect only when the application calls [`RawNode::apply_conf_change`] for the
    /// committed entry. Forwarded to the leader like `propose`.
    ///
    /// Errors: as `propose`; on the leader also [`RaftError::ConfChangePending`] (an earlier
    /// change is not applied yet) and [`RaftError::ConfChangeInvalid`] (leaving a joint
    /// configuration that does not exist, or changing members while joint).
    pub fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<()> {
        let entry = Entry {
            term: 0,
            index: 0,
            kind: EntryKind::ConfChange,
            data: cc.encode(),
        };
        self.raft.propose_entries(vec![entry])
    }

    /// Applies a committed `ConfChange` entry (decode its data with [`ConfChange::decode`]).
    /// Call it for each such entry of `Ready::committed_entries`, in order, before
    /// `advance`, and persist the returned configuration with the applied index
    /// (`MemStorage::set_conf_state`): it is the configuration a restart starts from.
    ///
    /// Errors: [`RaftError::ConfChangeInvalid`] if the change does not fit the current
    /// configuration (it is then ignored on every node alike).
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState> {
        self.raft.apply_conf_change(cc)
    }

    /// Requests a linearizable read point (Raft thesis §6.4). When confirmed, a
    /// [`ReadState`](super::ReadState) with the same `ctx` appears in a later Ready; serve the
    /// read once applied through its `index`. `ctx` must be unique among the reads pending at
    /// the leader from *all* members (the leader keys pending reads by ctx and ignores a
    /// duplicate): use a request id that includes this member's id, as etcd does.
    ///
    /// Errors: [`RaftError::ProposalDropped`] when no leader is known or this node is a
    /// candidate. A read accepted here can still be lost silently (the leader steps down, a
    /// message is dropped): callers wait with a timeout and retry, as etcd does.
    pub fn read_index(&mut self, ctx: Vec<u8>) -> Result<()> {
        self.raft.read_index(ctx)
    }

    /// Processes a message from a peer.
    ///
    /// Errors: [`RaftError::WrongRecipient`] if `msg.to` is not this node or `msg.from` is
    /// this node; [`RaftError::ProposalDropped`] for a forwarded `Propose`/`ReadIndex` this
    /// node cannot serve. Other problems (stale terms, unknown senders) are ignored, as the
    /// network may deliver anything.
    pub fn step(&mut self, msg: Message) -> Result<()> {
        if msg.to != self.raft.id || msg.from == self.raft.id {
            return Err(RaftError::WrongRecipient {
                id: self.raft.id,
                to: msg.to,
            });
        }
        self.raft.step(msg)
    }

    /// Leader: the transport's outcome for the `InstallSnapshot` it carried to `to` (etcd raft
    /// `ReportSnapshot`): `failed` when the store image could not be delivered or installed.
    /// Replication to `to` resumes in Probe — after the snapshot index on success, after the
    /// match index (so the snapshot is sent again) on failure — once the follower answers or
    /// a heartbeat response arrives. Ignored on non-leaders and when `to` waits for no
    /// snapshot.
    pub fn report_snapshot(&mut self, to: NodeId, failed: bool) {
        self.raft.report_snapshot(to, failed);
    }

    /// Leader: transfers leadership to voter `transferee` (thesis §3.10). Ignored elsewhere.
    pub fn transfer_leader(&mut self, transferee: NodeId) {
        self.raft.transfer_leader(transferee);
    }

    /// Takes the messages that may leave at once (step 1 of the [`Ready`] contract) without
    /// taking a Ready: a caller whose previous Ready's write is still in flight may send these
    /// now — the leader's AppendEntries for entries it has not made durable yet included
    /// (Raft thesis §10.2.1: the leader counts itself only once `advance` reports them
    /// durable). Never returns a message that needs a persist first (vote grants, append
    /// acks stay for `Ready::persisted_messages`).
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.raft.msgs)
    }

    /// Takes the completed ReadIndex requests without taking a Ready. A read state needs
    /// nothing durable (thesis §6.4: the leader confirmed its commit index with a quorum), so
    /// a read need not wait for an unrelated fsync.
    pub fn take_read_states(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.raft.read_states)
    }

    /// Whether `ready()` has something to hand out. False while a Ready is outstanding.
    pub fn has_ready(&self) -> bool {
        if self.ready_outstanding {
            return false;
        }
        let r = &self.raft;
        r.soft_state() != self.prev_soft_state
            || r.hard_state() != self.prev_hard_state
            || r.raft_log.unstable.snapshot.is_some()
            || !r.raft_log.unstable.entries.is_empty()
            || !r.msgs.is_empty()
            || !r.msgs_after_append.is_empty()
            || r.raft_log.has_next_committed_entries()
            || !r.read_states.is_empty()
    }

    /// Takes the pending effects. Call [`RawNode::advance`] with the result before calling
    /// `ready` again.
    ///
    /// Panics if the previous Ready was not advanced (a caller bug that would break the
    /// persistence ordering).
    pub fn ready(&mut self) -> Ready {
        assert!(
            !self.ready_outstanding,
            "ready() called before advance() of the previous Ready"
        );
        self.ready_outstanding = true;
        let r = &mut self.raft;
        let soft_state = r.soft_state();
        let hard_state = r.hard_state();
        let (self_messages, persisted_messages) = std::mem::take(&mut r.msgs_after_append)
            .into_iter()
            .partition(|m| m.to == r.id);
        let snapshot = r.raft_log.unstable.snapshot.clone();
        let must_sync = snapshot.is_some()
            || !r.raft_log.unstable.entries.is_empty()
            || hard_state.term != self.prev_hard_state.term
            || hard_state.vote != self.prev_hard_state.vote;
        let entries = r.raft_log.unstable.entries.clone();
        // None while a snapshot is pending (RaftLog::has_next_committed_entries).
        let committed_entries = r.raft_log.next_committed_entries();
        let ready = Ready {
            must_sync,
            snapshot_index: snapshot.as_ref().map(|s| s.index),
            snapshot,
            last_entry: entries.last().map(|e| (e.index, e.term)),
            last_committed_index: committed_entries.last().map(|e| e.index),
            soft_state: (soft_state != self.prev_soft_state).then_some(soft_state),
            hard_state: (hard_state != self.prev_hard_state).then_some(hard_state),
            entries,
            messages: std::mem::take(&mut r.msgs),
            persisted_messages,
            committed_entries,
            read_states: std::mem::take(&mut r.read_states),
            self_messages,
        };
        self.prev_soft_state = soft_state;
        self.prev_hard_state = hard_state;
        ready
    }

    /// Reports that `ready` was carried out (see the contract on [`Ready`]): its snapshot,
    /// entries and hard state are durable and visible in storage, its committed entries were
    /// handed to the application, and the state machine installed the snapshot's image (the
    /// applied index becomes the snapshot index). Delivers the node's own vote and append
    /// acknowledgement, which may commit entries or win an election (visible in the next
    /// Ready).
    pub fn advance(&mut self, ready: Ready) {
        self.ready_outstanding = false;
        let r = &mut self.raft;
        if let Some(index) = ready.snapshot_index {
            r.raft_log.stable_snap_to(index);
            r.raft_log.applied_to(index);
        }
        if let Some((index, term)) = ready.last_entry {
            r.raft_log.stable_to(index, term);
        }
        if let Some(index) = ready.last_committed_index {
            r.raft_log.applied_to(index);
            r.maybe_auto_leave_joint();
        }
        for m in ready.self_messages {
            // Self messages are never proposals; any error would be a core bug.
            r.step(m).expect("stepping a self message cannot fail");
        }
    }

    /// The storage the core reads.
    pub fn storage(&self) -> &S {
        &self.raft.raft_log.storage
    }

    /// The storage, for the caller to write a Ready's snapshot, entries and hard state into
    /// before `advance`, and to compact the log (`MemStorage::create_snapshot` at an index
    /// the state machine has applied and saved, then `MemStorage::compact` at or below it).
    /// Writing anything else breaks the core's view of the log.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.raft.raft_log.storage
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.raft.id
    }

    /// Role and known leader (cheap; no allocation).
    pub fn soft_state(&self) -> SoftState {
        self.raft.soft_state()
    }

    /// Current term, vote and commit index in memory (may be ahead of what is persisted).
    pub fn hard_state(&self) -> HardState {
        self.raft.hard_state()
    }

    /// Id, term/vote/commit, role/leader, applied index and (on a leader) progress.
    pub fn status(&self) -> Status {
        let r = &self.raft;
        let leader = r.role == Role::Leader;
        Status {
            id: r.id,
            hard_state: r.hard_state(),
            soft_state: r.soft_state(),
            applied: r.raft_log.applied,
            last_index: r.raft_log.last_index(),
            conf_state: r.prs.conf_state(),
            progress: if leader {
                r.prs.progress.clone()
            } else {
                BTreeMap::new()
            },
            lead_transferee: r.lead_transferee,
        }
    }
}
