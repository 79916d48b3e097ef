//! The Raft state machine of one node: roles, elections, log replication, commit, ReadIndex
//! and leadership transfer. Pure: input is `tick`, `step(Message)`, local requests and the
//! completion reports delivered by `RawNode::advance`; output is the messages and log
//! changes that `RawNode::ready` packages.
//!
//! ```text
//!             election timeout               quorum of pre-votes
//!  start --> Follower -------------------> PreCandidate -----------------> Candidate
//!             ^ ^ ^   (pre_vote on)          |                             |  ^  |
//!             | | |                          | pre-vote lost, or           |  |  | election
//!             | | +--------------------------+ sees a leader/higher term   |  +--+ timeout
//!             | |                                                          |
//!             | |   election timeout (pre_vote off), or TimeoutNow         |
//!             | +---------------------------------------------------------(+)---> Candidate
//!             |                                                            |
//!             | <-- vote lost, or sees a leader/higher term ---------------+
//!             |                                                            | quorum of votes
//!             |                                                            v
//!             +------ sees a higher term, or check_quorum fails ------- Leader
//! ```
//! Raft §5.2 (elections), §5.3 (replication), §5.4 (safety), §7 (InstallSnapshot), thesis
//! §9.6 (pre-vote), §6.2 (check quorum), §6.4 (ReadIndex), §3.10 (leadership transfer).

use rand::{Rng, RngCore};
use tracing::debug;

use super::confchange::{self, Changer, ConfChange};
use super::config::Config;
use super::error::{RaftError, Result};
use super::log::RaftLog;
use super::progress::{Progress, ProgressState, ProgressTracker};
use super::quorum::VoteResult;
use super::read_only::ReadOnly;
use super::storage::Storage;
use super::types::{
    ConfState, Entry, EntryKind, HardState, Message, MessageBody, NO_NODE, NodeId, ReadState, Role,
    SnapshotMeta, SoftState,
};

/// Why a node campaigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CampaignKind {
    /// Pre-vote round first (thesis §9.6).
    PreElection,
    /// A real election in term + 1.
    Election,
    /// A real election started by `TimeoutNow`; voters ignore their leader lease.
    Transfer,
}

/// One node's Raft state. See the module docs for the role diagram.
pub(crate) struct Raft<S: Storage> {
    pub id: NodeId,
    /// Current term (persistent).
    pub term: u64,
    /// Vote in `term`, or 0 (persistent).
    pub vote: NodeId,
    /// Known leader of `term`, or 0.
    pub leader_id: NodeId,
    pub role: Role,
    pub raft_log: RaftLog<S>,
    pub prs: ProgressTracker,
    /// Messages that may be sent at once.
    pub msgs: Vec<Message>,
    /// Messages that may be sent only after the current unstable entries and hard state are
    /// durable (vote responses, append acks, and this node's own self-acks).
    pub msgs_after_append: Vec<Message>,
    pub read_states: Vec<ReadState>,
    pub read_only: ReadOnly,
    /// Reads that arrived before this leader committed an entry of its term (thesis §6.4
    /// step 1): (requester, ctx).
    pending_read_index: Vec<(NodeId, Vec<u8>)>,
    /// Ticks since the last election timeout reset (follower/candidate), or since the last
    /// check-quorum round (leader).
    pub election_elapsed: usize,
    pub heartbeat_elapsed: usize,
    /// Current election timeout in ticks, in `[election_tick, 2 * election_tick)`.
    pub randomized_election_timeout: usize,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    max_size_per_msg: u64,
    max_inflight: usize,
    /// Target of an ongoing leadership transfer, or 0.
    pub lead_transferee: NodeId,
    /// Leader: index of the latest configuration change proposed; a new one is refused
    /// until the application has applied through it.
    pub pending_conf_index: u64,
    rng: Box<dyn RngCore + Send>,
}

impl<S: Storage> Raft<S> {
    /// Builds a node from its configuration and storage (restoring term, vote, commit and the
    /// configuration from `storage.initial_state()`); it starts as a follower.
    pub fn new(config: &Config, storage: S, rng: Box<dyn RngCore + Send>) -> Result<Self> {
        config.validate()?;
        let (hs, cs) = storage.initial_state()?;
        let raft_log = RaftLog::new(storage)?;
        let prs = ProgressTracker::new(&cs, raft_log.last_index() + 1, config.max_inflight_msgs);
        let mut r = Raft {
            id: config.id,
            term: 0,
            vote: NO_NODE,
            leader_id: NO_NODE,
            role: Role::Follower,
            raft_log,
            prs,
            msgs: Vec::new(),
            msgs_after_append: Vec::new(),
            read_states: Vec::new(),
            read_only: ReadOnly::default(),
            pending_read_index: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: config.election_tick,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            pre_vote: config.pre_vote,
            check_quorum: config.check_quorum,
            max_size_per_msg: config.max_size_per_msg,
            max_inflight: config.max_inflight_msgs,
            lead_transferee: NO_NODE,
            pending_conf_index: 0,
            rng,
        };
        if hs != HardState::default() {
            if hs.commit < r.raft_log.committed || hs.commit > r.raft_log.last_index() {
                return Err(RaftError::Storage(format!(
                    "hard state commit {} outside log [{}, {}]",
                    hs.commit,
                    r.raft_log.committed,
                    r.raft_log.last_index()
                )));
            }
            r.raft_log.committed = hs.commit;
            r.term = hs.term;
            r.vote = hs.vote;
        }
        if config.applied > 0 {
            let snapshot_index = r.raft_log.first_index() - 1;
            if config.applied < snapshot_index {
                // The entries between the state machine and the snapshot are compacted: it
                // could never catch up (etcd raft panics in `appliedTo` here).
                return Err(RaftError::ConfigInvalid(format!(
                    "applied {} below the snapshot index {snapshot_index}",
                    config.applied
                )));
            }
            if config.applied > r.raft_log.committed {
                return Err(RaftError::ConfigInvalid(format!(
                    "applied {} beyond committed {}",
                    config.applied, r.raft_log.committed
                )));
            }
            r.raft_log.applied_to(config.applied);
        }
        r.become_follower(r.term, NO_NODE);
        Ok(r)
    }

