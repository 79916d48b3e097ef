//! Conversions between the Raft core's plain message types and the `peerpb` wire types.
//! One function each way; a wire message with no body is rejected, never guessed.

use crate::pb::peerpb::{self, raft_message::Body};
use crate::raft::{ConfState, Entry, EntryKind, Message, MessageBody, SnapshotMeta};

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

/// Core snapshot point → wire snapshot point (sets in ascending id order).
pub fn snapshot_to_pb(s: SnapshotMeta) -> peerpb::SnapshotMeta {
    let cs = s.conf_state;
    peerpb::SnapshotMeta {
        index: s.index,
        term: s.term,
        conf_state: Some(peerpb::ConfState {
            voters: cs.voters.into_iter().collect(),
            voters_outgoing: cs.voters_outgoing.into_iter().collect(),
            learners: cs.learners.into_iter().collect(),
            learners_next: cs.learners_next.into_iter().collect(),
            auto_leave: cs.auto_leave,
        }),
    }
}

/// Wire snapshot point → core snapshot point. Errors: a missing configuration (a snapshot
/// always has one; an empty one would be guessed, not received).
pub fn snapshot_from_pb(s: peerpb::SnapshotMeta) -> Result<SnapshotMeta, String> {
    let cs = s.conf_state.ok_or("snapshot without a configuration")?;
    Ok(SnapshotMeta {
        index: s.index,
        term: s.term,
        conf_state: ConfState {
            voters: cs.voters.into_iter().collect(),
            voters_outgoing: cs.voters_outgoing.into_iter().collect(),
            learners: cs.learners.into_iter().collect(),
            learners_next: cs.learners_next.into_iter().collect(),
            auto_leave: cs.auto_leave,
        },
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
        MessageBody::InstallSnapshot { snapshot } => {
            Body::InstallSnapshot(peerpb::InstallSnapshot {
                snapshot: Some(snapshot_to_pb(snapshot)),
            })
        }
    };
    peerpb::RaftMessage {
        from: m.from,
        to: m.to,
        term: m.term,
        body: Some(body),
    }
}

/// Wire message → core message. Errors: a missing body, a bad entry, or an InstallSnapshot
/// without its snapshot point or configuration.
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
        Body::InstallSnapshot(b) => MessageBody::InstallSnapshot {
            snapshot: snapshot_from_pb(b.snapshot.ok_or("InstallSnapshot without a snapshot")?)?,
        },
    };
    Ok(Message {
        from: m.from,
        to: m.to,
        term: m.term,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: MessageBody) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 3,
            body,
        }
    }

    #[test]
    fn every_message_kind_survives_the_wire() {
        let entry = Entry {
            term: 3,
            index: 7,
            kind: EntryKind::ConfChange,
            data: b"cc".to_vec(),
        };
        let bodies = vec![
            MessageBody::RequestVote {
                pre_vote: true,
                leader_transfer: true,
                last_log_index: 7,
                last_log_term: 2,
            },
            MessageBody::RequestVoteResponse {
                pre_vote: false,
                reject: true,
            },
            MessageBody::AppendEntries {
                prev_log_index: 6,
                prev_log_term: 2,
                entries: vec![entry.clone()],
                commit: 5,
            },
            MessageBody::AppendEntriesResponse {
                reject: true,
                index: 6,
                reject_hint: 4,
                log_term: 1,
            },
            MessageBody::Heartbeat {
                commit: 5,
                ctx: b"c".to_vec(),
            },
            MessageBody::HeartbeatResponse { ctx: b"c".to_vec() },
            MessageBody::Propose {
                entries: vec![entry],
            },
            MessageBody::ReadIndex { ctx: b"r".to_vec() },
            MessageBody::ReadIndexResponse {
                index: 9,
                ctx: b"r".to_vec(),
            },
            MessageBody::TimeoutNow,
            MessageBody::InstallSnapshot {
                snapshot: SnapshotMeta {
                    index: 11,
                    term: 3,
                    conf_state: ConfState {
                        voters: [1, 2, 3].into(),
                        voters_outgoing: [1, 2, 4].into(),
                        learners: [5].into(),
                        learners_next: [4].into(),
                        auto_leave: true,
                    },
                },
            },
        ];
        for body in bodies {
            let m = msg(body);
            assert_eq!(message_from_pb(message_to_pb(m.clone())), Ok(m));
        }
    }

    #[test]
    fn install_snapshot_without_its_point_is_rejected() {
        let mut wire = message_to_pb(msg(MessageBody::InstallSnapshot {
            snapshot: SnapshotMeta::default(),
        }));
        wire.body = Some(Body::InstallSnapshot(peerpb::InstallSnapshot {
            snapshot: None,
        }));
        assert!(message_from_pb(wire.clone()).is_err());
        wire.body = Some(Body::InstallSnapshot(peerpb::InstallSnapshot {
            snapshot: Some(peerpb::SnapshotMeta {
                index: 1,
                term: 1,
                conf_state: None,
            }),
        }));
        assert!(message_from_pb(wire).is_err());
    }
}
