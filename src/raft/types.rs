//! Plain data shared by every part of the Raft core: log entries, persistent state,
//! configurations and the peer messages.
//!
//! Everything here is `Clone + Debug + PartialEq + Eq` plain data with no behaviour beyond
//! formatting, because the peer transport maps these types 1:1 onto a protobuf protocol.
//! Message names follow the Raft paper (RequestVote, AppendEntries) rather than etcd's
//! (`MsgVote`, `MsgApp`); the glossary in `docs/` maps one onto the other.

use std::collections::BTreeSet;
use std::fmt;

/// Identifier of a Raft member. `0` is reserved for "none" (no vote, no known leader).
pub type NodeId = u64;

/// The reserved "no node" id used for `HardState::vote` and `SoftState::leader_id`.
pub const NO_NODE: NodeId = 0;

/// What an [`Entry`]'s `data` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// An application command (or, when `data` is empty, the leader's no-op).
    #[default]
    Normal,
    /// A membership change (encoded by the configuration-change layer; opaque to the log).
    ConfChange,
}

/// One entry of the replicated log (Raft §5.3).
///
/// Invariant: `index >= 1` and `term >= 1` for every real entry; index 0 / term 0 is the
/// dummy entry that precedes the first log entry. An empty `Normal` entry is the no-op a new
/// leader appends to commit entries of earlier terms (Raft §5.4.2, §8).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    /// Term in which a leader created the entry.
    pub term: u64,
    /// Position in the log, starting at 1.
    pub index: u64,
    /// Whether `data` is an application command or a configuration change.
    pub kind: EntryKind,
    /// Opaque payload.
    pub data: Vec<u8>,
}

impl Entry {
    /// Estimated encoded size in bytes, used to batch entries up to `max_size_per_msg`:
    /// the payload plus 24 bytes for term, index and kind.
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + 24
    }

    /// A leader's no-op: an empty `Normal` entry.
    pub fn is_noop(&self) -> bool {
        self.kind == EntryKind::Normal && self.data.is_empty()
    }
}

/// State that must be on stable storage before a node answers RPCs (Raft Figure 2,
/// "Persistent state on all servers"), plus the commit index (etcd persists it too so a
/// restarted node can apply committed entries without waiting for a leader).
///
/// Invariant: `term` never decreases; `vote` is only set for the current `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: u64,
    /// Candidate voted for in `term`, or 0 for none.
    pub vote: NodeId,
    /// Highest log index known to be committed.
    pub commit: u64,
}

/// A cluster configuration. `voters` is C_new (the incoming config); during a joint
/// configuration (Raft §6 / thesis §4.3) `voters_outgoing` holds C_old, otherwise it is empty.
///
/// Invariant: learners and voters are disjoint; `learners_next` only holds nodes that are in
/// `voters_outgoing` and become learners when the joint configuration is left.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConfState {
    /// Voters of the incoming (or only) configuration.
    pub voters: BTreeSet<NodeId>,
    /// Voters of the outgoing configuration; empty unless in a joint configuration.
    pub voters_outgoing: BTreeSet<NodeId>,
    /// Non-voting members that receive the log.
    pub learners: BTreeSet<NodeId>,
    /// Outgoing voters that turn into learners when the joint configuration is left.
    pub learners_next: BTreeSet<NodeId>,
    /// Leave the joint configuration automatically once it is committed.
    pub auto_leave: bool,
}

impl ConfState {
    /// A simple (non-joint) configuration of the given voters.
    pub fn from_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        ConfState {
            voters: voters.into_iter().collect(),
            ..Default::default()
        }
    }
}

/// The point a snapshot stands for: the log through (`index`, `term`) folded into a store
/// image, and the configuration in force at `index` (Raft §7, thesis §5.1; etcd raft
/// `SnapshotMetadata`).
///
/// Only this metadata travels through the Raft core. The image itself (the MVCC store at
/// `index`) never enters a Raft message or a `Ready`: the transport streams it beside the
/// `InstallSnapshot` message and the state machine installs it (docs/snapshots.md §2). The
/// rejected alternative — etcd's `Snapshot.Data` bytes inside the message — would make the
/// core hold and copy a whole store image it never looks at.
///
/// Invariant: `index == 0` (with `term == 0`) is the "no snapshot" point of a log that was
/// never compacted; otherwise `term >= 1` is the term of the entry at `index`, and
/// `conf_state` is the configuration after applying every entry through `index`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// Index of the last log entry the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// The configuration as of `index` (a follower restoring the snapshot adopts it).
    pub conf_state: ConfState,
}

impl SnapshotMeta {
    /// Whether `id` is a member (voter, outgoing voter or learner) of the snapshot's
    /// configuration. `learners_next` need not be checked: each of them is an outgoing voter.
    pub fn contains(&self, id: NodeId) -> bool {
        let cs = &self.conf_state;
        cs.voters.contains(&id) || cs.voters_outgoing.contains(&id) || cs.learners.contains(&id)
    }
}