    /// The state to persist.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.raft_log.committed,
        }
    }

    /// Observable volatile state.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.leader_id,
            role: self.role,
        }
    }

    /// Whether this node may campaign: it is a voter.
    pub fn promotable(&self) -> bool {
        self.prs.voters.contains(self.id)
    }

    // ----- sending -------------------------------------------------------------------------

    /// Queues `m` (from this node). Vote requests/responses carry the term set by the caller;
    /// forwarded `Propose`/`ReadIndex` carry term 0; everything else the current term.
    /// Append acks, vote responses and anything addressed to this node wait for persistence.
    fn send(&mut self, mut m: Message) {
        if m.from == NO_NODE {
            m.from = self.id;
        }
        match m.body {
            MessageBody::RequestVote { .. } | MessageBody::RequestVoteResponse { .. } => {
                assert!(m.term != 0, "vote messages must carry a term: {m}");
            }
            MessageBody::Propose { .. } | MessageBody::ReadIndex { .. } => m.term = 0,
            _ => m.term = self.term,
        }
        let after_persist = m.to == self.id
            || matches!(
                m.body,
                MessageBody::AppendEntriesResponse { .. } | MessageBody::RequestVoteResponse { .. }
            );
        if after_persist {
            self.msgs_after_append.push(m);
        } else {
            self.msgs.push(m);
        }
    }

    fn msg(&self, to: NodeId, body: MessageBody) -> Message {
        Message {
            from: NO_NODE,
            to,
            term: 0,
            body,
        }
    }

    /// Sends AppendEntries to `to` if its progress is not paused (Raft §5.3), or
    /// InstallSnapshot when the term of `next_index − 1` or the entries from `next_index` are
    /// compacted (§7; etcd raft `maybeSendAppend`). With `send_if_empty` false, only sends
    /// when there are entries to send. Returns whether a message was sent.
    fn maybe_send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        if to == self.id {
            return false;
        }
        let Some(pr) = self.prs.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let prev_log_index = pr.next_index - 1;
        let entries = self
            .raft_log
            .entries_from(pr.next_index, Some(self.max_size_per_msg));
        let (prev_log_term, entries) = match (self.raft_log.term(prev_log_index), entries) {
            (Ok(t), Ok(e)) => (t, e),
            _ => {
                debug!(
                    id = self.id,
                    to, prev_log_index, "entries compacted, snapshot needed"
                );
                return self.maybe_send_snapshot(to);
            }
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let n = entries.len();
        let pr = self.prs.progress.get_mut(&to).expect("checked above");
        pr.sent_entries(n, prev_log_index + n as u64);
        let commit = self.raft_log.committed;
        let m = self.msg(
            to,
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                commit,
            },
        );
        self.send(m);
        true
    }

    /// Sends the latest snapshot point to `to` and moves its progress to Snapshot (etcd raft
    /// `maybeSendSnapshot`). Only to a recently active member: a snapshot is costly to
    /// stream, and a member that did not answer since the last check-quorum round (or since
    /// this leader took over) is likely down. Nothing is sent while the storage reports
    /// [`RaftError::SnapshotTemporarilyUnavailable`]; the next heartbeat response retries.
    fn maybe_send_snapshot(&mut self, to: NodeId) -> bool {
        let Some(pr) = self.prs.progress.get(&to) else {
            return false;
        };
        if !pr.recent_active {
            debug!(
                id = self.id,
                to, "not sending snapshot: not recently active"
            );
            return false;
        }
        let snapshot = match self.raft_log.snapshot() {
            Ok(s) => s,
            Err(RaftError::SnapshotTemporarilyUnavailable) => {
                debug!(id = self.id, to, "snapshot temporarily unavailable");
                return false;
            }
            Err(e) => {
                tracing::error!(id = self.id, to, "cannot read the snapshot: {e}");
                return false;
            }
        };
        if snapshot.index == 0 {
            // The storage compacted entries without recording a snapshot that covers them,
            // breaking the `Storage` contract; sending nothing keeps the follower intact.
            tracing::error!(id = self.id, to, "entries compacted but no snapshot exists");
            return false;
        }
        debug!(
            id = self.id,
            to,
            index = snapshot.index,
            term = snapshot.term,
            "sending snapshot"
        );
        let pr = self.prs.progress.get_mut(&to).expect("checked above");
        pr.become_snapshot(snapshot.index);
        let m = self.msg(to, MessageBody::InstallSnapshot { snapshot });
        self.send(m);
        true
    }

    fn send_append(&mut self, to: NodeId) {
        self.maybe_send_append(to, true);
    }

    /// AppendEntries to every other member (voters and learners), in id order.
    fn bcast_append(&mut self) {
        let ids: Vec<NodeId> = self.prs.progress.keys().copied().collect();
        for id in ids {
            self.send_append(id);
        }
    }

    fn bcast_heartbeat(&mut self) {
        let ctx = self
            .read_only
            .last_pending_ctx()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        self.bcast_heartbeat_with_ctx(ctx);
    }

    /// Heartbeats carry min(match, commit) so a follower never commits past what it is known
    /// to share with the leader.
    fn bcast_heartbeat_with_ctx(&mut self, ctx: Vec<u8>) {
        let targets: Vec<(NodeId, u64)> = self
            .prs
            .progress
            .iter()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, pr)| (*id, pr.match_index.min(self.raft_log.committed)))
            .collect();
        for (to, commit) in targets {
            let m = self.msg(
                to,
                MessageBody::Heartbeat {
                    commit,
                    ctx: ctx.clone(),
                },
            );
            self.send(m);
        }
    }

    // ----- role changes --------------------------------------------------------------------

    fn reset_randomized_election_timeout(&mut self) {
        self.randomized_election_timeout = self
            .rng
            .random_range(self.election_tick..2 * self.election_tick);
    }

    /// Common part of every role change: moves to `term` (clearing the vote if the term
    /// changes), forgets the leader, restarts timers, resets every progress.
    fn reset(&mut self, term: u64) {
        if self.term != term {
            self.term = term;
            self.vote = NO_NODE;
        }
        self.leader_id = NO_NODE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        self.lead_transferee = NO_NODE;
        self.prs.reset_votes();
        let next = self.raft_log.last_index() + 1;
        let persisted = self.raft_log.last_persisted_index();
        for (id, pr) in self.prs.progress.iter_mut() {
            let is_learner = pr.is_learner;
            *pr = Progress::new(next, self.max_inflight);
            pr.is_learner = is_learner;
            if *id == self.id {
                // Only durable entries count toward the commit quorum.
                pr.match_index = persisted;
            }
        }
        self.read_only.clear();
        self.pending_read_index.clear();
    }

    /// Become a follower of `leader_id` (0 = unknown) in `term`.
    pub fn become_follower(&mut self, term: u64, leader_id: NodeId) {
        self.reset(term);
        self.leader_id = leader_id;
        self.role = Role::Follower;
        debug!(id = self.id, term, leader_id, "became follower");
    }

    fn become_pre_candidate(&mut self) {
        assert!(
            self.role != Role::Leader,
            "leader cannot become pre-candidate"
        );
        // Pre-vote changes neither term nor vote (thesis §9.6).
        self.prs.reset_votes();
        self.leader_id = NO_NODE;
        self.role = Role::PreCandidate;
        debug!(id = self.id, term = self.term, "became pre-candidate");
    }

    fn become_candidate(&mut self) {
        assert!(self.role != Role::Leader, "leader cannot become candidate");
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = Role::Candidate;
        debug!(id = self.id, term = self.term, "became candidate");
    }

    fn become_leader(&mut self) {
        assert!(
            self.role != Role::Follower,
            "follower cannot become leader directly"
        );
        self.reset(self.term);
        self.leader_id = self.id;
        self.role = Role::Leader;
        if let Some(pr) = self.prs.progress.get_mut(&self.id) {
            pr.become_replicate();
        }
        // Conservatively treat every entry before the no-op as a possibly pending
        // configuration change: no new change until they are applied.
        self.pending_conf_index = self.raft_log.last_index();
        // The no-op lets this leader commit entries of earlier terms (§5.4.2) and learn the
        // commit index it needs for ReadIndex (thesis §6.4).
        self.append_entries(vec![Entry::default()]);
        debug!(id = self.id, term = self.term, "became leader");
    }

    // ----- elections -----------------------------------------------------------------------

    /// Starts an election if this node may: a voter, not leader, no unapplied configuration
    /// change (applying it could remove this node). `transfer` skips pre-vote.
    pub fn hup(&mut self, transfer: bool) {
        if self.role == Role::Leader {
            debug!(id = self.id, "ignoring hup: already leader");
            return;
        }
        if !self.promotable() {
            debug!(id = self.id, "ignoring hup: not a voter");
            return;
        }
        if self.has_unapplied_conf_change() {
            debug!(id = self.id, "ignoring hup: unapplied configuration change");
            return;
        }
        let kind = if transfer {
            CampaignKind::Transfer
        } else if self.pre_vote {
            CampaignKind::PreElection
        } else {
            CampaignKind::Election
        };
        self.campaign(kind);
    }

    fn has_unapplied_conf_change(&self) -> bool {
        if !self.raft_log.has_next_committed_entries() {
            return false;
        }
        self.raft_log
            .next_committed_entries()
            .iter()
            .any(|e| e.kind == EntryKind::ConfChange)
    }

    /// Asks every voter for a (pre-)vote. The node's own vote is a message to itself that is
    /// delivered only after the new term and vote are durable (see `send`), so a crash before
    /// the persist cannot make it count a vote it then forgets.
    pub(crate) fn campaign(&mut self, kind: CampaignKind) {
        let (pre_vote, term) = if kind == CampaignKind::PreElection {
            self.become_pre_candidate();
            (true, self.term + 1)
        } else {
            self.become_candidate();
            (false, self.term)
        };
        let last_log_index = self.raft_log.last_index();
        let last_log_term = self.raft_log.last_term();
        for id in self.prs.voters.ids() {
            let body = if id == self.id {
                MessageBody::RequestVoteResponse {
                    pre_vote,
                    reject: false,
                }
            } else {
                MessageBody::RequestVote {
                    pre_vote,
                    leader_transfer: kind == CampaignKind::Transfer,
                    last_log_index,
                    last_log_term,
                }
            };
            self.send(Message {
                from: NO_NODE,
                to: id,
                term,
                body,
            });
        }
    }

    /// Counts a (pre-)vote answer and acts on the result.
    fn poll(&mut self, from: NodeId, granted: bool) {
        self.prs.record_vote(from, granted);
        let (_, _, result) = self.prs.tally_votes();
        match result {
            VoteResult::Won if self.role == Role::PreCandidate => {
                self.campaign(CampaignKind::Election)
            }
            VoteResult::Won => {
                self.become_leader();
                self.bcast_append();
            }
            VoteResult::Lost => self.become_follower(self.term, NO_NODE),
            VoteResult::Pending => {}
        }
    }

    /// Answers a (pre-)vote request: grant if we may vote for the sender in its term and its
    /// log is at least as up-to-date as ours (§5.4.1).
    fn handle_request_vote(
        &mut self,
        m: &Message,
        pre_vote: bool,
        last_index: u64,
        last_term: u64,
    ) {
        let can_vote = self.vote == m.from
            || (self.vote == NO_NODE && self.leader_id == NO_NODE)
            || (pre_vote && m.term > self.term);
        if can_vote && self.raft_log.is_up_to_date(last_index, last_term) {
            // A granted pre-vote echoes the requested term so the pre-candidate counts it.
            let body = MessageBody::RequestVoteResponse {
                pre_vote,
                reject: false,
            };
            self.send(Message {
                from: NO_NODE,
                to: m.from,
                term: m.term,
                body,
            });
            if !pre_vote {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            let body = MessageBody::RequestVoteResponse {
                pre_vote,
                reject: true,
            };
            self.send(Message {
                from: NO_NODE,
                to: m.from,
                term: self.term,
                body,
            });
        }
    }

    // ----- input ---------------------------------------------------------------------------

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        if self.role == Role::Leader {
            self.tick_heartbeat();
        } else {
            self.tick_election();
        }
    }

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_tick {
            self.election_elapsed = 0;
            if self.check_quorum {
                if !self.prs.quorum_active(self.id) {
                    debug!(
                        id = self.id,
                        term = self.term,
                        "stepping down: quorum not active"
                    );
                    self.become_follower(self.term, NO_NODE);
                    return;
                }
                let id = self.id;
                self.prs
                    .progress
                    .iter_mut()
                    .filter(|(i, _)| **i != id)
                    .for_each(|(_, p)| {
                        p.recent_active = false;
                    });
            }
            // A transfer that did not finish within an election timeout is abandoned.
            self.lead_transferee = NO_NODE;
            if !self.promotable() {
                // A removed leader retries handing over until someone takes it.
                self.transfer_leader_after_removal();
            }
        }
        if self.heartbeat_elapsed >= self.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat();
        }
    }

    /// Processes a message from a peer. Term rules first (§5.1: a higher term turns anyone
    /// into a follower; a lower term is stale), then the role-specific handler.
    ///
    /// Errors: [`RaftError::ProposalDropped`] for a forwarded `Propose`/`ReadIndex` this node
    /// cannot handle (no leader, candidate, or transfer in progress).
    pub fn step(&mut self, m: Message) -> Result<()> {
        if m.term == 0 {
            // Forwarded Propose/ReadIndex are not term-checked; any other RPC must carry a
            // term, so a term-0 one is malformed and dropped.
            if !matches!(
                m.body,
                MessageBody::Propose { .. } | MessageBody::ReadIndex { .. }
            ) {
                debug!(id = self.id, msg = %m, "dropping term-0 message");
                return Ok(());
            }
        } else if m.term > self.term {
            if let MessageBody::RequestVote {
                leader_transfer, ..
            } = m.body
            {
                let in_lease = self.check_quorum
                    && self.leader_id != NO_NODE
                    && self.election_elapsed < self.election_tick;
                if in_lease && !leader_transfer {
                    // Thesis §4.2.3: a node that heard from a leader within the minimum
                    // election timeout ignores vote requests, so a removed or partitioned
                    // node cannot depose a working leader.
                    debug!(
                        id = self.id,
                        from = m.from,
                        "ignoring vote request within lease"
                    );
                    return Ok(());
                }
            }
            match m.body {
                MessageBody::RequestVote { pre_vote: true, .. } => {}
                MessageBody::RequestVoteResponse {
                    pre_vote: true,
                    reject: false,
                } => {}
                MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => self.become_follower(m.term, m.from),
                _ => self.become_follower(m.term, NO_NODE),
            }
        } else if m.term < self.term {
            match m.body {
                MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. }
                    if self.check_quorum || self.pre_vote =>
                {
                    // A stale leader cut off from the cluster would otherwise never learn the
                    // new term, because pre-vote / check-quorum keep us from electing in its
                    // term; answering with our term makes it step down.
                    let body = MessageBody::AppendEntriesResponse {
                        reject: false,
                        index: 0,
                        reject_hint: 0,
                        log_term: 0,
                    };
                    let m = self.msg(m.from, body);
                    self.send(m);
                }
                MessageBody::RequestVote { pre_vote: true, .. } => {
                    let body = MessageBody::RequestVoteResponse {
                        pre_vote: true,
                        reject: true,
                    };
                    self.send(Message {
                        from: NO_NODE,
                        to: m.from,
                        term: self.term,
                        body,
                    });
                }
                _ => debug!(id = self.id, msg = %m, "ignoring message with stale term"),
            }
            return Ok(());
        }

        if let MessageBody::RequestVote {
            pre_vote,
            last_log_index,
            last_log_term,
            ..
        } = m.body
        {
            self.handle_request_vote(&m, pre_vote, last_log_index, last_log_term);
            return Ok(());
        }
        match self.role {
            Role::Leader => self.step_leader(m),
            Role::Candidate | Role::PreCandidate => self.step_candidate(m),
            Role::Follower => self.step_follower(m),
        }
    }

    fn step_leader(&mut self, m: Message) -> Result<()> {
        match m.body {
            MessageBody::Propose { entries } => self.propose_entries(entries),
            MessageBody::ReadIndex { ctx } => {
                self.leader_read_index(m.from, ctx);
                Ok(())
            }
            MessageBody::AppendEntriesResponse {
                reject,
                index,
                reject_hint,
                log_term,
            } => {
                self.handle_append_response(m.from, reject, index, reject_hint, log_term);
                Ok(())
            }
            MessageBody::HeartbeatResponse { ctx } => {
                self.handle_heartbeat_response(m.from, ctx);
                Ok(())
            }
            _ => {
                debug!(id = self.id, msg = %m, "leader ignoring message");
                Ok(())
            }
        }
    }

    fn step_candidate(&mut self, m: Message) -> Result<()> {
        match m.body {
            MessageBody::Propose { .. } | MessageBody::ReadIndex { .. } => {
                Err(RaftError::ProposalDropped)
            }
            MessageBody::AppendEntries { .. } => {
                self.become_follower(m.term, m.from);
                self.handle_append_entries(m);
                Ok(())
            }
            MessageBody::Heartbeat { .. } => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
                Ok(())
            }
            MessageBody::InstallSnapshot { snapshot } => {
                // A leader of our term exists (etcd raft stepCandidate MsgSnap).
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m.from, snapshot);
                Ok(())
            }
            MessageBody::RequestVoteResponse { pre_vote, reject } => {
                if pre_vote == (self.role == Role::PreCandidate) {
                    self.poll(m.from, !reject);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn step_follower(&mut self, m: Message) -> Result<()> {
        match m.body {
            MessageBody::Propose { .. } | MessageBody::ReadIndex { .. } => {
                if self.leader_id == NO_NODE {
                    return Err(RaftError::ProposalDropped);
                }
                let mut m = m;
                m.to = self.leader_id;
                self.send(m);
                Ok(())
            }
            MessageBody::AppendEntries { .. } => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_append_entries(m);
                Ok(())
            }
            MessageBody::Heartbeat { .. } => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_heartbeat(m);
                Ok(())
            }
            MessageBody::InstallSnapshot { snapshot } => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_snapshot(m.from, snapshot);
                Ok(())
            }
            MessageBody::TimeoutNow => {
                debug!(
                    id = self.id,
                    from = m.from,
                    "TimeoutNow: campaigning for transfer"
                );
                self.hup(true);
                Ok(())
            }
            MessageBody::ReadIndexResponse { index, ctx } => {
                self.read_states.push(ReadState {
                    index,
                    request_ctx: ctx,
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    // ----- replication ---------------------------------------------------------------------

    /// Leader: assigns term and index to `entries`, appends them, and queues the self-ack that
    /// `advance` delivers once they are durable.
    fn append_entries(&mut self, mut entries: Vec<Entry>) {
        let last = self.raft_log.last_index();
        for (i, e) in entries.iter_mut().enumerate() {
            e.term = self.term;
            e.index = last + 1 + i as u64;
        }
        let last = self.raft_log.append(&entries);
        let body = MessageBody::AppendEntriesResponse {
            reject: false,
            index: last,
            reject_hint: 0,
            log_term: 0,
        };
        let m = self.msg(self.id, body);
        self.send(m);
    }

    /// Local or forwarded proposal. Errors: [`RaftError::ProposalDropped`] when no leader is
    /// known, this node is a candidate, or a transfer is in progress.
    pub fn propose_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        match self.role {
            Role::Leader => {
                if self.lead_transferee != NO_NODE {
                    return Err(RaftError::ProposalDropped);
                }
                self.check_conf_changes(&entries)?;
                let first_index = self.raft_log.last_index() + 1;
                for (i, e) in entries.iter().enumerate() {
                    if e.kind == EntryKind::ConfChange {
                        self.pending_conf_index = first_index + i as u64;
                    }
                }
                self.append_entries(entries);
                self.bcast_append();
                Ok(())
            }
            Role::Follower if self.leader_id != NO_NODE => {
                let m = self.msg(self.leader_id, MessageBody::Propose { entries });
                self.send(m);
                Ok(())
            }
            _ => Err(RaftError::ProposalDropped),
        }
    }

    /// Leader: refuses configuration-change entries that cannot be accepted now (etcd raft
    /// `stepLeader` MsgProp checks): one unapplied change at a time; inside a joint
    /// configuration only "leave"; outside one, no "leave".
    fn check_conf_changes(&self, entries: &[Entry]) -> Result<()> {
        let mut pending = self.pending_conf_index > self.raft_log.applied;
        for e in entries.iter().filter(|e| e.kind == EntryKind::ConfChange) {
            let cc = ConfChange::decode(&e.data)?;
            if pending {
                return Err(RaftError::ConfChangePending);
            }
            let joint = !self.prs.voters.outgoing.voters.is_empty();
            if joint && !cc.is_leave_joint() {
                return Err(RaftError::ConfChangeInvalid(
                    "must leave the joint configuration first".into(),
                ));
            }
            if !joint && cc.is_leave_joint() {
                return Err(RaftError::ConfChangeInvalid(
                    "not in a joint configuration".into(),
                ));
            }
            pending = true;
        }
        Ok(())
    }

    /// Applies a committed configuration change (called by the application when it applies
    /// the `ConfChange` entry) and returns the new configuration to persist.
    ///
    /// Errors: [`RaftError::ConfChangeInvalid`] when the change does not fit the current
    /// configuration; the configuration is then unchanged. (Every node applies the same
    /// committed entries in the same order, so all of them reject the same changes.)
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState> {
        let changer = Changer {
            tracker: &self.prs,
            last_index: self.raft_log.last_index(),
        };
        let tracker = if cc.is_leave_joint() {
            changer.leave_joint()?
        } else if let Some(auto_leave) = cc.enter_joint() {
            changer.enter_joint(auto_leave, &cc.changes)?
        } else {
            changer.simple(&cc.changes)?
        };
        self.prs = tracker;
        let cs = self.prs.conf_state();
        debug!(id = self.id, ?cs, "applied configuration change");
        let is_member_voter = self
            .prs
            .progress
            .get(&self.id)
            .is_some_and(|p| !p.is_learner);
        if self.role == Role::Leader && !is_member_voter {
            // Removed or demoted. Stepping down right here can wedge the cluster: the
            // remaining voters may not know yet that the removal committed (so they still
            // need this node's vote), while this node may hold later entries they lack (so it
            // refuses them that vote) and, being no voter, never campaigns itself. Like etcd
            // raft (StepDownOnRemoval off) it keeps leading — replicating the log and the
            // commit index, no longer counted in quorums — and hands leadership to the most
            // up-to-date remaining voter (thesis §3.10, §4.2.2).
            self.transfer_leader_after_removal();
        }
        if self.role != Role::Leader {
            return Ok(cs);
        }
        if self.maybe_commit() {
            // A smaller quorum may commit more at once.
            self.bcast_append();
        } else {
            // Probe new members right away instead of waiting for a heartbeat.
            let ids: Vec<NodeId> = self.prs.progress.keys().copied().collect();
            for id in ids {
                self.maybe_send_append(id, false);
            }
        }
        if self.lead_transferee != NO_NODE && !self.prs.voters.contains(self.lead_transferee) {
            self.lead_transferee = NO_NODE;
        }
        Ok(cs)
    }

    /// Leader: after the entry that entered an auto-leave joint configuration is applied,
    /// propose leaving it (etcd raft: `appliedTo`).
    pub fn maybe_auto_leave_joint(&mut self) {
        if self.role == Role::Leader
            && self.prs.auto_leave
            && self.raft_log.applied >= self.pending_conf_index
        {
            let entry = Entry {
                kind: EntryKind::ConfChange,
                data: ConfChange::leave_joint().encode(),
                ..Default::default()
            };
            self.pending_conf_index = self.raft_log.last_index() + 1;
            debug!(id = self.id, "proposing to leave the joint configuration");
            self.append_entries(vec![entry]);
            self.bcast_append();
        }
    }

    /// Follower side of AppendEntries (§5.3): consistency check, append, commit; the answer
    /// waits for persistence. A rejection carries a hint for fast backtracking.
    fn handle_append_entries(&mut self, m: Message) {
        let MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            commit,
        } = m.body
        else {
            unreachable!("handle_append_entries called with {}", m.body.name());
        };
        let committed = self.raft_log.committed;
        let body = if prev_log_index < committed {
            // Everything through our commit index is known to match (Log Matching).
            MessageBody::AppendEntriesResponse {
                reject: false,
                index: committed,
                reject_hint: 0,
                log_term: 0,
            }
        } else if let Some(last) =
            self.raft_log
                .maybe_append(prev_log_index, prev_log_term, commit, &entries)
        {
            MessageBody::AppendEntriesResponse {
                reject: false,
                index: last,
                reject_hint: 0,
                log_term: 0,
            }
        } else {
            let hint = prev_log_index.min(self.raft_log.last_index());
            let (reject_hint, log_term) = self.raft_log.find_conflict_by_term(hint, prev_log_term);
            debug!(
                id = self.id,
                prev_log_index, prev_log_term, reject_hint, log_term, "rejecting AppendEntries"
            );
            MessageBody::AppendEntriesResponse {
                reject: true,
                index: prev_log_index,
                reject_hint,
                log_term,
            }
        };
        let m = self.msg(m.from, body);
        self.send(m);
    }

    /// Follower side of InstallSnapshot (Raft §7; etcd raft `handleSnapshot`). Answers, after
    /// the persist, with an `AppendEntriesResponse`: the last index when the snapshot was
    /// restored, else the commit index (a stale or ignored snapshot still tells the leader
    /// where to probe from).
    fn handle_snapshot(&mut self, from: NodeId, snapshot: SnapshotMeta) {
        let (index, term) = (snapshot.index, snapshot.term);
        let restored = self.restore(snapshot);
        let reply = if restored {
            self.raft_log.last_index()
        } else {
            self.raft_log.committed
        };
        debug!(
            id = self.id,
            index,
            term,
            restored,
            commit = self.raft_log.committed,
            "handled snapshot"
        );
        let body = MessageBody::AppendEntriesResponse {
            reject: false,
            index: reply,
            reject_hint: 0,
            log_term: 0,
        };
        let m = self.msg(from, body);
        self.send(m);
    }

    /// Adopts `snapshot` if it brings news (etcd raft `restore`); returns whether the log was
    /// replaced. Not replaced when:
    /// - its index ≤ the commit index (stale: we already have everything it covers);
    /// - this node is not in its configuration (etcd logs and ignores it: the leader must
    ///   not make a removed node hold a log it cannot take part in);
    /// - its configuration is malformed (etcd panics; ignoring keeps a bad peer from
    ///   crashing us);
    /// - the log already has (index, term): by Log Matching everything through it matches,
    ///   so only the commit index moves forward (keeping the entries after it).
    ///
    /// Otherwise the log becomes the snapshot (pending persistence in the unstable tail),
    /// commit = its index, and the configuration is rebuilt from its conf state through the
    /// confchange machinery.
    fn restore(&mut self, snapshot: SnapshotMeta) -> bool {
        assert_eq!(
            self.role,
            Role::Follower,
            "only a follower restores a snapshot"
        );
        if snapshot.index <= self.raft_log.committed {
            return false;
        }
        if !snapshot.contains(self.id) {
            tracing::warn!(
                id = self.id,
                index = snapshot.index,
                "ignoring snapshot whose configuration does not contain this node"
            );
            return false;
        }
        if self.raft_log.match_term(snapshot.index, snapshot.term) {
            self.raft_log.commit_to(snapshot.index);
            return false;
        }
        let tracker =
            match confchange::restore(&snapshot.conf_state, snapshot.index, self.max_inflight) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(
                        id = self.id,
                        "ignoring snapshot with a bad configuration: {e}"
                    );
                    return false;
                }
            };
        self.raft_log.restore(snapshot);
        self.prs = tracker;
        true
    }

    /// Leader: the transport's report on the `InstallSnapshot` sent to `to` (etcd raft
    /// `ReportSnapshot` / `MsgSnapStatus`). Either way the progress goes to Probe and stays
    /// paused: after a success until the follower's answer (or a heartbeat response) arrives,
    /// probing after the snapshot index; after a failure until the next heartbeat response,
    /// probing after the match index — and that probe finds the entries still compacted and
    /// sends the snapshot again. Ignored unless `to` is in Snapshot state.
    pub fn report_snapshot(&mut self, to: NodeId, failed: bool) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.prs.progress.get_mut(&to) else {
            return;
        };
        if pr.state != ProgressState::Snapshot {
            return;
        }
        if failed {
            // Before become_probe, or it would probe after a snapshot that never arrived.
            pr.pending_snapshot = 0;
        }
        pr.become_probe();
        pr.probe_sent = true;
        debug!(id = self.id, to, failed, "snapshot reported");
    }

    fn handle_heartbeat(&mut self, m: Message) {
        let MessageBody::Heartbeat { commit, ctx } = m.body else {
            unreachable!("handle_heartbeat called with {}", m.body.name());
        };
        self.raft_log
            .commit_to(commit.min(self.raft_log.last_index()));
        let m = self.msg(m.from, MessageBody::HeartbeatResponse { ctx });
        self.send(m);
    }

    /// Leader side of an AppendEntries answer: move `match_index`/`next_index`, switch
    /// Probe/Replicate, commit, send more.
    fn handle_append_response(
        &mut self,
        from: NodeId,
        reject: bool,
        index: u64,
        reject_hint: u64,
        log_term: u64,
    ) {
        let last_index = self.raft_log.last_index();
        let first_index = self.raft_log.first_index();
        let next_probe = if reject && log_term > 0 {
            // Skip every entry of ours whose term cannot match the follower's (etcd raft
            // findConflictByTerm, leader side).
            self.raft_log.find_conflict_by_term(reject_hint, log_term).0
        } else {
            reject_hint
        };
        let Some(pr) = self.prs.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if reject {
            if pr.maybe_decr_to(index, next_probe) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(from);
            }
            return;
        }
        let was_paused = pr.is_paused();
        // A repeated ack of the known match still moves a probing follower back to Replicate
        // (e.g. a follower that is fully caught up but was probed after a lost message).
        let reprobe = index == pr.match_index && pr.state == ProgressState::Probe;
        if !pr.maybe_update(index) && !reprobe {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Replicate => pr.inflights.free_le(index),
            // The follower has the pending snapshot (or got further some other way) and the
            // log still holds what follows its match: replicate again, via Probe so that
            // `next_index` accounts for the snapshot (etcd raft stepLeader MsgAppResp).
            ProgressState::Snapshot
                if pr.match_index >= pr.pending_snapshot || pr.match_index + 1 >= first_index =>
            {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Snapshot => {}
        }
        let matched = pr.match_index;
        if self.maybe_commit() {
            self.release_pending_read_index();
            self.bcast_append();
        } else if was_paused {
            self.send_append(from);
        }
        while self.maybe_send_append(from, false) {}
        if from == self.lead_transferee && matched == last_index {
            let m = self.msg(from, MessageBody::TimeoutNow);
            self.send(m);
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, ctx: Vec<u8>) {
        let last_index = self.raft_log.last_index();
        let Some(pr) = self.prs.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.state == ProgressState::Replicate && pr.inflights.full() {
            pr.inflights.free_first_one();
        }
        // A lagging follower gets entries; a probing one gets an (empty) probe so that its
        // answer can move it back to Replicate. One waiting for a snapshot gets nothing: the
        // snapshot's outcome, not a heartbeat, ends that wait.
        let lagging = pr.match_index < last_index || pr.state == ProgressState::Probe;
        if lagging && pr.state != ProgressState::Snapshot {
            self.send_append(from);
        }
        if ctx.is_empty() {
            return;
        }
        let Some(acks) = self.read_only.recv_ack(from, &ctx) else {
            return;
        };
        let votes = acks.iter().map(|id| (*id, true)).collect();
        if self.prs.voters.vote_result(&votes) != VoteResult::Won {
            return;
        }
        for rs in self.read_only.advance(&ctx) {
            self.respond_read_index(rs.from, rs.index, rs.ctx);
        }
    }

    /// Leader commit rule (§5.3, §5.4.2): the quorum-acknowledged index, if its entry is
    /// from the current term.
    fn maybe_commit(&mut self) -> bool {
        let mci = self.prs.committed();
        self.raft_log.maybe_commit(mci, self.term)
    }

    // ----- reads ---------------------------------------------------------------------------

    fn committed_entry_in_current_term(&self) -> bool {
        self.raft_log.term(self.raft_log.committed) == Ok(self.term)
    }

    /// Local ReadIndex request. Errors: [`RaftError::ProposalDropped`] when no leader is known
    /// or this node is a candidate; the caller retries later.
    pub fn read_index(&mut self, ctx: Vec<u8>) -> Result<()> {
        match self.role {
            Role::Leader => {
                self.leader_read_index(self.id, ctx);
                Ok(())
            }
            Role::Follower if self.leader_id != NO_NODE => {
                let m = self.msg(self.leader_id, MessageBody::ReadIndex { ctx });
                self.send(m);
                Ok(())
            }
            _ => Err(RaftError::ProposalDropped),
        }
    }

    /// Thesis §6.4: (1) wait until an entry of this term is committed, (2) record the commit
    /// index, (3) confirm leadership with a heartbeat round carrying `ctx`, (4) answer.
    fn leader_read_index(&mut self, from: NodeId, ctx: Vec<u8>) {
        // Only a leader that is itself the single voter may answer alone: a removed leader
        // still leading a one-voter configuration must confirm with that voter.
        if self.prs.is_singleton() && self.promotable() {
            self.respond_read_index(from, self.raft_log.committed, ctx);
            return;
        }
        if !self.committed_entry_in_current_term() {
            self.pending_read_index.push((from, ctx));
            return;
        }
        if self
            .read_only
            .add_request(self.raft_log.committed, from, ctx.clone())
        {
            self.read_only.recv_ack(self.id, &ctx);
            self.bcast_heartbeat_with_ctx(ctx);
        }
    }

    fn release_pending_read_index(&mut self) {
        if self.pending_read_index.is_empty() || !self.committed_entry_in_current_term() {
            return;
        }
        for (from, ctx) in std::mem::take(&mut self.pending_read_index) {
            self.leader_read_index(from, ctx);
        }
    }

    fn respond_read_index(&mut self, from: NodeId, index: u64, ctx: Vec<u8>) {
        if from == self.id {
            self.read_states.push(ReadState {
                index,
                request_ctx: ctx,
            });
        } else {
            let m = self.msg(from, MessageBody::ReadIndexResponse { index, ctx });
            self.send(m);
        }
    }

    #[cfg(test)]
    pub fn pending_read_index_len(&self) -> usize {
        self.pending_read_index.len()
    }

    // ----- leadership transfer -------------------------------------------------------------

    /// Leader that is no voter any more (it applied its own removal or demotion): start a
    /// transfer to the remaining voter with the highest match index (lowest id on a tie).
    /// Proposals are refused meanwhile. No-op when no voter remains.
    fn transfer_leader_after_removal(&mut self) {
        let best = self
            .prs
            .voters
            .ids()
            .into_iter()
            .filter(|id| *id != self.id)
            .filter_map(|id| self.prs.progress.get(&id).map(|p| (p.match_index, id)))
            .max_by_key(|(matched, id)| (*matched, std::cmp::Reverse(*id)));
        if let Some((_, to)) = best {
            debug!(id = self.id, to, "removed leader hands over leadership");
            self.transfer_leader(to);
        }
    }

    /// Leader: hand leadership to voter `to` (thesis §3.10): bring its log up to date, then
    /// send `TimeoutNow`. Proposals are refused until the transfer ends; it is abandoned after
    /// one election timeout. Ignored on non-leaders and for non-voters.
    pub fn transfer_leader(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.id || !self.prs.voters.contains(to) {
            return;
        }
        if self.lead_transferee == to {
            return;
        }
        self.lead_transferee = to;
        self.election_elapsed = 0;
        let matched = self.prs.progress.get(&to).map(|p| p.match_index);
        if matched == Some(self.raft_log.last_index()) {
            let m = self.msg(to, MessageBody::TimeoutNow);
            self.send(m);
        } else {
            self.send_append(to);
        }
    }
}
