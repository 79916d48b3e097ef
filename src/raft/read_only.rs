//! Bookkeeping for linearizable reads by ReadIndex (Raft thesis §6.4).
//!
//! The leader records its commit index for each read, tags a heartbeat round with the read's
//! context, and releases the read once a quorum has answered a heartbeat carrying that (or a
//! later) context: then nobody else can have been leader when the commit index was recorded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::types::NodeId;

/// One pending read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadIndexStatus {
    /// The leader's commit index when the read arrived: the read is served after applying it.
    pub index: u64,
    /// Who asked: this node (a local `read_index`) or a follower (forwarded `ReadIndex`).
    pub from: NodeId,
    /// The caller's context.
    pub ctx: Vec<u8>,
    /// Voters that answered a heartbeat carrying this context (or a later one).
    pub acks: BTreeSet<NodeId>,
}

/// Pending reads in arrival order.
///
/// Invariant: `queue` and `pending` hold the same contexts. Contexts must be unique among
/// pending reads (callers use a request id); a duplicate is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOnly {
    pending: BTreeMap<Vec<u8>, ReadIndexStatus>,
    queue: VecDeque<Vec<u8>>,
}

impl ReadOnly {
    /// Records a read at commit index `index`. Returns false for a duplicate context.
    pub fn add_request(&mut self, index: u64, from: NodeId, ctx: Vec<u8>) -> bool {
        if self.pending.contains_key(&ctx) {
            return false;
        }
        let status = ReadIndexStatus {
            index,
            from,
            ctx: ctx.clone(),
            acks: BTreeSet::new(),
        };
        self.pending.insert(ctx.clone(), status);
        self.queue.push_back(ctx);
        true
    }

    /// Records that `id` answered a heartbeat carrying `ctx`; returns the acks so far, or
    /// `None` for an unknown (already released) context.
    pub fn recv_ack(&mut self, id: NodeId, ctx: &[u8]) -> Option<&BTreeSet<NodeId>> {
        let status = self.pending.get_mut(ctx)?;
        status.acks.insert(id);
        Some(&status.acks)
    }

    /// Releases the read with `ctx` and every read queued before it (a heartbeat answered
    /// after theirs confirms them too), oldest first.
    pub fn advance(&mut self, ctx: &[u8]) -> Vec<ReadIndexStatus> {
        let Some(pos) = self.queue.iter().position(|c| c.as_slice() == ctx) else {
            return Vec::new();
        };
        self.queue
            .drain(..=pos)
            .map(|c| {
                self.pending
                    .remove(&c)
                    .expect("queued read must be pending")
            })
            .collect()
    }

    /// Context of the newest pending read, to attach to the next heartbeat.
    pub fn last_pending_ctx(&self) -> Option<&[u8]> {
        self.queue.back().map(|c| c.as_slice())
    }

    /// Number of pending reads.
    #[cfg(test)]
    pub fn pending_count(&self) -> usize {
        self.queue.len()
    }

    /// Drops every pending read (on stepping down: they can no longer be confirmed).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_releases_prefix_in_order() {
        let mut r = ReadOnly::default();
        assert!(r.add_request(5, 1, b"a".to_vec()));
        assert!(r.add_request(6, 2, b"b".to_vec()));
        assert!(r.add_request(7, 1, b"c".to_vec()));
        assert!(
            !r.add_request(8, 1, b"b".to_vec()),
            "duplicate context is ignored"
        );
        assert_eq!(r.last_pending_ctx(), Some(&b"c"[..]));
        assert_eq!(r.recv_ack(2, b"b").map(|a| a.len()), Some(1));
        let released = r.advance(b"b");
        assert_eq!(
            released.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![5, 6]
        );
        assert_eq!(released[1].from, 2);
        assert_eq!(r.pending_count(), 1);
        assert_eq!(r.recv_ack(2, b"a"), None);
        assert!(r.advance(b"zzz").is_empty());
    }
}