/// The role a node plays. A learner is a membership attribute, not a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Passive: answers leaders and candidates (Raft §5.2).
    #[default]
    Follower,
    /// Asking peers whether they would vote, without bumping the term (thesis §9.6).
    PreCandidate,
    /// Asking for votes in a new term (Raft §5.2).
    Candidate,
    /// Replicates its log to everyone else (Raft §5.3).
    Leader,
}

/// Volatile state that is useful to observe but need not be persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SoftState {
    /// Known leader of the current term, or 0.
    pub leader_id: NodeId,
    /// This node's role.
    pub role: Role,
}

/// Result of a linearizable read (thesis §6.4): once the state machine has applied through
/// `index`, a read issued with `request_ctx` may be served locally.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReadState {
    /// Commit index the read must wait for.
    pub index: u64,
    /// The caller's context passed to `read_index`, unchanged.
    pub request_ctx: Vec<u8>,
}

/// A message between Raft peers.
///
/// `term` is the sender's term, except: `RequestVote { pre_vote: true }` carries the term the
/// sender would campaign in (its term + 1), a granted pre-vote response echoes that term, and
/// `Propose` / `ReadIndex` (forwarded requests, not Raft RPCs) carry term 0 and are never
/// term-checked — as in etcd raft, where they are treated as local messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// Sender's term (see the type-level docs for the exceptions).
    pub term: u64,
    /// The RPC.
    pub body: MessageBody,
}

/// The RPCs of Raft (paper names) plus heartbeat, forwarding and leadership transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// Ask for a vote (Raft §5.2); with `pre_vote`, ask whether a vote *would* be granted
    /// (thesis §9.6) without anybody changing term. `leader_transfer` marks the election a
    /// leader started with `TimeoutNow` (thesis §3.10): voters then ignore their leader lease.
    RequestVote {
        pre_vote: bool,
        leader_transfer: bool,
        last_log_index: u64,
        last_log_term: u64,
    },
    /// Answer to `RequestVote`.
    RequestVoteResponse { pre_vote: bool, reject: bool },
    /// Replicate `entries` after (`prev_log_index`, `prev_log_term`), and tell the leader's
    /// commit index (Raft §5.3).
    AppendEntries {
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// Answer to `AppendEntries`. Accepted: `index` is the last index now matching the
    /// leader. Rejected: `index` is the rejected `prev_log_index`, and (`reject_hint`,
    /// `log_term`) is the follower's guess of the latest entry that could match: the largest
    /// index ≤ min(prev_log_index, last index) whose term is ≤ `prev_log_term`, and its term
    /// (etcd raft's findConflictByTerm), so the leader can skip a whole term per round trip.
    AppendEntriesResponse {
        reject: bool,
        index: u64,
        reject_hint: u64,
        log_term: u64,
    },
    /// Leader liveness ping carrying min(follower's match index, leader commit) and, for
    /// ReadIndex, the context of the newest pending read (thesis §6.4).
    Heartbeat { commit: u64, ctx: Vec<u8> },
    /// Answer to `Heartbeat`, echoing its `ctx`.
    HeartbeatResponse { ctx: Vec<u8> },
    /// A follower forwarding a client proposal to its leader.
    Propose { entries: Vec<Entry> },
    /// A follower forwarding a linearizable read to its leader.
    ReadIndex { ctx: Vec<u8> },
    /// The leader's answer to `ReadIndex`: serve the read once applied through `index`.
    ReadIndexResponse { index: u64, ctx: Vec<u8> },
    /// Leadership transfer: start an election now, skipping pre-vote (thesis §3.10).
    TimeoutNow,
    /// The leader no longer has the entries (or the term of `next_index − 1`) a follower
    /// needs: replace the follower's log with `snapshot` (Raft §7, etcd raft `MsgSnap`).
    /// Only the metadata is here; the transport delivers the store image beside it and
    /// steps this message once the image is in place. Answered, after the persist, with an
    /// `AppendEntriesResponse` whose `index` is the follower's last (or commit) index.
    InstallSnapshot { snapshot: SnapshotMeta },
}

impl MessageBody {
    /// The paper-style name of the RPC, for logs and test output.
    pub fn name(&self) -> &'static str {
        match self {
            MessageBody::RequestVote { pre_vote: true, .. } => "PreVote",
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            MessageBody::RequestVoteResponse { .. } => "RequestVoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::Propose { .. } => "Propose",
            MessageBody::ReadIndex { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
        }
    }
}

/// Bytes shown as a quoted string when printable ASCII, as hex otherwise.
pub(crate) struct DisplayBytes<'a>(pub &'a [u8]);

impl fmt::Display for DisplayBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            write!(f, "\"{}\"", String::from_utf8_lossy(self.0))
        } else {
            write!(f, "0x")?;
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
}

/// `term/index Kind "data"`, e.g. `1/3 Normal "put x"`.
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {:?} {}",
            self.term,
            self.index,
            self.kind,
            DisplayBytes(&self.data)
        )
    }
}

