//! What a leader knows about each follower's log (Raft Figure 2 `nextIndex[]`/`matchIndex[]`)
//! and the flow control built on it, plus the `ProgressTracker` that owns the configuration.
//!
//! ```text
//!                 +-------- reject (or lost ack) --------+
//!                 v                                      |
//!   new leader -> Probe --- first successful ack ---> Replicate
//!                 ^  |                                   |
//!                 |  +-- needed entries compacted --+    | needed entries compacted
//!                 |                                 v    v
//!                 +--- report_snapshot, or an ack ≥ Snapshot { pending_snapshot }
//!                      the pending snapshot
//! ```
//! Probe: one AppendEntries per heartbeat interval until the follower's match is found.
//! Replicate: entries are streamed optimistically (`next_index` advances on send), at most
//! `max_inflight_msgs` unacknowledged messages at a time.
//! Snapshot: an `InstallSnapshot` was sent; no AppendEntries until it resolves (etcd raft
//! tracker `StateSnapshot`). An ack at or past the pending snapshot moves the follower
//! straight back to Replicate (via Probe); `RawNode::report_snapshot` moves it to Probe.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::quorum::{JointConfig, VoteResult};
use super::types::{ConfState, NodeId};

/// Flow-control state of one follower (etcd raft tracker/state.go).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgressState {
    /// Looking for the last matching index: at most one AppendEntries in flight.
    #[default]
    Probe,
    /// Match known: stream entries, pipelined up to the inflight limit.
    Replicate,
    /// An `InstallSnapshot` is on its way to the follower; replication is paused until the
    /// follower acknowledges it or the transport reports the outcome.
    Snapshot,
}

/// A bounded window of unacknowledged AppendEntries, each recorded by its last index.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Inflights {
    /// Last entry index of each message in flight, oldest first.
    pub last_indexes: VecDeque<u64>,
    /// Maximum number of messages in flight.
    pub capacity: usize,
}

impl Inflights {
    /// An empty window of `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Inflights {
            last_indexes: VecDeque::new(),
            capacity,
        }
    }

    /// Whether no more messages may be sent.
    pub fn full(&self) -> bool {
        self.last_indexes.len() >= self.capacity
    }

    /// Records a message whose last entry is `last_index`.
    pub fn add(&mut self, last_index: u64) {
        self.last_indexes.push_back(last_index);
    }

    /// Frees every message whose last index is ≤ `index` (acknowledged).
    pub fn free_le(&mut self, index: u64) {
        while self.last_indexes.front().is_some_and(|i| *i <= index) {
            self.last_indexes.pop_front();
        }
    }

    /// Frees the oldest message (a heartbeat response proved the follower is alive even
    /// though an ack may have been lost).
    pub fn free_first_one(&mut self) {
        self.last_indexes.pop_front();
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.last_indexes.clear();
    }
}

/// The leader's view of one member's log.
///
/// Invariants: `match_index < next_index`; `pending_snapshot != 0` only in
/// [`ProgressState::Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Progress {
    /// Highest index known to be replicated on the member (Raft Figure 2 `matchIndex`).
    pub match_index: u64,
    /// Index of the next entry to send (Raft Figure 2 `nextIndex`).
    pub next_index: u64,
    /// Flow-control state.
    pub state: ProgressState,
    /// In Probe: an AppendEntries was sent and no answer (or heartbeat response) came yet.
    pub probe_sent: bool,
    /// Unacknowledged messages in Replicate.
    pub inflights: Inflights,
    /// Heard from since the last check-quorum round (thesis §6.2).
    pub recent_active: bool,
    /// The member is a learner (receives the log, does not vote).
    pub is_learner: bool,
    /// In Snapshot: index of the snapshot sent to the member (etcd raft `PendingSnapshot`);
    /// once the transport reports it delivered, probing resumes after it. 0 otherwise.
    pub pending_snapshot: u64,
}

impl Progress {
    /// A fresh progress in Probe with `next_index` and an inflight window of `max_inflight`.
    pub fn new(next_index: u64, max_inflight: usize) -> Self {
        Progress {
            next_index,
            inflights: Inflights::new(max_inflight),
            ..Default::default()
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.inflights.reset();
    }

    /// Enter Probe: restart just after the known match — or, coming from Snapshot, after
    /// the pending snapshot if that is further (it was delivered; a failed delivery clears
    /// `pending_snapshot` first). etcd raft `Progress.BecomeProbe`.
    pub fn become_probe(&mut self) {
        let after = self.match_index.max(self.pending_snapshot) + 1;
        self.reset_state(ProgressState::Probe);
        self.next_index = after;
    }

    /// Enter Snapshot: an `InstallSnapshot` at `snapshot_index` was sent; pause replication
    /// until it resolves (etcd raft `Progress.BecomeSnapshot`).
    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
        self.next_index = snapshot_index + 1;
    }

