//! Conversions between the Raft core's plain message types and the `peerpb` wire types.
//! One function each way; a wire message with no body is rejected, never guessed.

use crate::pb::peerpb::{self, raft_message::Body};
use crate::raft::{Entry, EntryKind, Message, MessageBody};

/// Core entry → wire entry.
pub fn entry_to_pb(e: Entry) -> peerpb::Entry {
    peerpb::Entry {
        term: e.term,
        index: e.index,
        kind: match e.kind {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        },
        data: e.data,
    }
}

/// Wire entry → core entry. Errors: an unknown entry kind.
pub fn entry_from_pb(e: peerpb::Entry) -> Result<Entry, String> {
    let kind = match e.kind {
        0 => EntryKind::Normal,
        1 => EntryKind::ConfChange,
        k => return Err(format!("unknown entry kind {k}")),
    };
    Ok(Entry {
        term: e.term,
        index: e.index,
        kind,
        data: e.data,
    })
}

fn entries_from_pb(entries: Vec<peerpb::Entry>) -> Result<Vec<Entry>, String> {
    entries.into_iter().map(entry_from_pb).collect()
}

/// Core message → wire message.
pub fn message_to_pb(m: Message) -> peerpb::RaftMessage {
    let body = match m.body {
        MessageBody::RequestVote {
            pre_vote,
            leader_transfer,
            last_log_index,
            last_log_term,
        } => Body::RequestVote(peerpb::RequestVote {
            pre_vote,
            leader_transfer,
            last_log_index,
            last_log_term,
        }),
        MessageBody::RequestVoteResponse { pre_vote, reject } => {
            Body::RequestVoteResponse(peerpb::RequestVoteResponse { pre_vote, reject })
        }
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            commit,
        } => Body::AppendEntries(peerpb::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries: entries.into_iter().map(entry_to_pb).collect(),
            commit,
        }),
        MessageBody::AppendEntriesResponse {
            reject,
            index,
            reject_hint,
            log_term,
        } => Body::AppendEntriesResponse(peerpb::AppendEntriesResponse {
            reject,
            index,
            reject_hint,
            log_term,
        }),
        MessageBody::Heartbeat { commit, ctx } => {
            Body::Heartbeat(peerpb::Heartbeat { commit, ctx })
        }
        MessageBody::HeartbeatResponse { ctx } => {
            Body::HeartbeatResponse(peerpb::HeartbeatResponse { ctx })
        }
        MessageBody::Propose { entries } => Body::Propose(peerpb::Propose {
            entries: entries.into_iter().map(entry_to_pb).collect(),
        }),
        MessageBody::ReadIndex { ctx } => Body::ReadIndex(peerpb::ReadIndex { ctx }),
        MessageBody::ReadIndexResponse { index, ctx } => {
            Body::ReadIndexResponse(peerpb::ReadIndexResponse { index, ctx })
        }
        MessageBody::TimeoutNow => Body::TimeoutNow(peerpb::TimeoutNow {}),
    };
    peerpb::RaftMessage {
        from: m.from,
        to: m.to,
        term: m.term,
        body: Some(body),
    }
}

/// Wire message → core message. Errors: a missing body or a bad entry.
pub fn message_from_pb(m: peerpb::RaftMessage) -> Result<Message, String> {
    let body = match m.body.ok_or("raft message without a body")? {
        Body::RequestVote(b) => MessageBody::RequestVote {
            pre_vote: b.pre_vote,
            leader_transfer: b.leader_transfer,
            last_log_index: b.last_log_index,
            last_log_term: b.last_log_term,
        },
        Body::RequestVoteResponse(b) => MessageBody::RequestVoteResponse {
            pre_vote: b.pre_vote,
            reject: b.reject,
        },
        Body::AppendEntries(b) => MessageBody::AppendEntries {
            prev_log_index: b.prev_log_index,
            prev_log_term: b.prev_log_term,
            entries: entries_from_pb(b.entries)?,
            commit: b.commit,
        },
        Body::AppendEntriesResponse(b) => MessageBody::AppendEntriesResponse {
            reject: b.reject,
            index: b.index,
            reject_hint: b.reject_hint,
            log_term: b.log_term,
        },
        Body::Heartbeat(b) => MessageBody::Heartbeat {
            commit: b.commit,
            ctx: b.ctx,
        },
        Body::HeartbeatResponse(b) => MessageBody::HeartbeatResponse { ctx: b.ctx },
        Body::Propose(b) => MessageBody::Propose {
            entries: entries_from_pb(b.entries)?,
        },
        Body::ReadIndex(b) => MessageBody::ReadIndex { ctx: b.ctx },
        Body::ReadIndexResponse(b) => MessageBody::ReadIndexResponse {
            index: b.index,
            ctx: b.ctx,
        },
        Body::TimeoutNow(_) => MessageBody::TimeoutNow,
    };
    Ok(Message {
        from: m.from,
        to: m.to,
        term: m.term,
        body,
    })
}