fn write_entries(f: &mut fmt::Formatter<'_>, entries: &[Entry]) -> fmt::Result {
    write!(f, "[")?;
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{e}")?;
    }
    write!(f, "]")
}

/// One line, e.g. `1->2 AppendEntries term=1 prev=1/1 commit=1 entries=[1/2 Normal "x"]`.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{} {} term={}",
            self.from,
            self.to,
            self.body.name(),
            self.term
        )?;
        match &self.body {
            MessageBody::RequestVote {
                leader_transfer,
                last_log_index,
                last_log_term,
                ..
            } => {
                write!(f, " last={last_log_term}/{last_log_index}")?;
                if *leader_transfer {
                    write!(f, " transfer")?;
                }
                Ok(())
            }
            MessageBody::RequestVoteResponse { reject, .. } => {
                write!(f, " {}", if *reject { "reject" } else { "grant" })
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                commit,
            } => {
                write!(
                    f,
                    " prev={prev_log_term}/{prev_log_index} commit={commit} entries="
                )?;
                write_entries(f, entries)
            }
            MessageBody::AppendEntriesResponse {
                reject: false,
                index,
                ..
            } => {
                write!(f, " index={index}")
            }
            MessageBody::AppendEntriesResponse {
                reject: true,
                index,
                reject_hint,
                log_term,
            } => {
                write!(f, " reject index={index} hint={log_term}/{reject_hint}")
            }
            MessageBody::Heartbeat { commit, ctx } => {
                write!(f, " commit={commit}")?;
                if !ctx.is_empty() {
                    write!(f, " ctx={}", DisplayBytes(ctx))?;
                }
                Ok(())
            }
            MessageBody::HeartbeatResponse { ctx } | MessageBody::ReadIndex { ctx } => {
                if !ctx.is_empty() {
                    write!(f, " ctx={}", DisplayBytes(ctx))?;
                }
                Ok(())
            }
            MessageBody::Propose { entries } => {
                write!(f, " entries=")?;
                write_entries(f, entries)
            }
            MessageBody::ReadIndexResponse { index, ctx } => {
                write!(f, " index={index} ctx={}", DisplayBytes(ctx))
            }
            MessageBody::TimeoutNow => Ok(()),
            MessageBody::InstallSnapshot { snapshot } => {
                write!(f, " snapshot={}/{}", snapshot.term, snapshot.index)?;
                write!(f, " voters={:?}", snapshot.conf_state.voters)?;
                if !snapshot.conf_state.learners.is_empty() {
                    write!(f, " learners={:?}", snapshot.conf_state.learners)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_display_quotes_printable_and_hexes_binary() {
        let e = Entry {
            term: 2,
            index: 5,
            kind: EntryKind::Normal,
            data: b"put x".to_vec(),
        };
        assert_eq!(e.to_string(), "2/5 Normal \"put x\"");
        let e = Entry {
            term: 1,
            index: 1,
            kind: EntryKind::ConfChange,
            data: vec![0, 255],
        };
        assert_eq!(e.to_string(), "1/1 ConfChange 0x00ff");
    }

    #[test]
    fn message_display_names_the_rpc() {
        let m = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::RequestVote {
                pre_vote: true,
                leader_transfer: false,
                last_log_index: 7,
                last_log_term: 2,
            },
        };
        assert_eq!(m.to_string(), "1->2 PreVote term=3 last=2/7");
        let m = Message {
            from: 2,
            to: 1,
            term: 3,
            body: MessageBody::AppendEntriesResponse {
                reject: true,
                index: 9,
                reject_hint: 6,
                log_term: 2,
            },
        };
        assert_eq!(
            m.to_string(),
            "2->1 AppendEntriesResponse term=3 reject index=9 hint=2/6"
        );
    }

    #[test]
    fn install_snapshot_display_shows_point_and_config() {
        let m = Message {
            from: 1,
            to: 3,
            term: 2,
            body: MessageBody::InstallSnapshot {
                snapshot: SnapshotMeta {
                    index: 11,
                    term: 2,
                    conf_state: ConfState::from_voters([1, 2, 3]),
                },
            },
        };
        assert_eq!(
            m.to_string(),
            "1->3 InstallSnapshot term=2 snapshot=2/11 voters={1, 2, 3}"
        );
    }

    #[test]
    fn snapshot_contains_voters_outgoing_and_learners_only() {
        let meta = SnapshotMeta {
            index: 5,
            term: 1,
            conf_state: ConfState {
                voters: [1].into(),
                voters_outgoing: [2].into(),
                learners: [3].into(),
                ..Default::default()
            },
        };
        assert!(meta.contains(1) && meta.contains(2) && meta.contains(3));
        assert!(!meta.contains(4));
    }

    #[test]
    fn noop_is_empty_normal_entry() {
        assert!(
            Entry {
                term: 1,
                index: 1,
                ..Default::default()
            }
            .is_noop()
        );
        let cc = Entry {
            term: 1,
            index: 1,
            kind: EntryKind::ConfChange,
            data: vec![],
        };
        assert!(!cc.is_noop());
    }
}