    /// Enter Replicate: stream from just after the known match.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_index = self.match_index + 1;
    }

    /// An ack for `index` arrived. Returns whether `match_index` moved (stale acks don't).
    pub fn maybe_update(&mut self, index: u64) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        updated
    }

    /// A rejection of `rejected` (the prev_log_index we sent) with the follower's hint that
    /// `match_hint` may match. Returns false if the rejection is stale and must be ignored.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            self.next_index = self.match_index + 1;
            return true;
        }
        if self.next_index - 1 != rejected {
            return false;
        }
        self.next_index = rejected.min(match_hint + 1).max(self.match_index + 1);
        self.probe_sent = false;
        true
    }

    /// Whether the leader should hold back AppendEntries to this member.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }

    /// An AppendEntries with `n` entries ending at `last_index` was sent.
    pub fn sent_entries(&mut self, n: usize, last_index: u64) {
        match self.state {
            ProgressState::Replicate => {
                if n > 0 {
                    self.next_index = last_index + 1;
                    self.inflights.add(last_index);
                }
            }
            ProgressState::Probe => {
                if n > 0 {
                    self.probe_sent = true;
                }
            }
            ProgressState::Snapshot => {}
        }
    }
}

/// The configuration, each member's progress, and the votes of the current election.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressTracker {
    /// Voters (joint-aware).
    pub voters: JointConfig,
    /// Learners.
    pub learners: BTreeSet<NodeId>,
    /// Outgoing voters that become learners when the joint configuration is left.
    pub learners_next: BTreeSet<NodeId>,
    /// Leave the joint configuration automatically.
    pub auto_leave: bool,
    /// Progress of every voter and learner (including this node).
    pub progress: BTreeMap<NodeId, Progress>,
    /// Votes received in the current (pre-)election: voter → granted.
    pub votes: BTreeMap<NodeId, bool>,
    /// Inflight window size for new progresses.
    pub max_inflight: usize,
}

impl ProgressTracker {
    /// A tracker for `conf_state` with fresh progresses (next_index = `next_index`).
    pub fn new(conf_state: &ConfState, next_index: u64, max_inflight: usize) -> Self {
        let mut t = ProgressTracker {
            voters: JointConfig::new(
                conf_state.voters.clone(),
                conf_state.voters_outgoing.clone(),
            ),
            learners: conf_state.learners.clone(),
            learners_next: conf_state.learners_next.clone(),
            auto_leave: conf_state.auto_leave,
            max_inflight,
            ..Default::default()
        };
        for id in t.voters.ids() {
            t.progress
                .insert(id, Progress::new(next_index, max_inflight));
        }
        for id in t.learners.iter().chain(&t.learners_next) {
            let mut p = Progress::new(next_index, max_inflight);
            p.is_learner = true;
            t.progress.insert(*id, p);
        }
        t
    }

    /// The configuration as a `ConfState`.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.voters.clone(),
            voters_outgoing: self.voters.outgoing.voters.clone(),
            learners: self.learners.clone(),
            learners_next: self.learners_next.clone(),
            auto_leave: self.auto_leave,
        }
    }

    /// Whether exactly one voter exists (a leader can then commit and serve reads alone).
    pub fn is_singleton(&self) -> bool {
        self.voters.ids().len() == 1
    }

    /// The highest index acknowledged by a quorum of voters (Raft §5.3, joint-aware).
    pub fn committed(&self) -> u64 {
        self.voters
            .committed_index(|id| self.progress.get(&id).map(|p| p.match_index))
    }

    /// Forgets the votes of the previous election.
    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Records `id`'s answer; only the first answer of each node counts.
    pub fn record_vote(&mut self, id: NodeId, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    /// (granted, rejected, result) of the current election.
    pub fn tally_votes(&self) -> (usize, usize, VoteResult) {
        let ids = self.voters.ids();
        let granted = ids
            .iter()
            .filter(|id| self.votes.get(id) == Some(&true))
            .count();
        let rejected = ids
            .iter()
            .filter(|id| self.votes.get(id) == Some(&false))
            .count();
        (granted, rejected, self.voters.vote_result(&self.votes))
    }

    /// Check quorum (thesis §6.2): whether a quorum of voters was recently active; `self_id`
    /// always counts as active.
    pub fn quorum_active(&self, self_id: NodeId) -> bool {
        let votes: BTreeMap<NodeId, bool> = self
            .progress
            .iter()
            .filter(|(id, p)| !p.is_learner || **id == self_id)
            .map(|(id, p)| (*id, *id == self_id || p.recent_active))
            .collect();
        self.voters.vote_result(&votes) == VoteResult::Won
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_pauses_after_one_send_until_answer() {
        let mut p = Progress::new(5, 4);
        assert!(!p.is_paused());
        p.sent_entries(2, 6);
        assert!(p.is_paused());
        assert_eq!(
            p.next_index, 5,
            "probe does not advance next optimistically"
        );
        assert!(p.maybe_update(6));
        assert!(!p.is_paused());
        assert_eq!((p.match_index, p.next_index), (6, 7));
    }

    #[test]
    fn replicate_pipelines_up_to_inflight_limit() {
        let mut p = Progress::new(1, 2);
        p.become_replicate();
        p.sent_entries(1, 1);
        p.sent_entries(3, 4);
        assert_eq!(p.next_index, 5);
        assert!(p.is_paused());
        p.maybe_update(1);
        p.inflights.free_le(1);
        assert!(!p.is_paused());
        assert_eq!(p.inflights.last_indexes, VecDeque::from(vec![4]));
    }

    #[test]
    fn maybe_decr_to_ignores_stale_rejections() {
        let mut p = Progress::new(10, 4);
        p.match_index = 3;
        // Probe: only a rejection of next-1 counts.
        assert!(!p.maybe_decr_to(5, 4));
        assert!(p.maybe_decr_to(9, 6));
        assert_eq!(p.next_index, 7);
        // Hint below match is clamped to match + 1.
        assert!(p.maybe_decr_to(6, 0));
        assert_eq!(p.next_index, 4);
        // Replicate: rejections at or below match are stale; others reset to match + 1.
        p.become_replicate();
        p.next_index = 9;
        assert!(!p.maybe_decr_to(3, 0));
        assert!(p.maybe_decr_to(8, 0));
        assert_eq!(p.next_index, 4);
    }

    #[test]
    fn snapshot_state_pauses_and_probe_resumes_after_it() {
        let mut p = Progress::new(3, 4);
        p.match_index = 2;
        p.become_snapshot(10);
        assert_eq!(p.state, ProgressState::Snapshot);
        assert_eq!((p.pending_snapshot, p.next_index), (10, 11));
        assert!(p.is_paused());
        // Delivered: probe right after the snapshot.
        p.become_probe();
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!((p.pending_snapshot, p.next_index), (0, 11));
        assert!(!p.is_paused());
        // Failed: the caller clears the pending snapshot first; probe after the match.
        p.become_snapshot(10);
        p.pending_snapshot = 0;
        p.become_probe();
        assert_eq!(p.next_index, 3);
        // Leaving Snapshot for Replicate forgets the pending snapshot too.
        p.become_snapshot(10);
        p.become_replicate();
        assert_eq!(p.pending_snapshot, 0);
    }

    #[test]
    fn tracker_commit_and_votes_use_joint_config() {
        let cs = ConfState {
            voters: [1, 2, 3].into(),
            voters_outgoing: [1, 4, 5].into(),
            learners: [6].into(),
            ..Default::default()
        };
        let mut t = ProgressTracker::new(&cs, 1, 8);
        assert_eq!(
            t.progress.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        for (id, m) in [(1, 7), (2, 7), (3, 7), (4, 2), (5, 1), (6, 9)] {
            t.progress.get_mut(&id).unwrap().match_index = m;
        }
        assert_eq!(t.committed(), 2);
        t.record_vote(1, true);
        t.record_vote(2, true);
        assert_eq!(t.tally_votes(), (2, 0, VoteResult::Pending));
        t.record_vote(4, true);
        t.record_vote(4, false); // second answer ignored
        assert_eq!(t.tally_votes(), (3, 0, VoteResult::Won));
        assert_eq!(t.conf_state(), cs);
    }

    #[test]
    fn quorum_active_counts_self_and_recent_voters() {
        let mut t = ProgressTracker::new(&ConfState::from_voters([1, 2, 3]), 1, 8);
        assert!(!t.quorum_active(1));
        t.progress.get_mut(&3).unwrap().recent_active = true;
        assert!(t.quorum_active(1));
    }
}
