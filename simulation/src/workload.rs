//! Simulated clients: they send Put, DeleteRange and Txn requests to random nodes, as the
//! gRPC API does — each request is an encoded `peerpb::InternalRequest` with a unique `id`,
//! proposed on the node the client reached. That node answers the client when *it* applies an
//! entry carrying that id (`StoreActor`'s waiters); such an answer is an acknowledgement
//! ([`Ack`]). A node that crashes forgets its waiters, so its pending requests are never
//! acknowledged (the client saw an error, though the write may still commit).

use std::collections::BTreeMap;

use ferrokv::pb::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RequestOp, TxnRequest,
    compare::{CompareResult, CompareTarget, TargetUnion},
    request_op,
};
use ferrokv::pb::peerpb::{InternalRequest, internal_request::Request};
use ferrokv::raft::NodeId;
use prost::Message as _;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Number of distinct keys (`k00`..): few, so requests conflict and overwrite each other.
pub const KEY_COUNT: u32 = 16;

/// The key with number `n`.
pub fn key(n: u32) -> Vec<u8> {
    format!("k{n:02}").into_bytes()
}

/// A request that a node applied and answered to the client that proposed it there.
#[derive(Clone, Debug, PartialEq)]
pub struct Ack {
    /// The request.
    pub request: InternalRequest,
    /// Node that answered.
    pub node: NodeId,
    /// Raft index the request was applied at.
    pub index: u64,
    /// `Ok(revision in the response header)`, or the request error the store returned.
    pub result: Result<i64, String>,
}

#[derive(Debug)]
struct Pending {
    request: InternalRequest,
    node: NodeId,
    incarnation: u64,
}

/// A linearizable read (Range of one key through ReadIndex, Raft thesis §6.4) in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRead {
    /// Node serving it.
    pub node: NodeId,
    /// That node's incarnation when the read began.
    pub incarnation: u64,
    /// The key read.
    pub key: Vec<u8>,
    /// Highest index of any write acknowledged before the read began: a linearizable read
    /// must reflect it.
    pub acked_floor: u64,
    /// The read index Raft confirmed, once it did.
    pub read_index: Option<u64>,
    /// Tick the read began.
    pub started_at: u64,
}

/// A client gives up on a read after this many ticks (the API's request timeout: 5 s plus two
/// election timeouts, about 52 ticks of 100 ms). A read index lost with a dropped message
/// would otherwise wait forever.
pub const READ_TIMEOUT_TICKS: u64 = 52;

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    /// Requests a node accepted for proposing.
    pub proposed: u64,
    /// Requests refused at once (no known leader, election in progress).
    pub refused: u64,
    /// Requests acknowledged.
    pub acked: u64,
    /// Linearizable reads started.
    pub reads: u64,
    /// Linearizable reads served.
    pub reads_served: u64,
}

/// The clients of one run.
#[derive(Debug)]
pub struct Workload {
    rng: ChaCha8Rng,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    next_read_id: u64,
    reads: BTreeMap<u64, PendingRead>,
    /// Highest index of any acknowledged request so far.
    acked_index_max: u64,
    /// Acknowledged requests, in acknowledgement order.
    pub acks: Vec<Ack>,
    /// What happened so far.
    pub stats: WorkloadStats,
}

impl Workload {
    /// Clients drawing from `rng`.
    pub fn new(rng: ChaCha8Rng) -> Self {
        Workload {
            rng,
            next_id: 1,
            pending: BTreeMap::new(),
            next_read_id: 1,
            reads: BTreeMap::new(),
            acked_index_max: 0,
            acks: Vec::new(),
            stats: WorkloadStats::default(),
        }
    }

    /// A fresh random request: 70% Put, 15% DeleteRange, 15% Txn. Values name the request id
    /// (`v<id>`), so every written value is unique.
    pub fn next_request(&mut self) -> InternalRequest {
        let id = self.next_id;
        self.next_id += 1;
        let roll = self.rng.random_range(0..100);
        let request = if roll < 70 {
            Request::Put(self.put(id, ""))
        } else if roll < 85 {
            Request::DeleteRange(self.delete_range())
        } else {
            Request::Txn(self.txn(id))
        };
        InternalRequest {
            id,
            request: Some(request),
        }
    }

    /// A Compaction at `revision` (the watch clients propose these; no random draw, so the
    /// request stream above is unchanged).
    pub fn compaction(&mut self, revision: i64) -> InternalRequest {
        self.with_id(Request::Compaction(CompactionRequest {
            revision,
            ..Default::default()
        }))
    }

    /// `request` with a fresh client id (the lease clients send through this; no random
    /// draw, so the request stream above is unchanged).
    pub fn with_id(&mut self, request: Request) -> InternalRequest {
        let id = self.next_id;
        self.next_id += 1;
        InternalRequest {
            id,
            request: Some(request),
        }
    }

    /// A Put of a random key to `v<id><suffix>`.
    fn put(&mut self, id: u64, suffix: &str) -> PutRequest {
        PutRequest {
            key: key(self.rng.random_range(0..KEY_COUNT)),
            value: format!("v{id}{suffix}").into_bytes(),
            ..Default::default()
        }
    }

    /// One key, or a range `[k_a, k_b)`.
    fn delete_range(&mut self) -> DeleteRangeRequest {
        let a = self.rng.random_range(0..KEY_COUNT);
        let range_end = if self.rng.random_bool(0.5) {
            Vec::new()
        } else {
            key(self.rng.random_range(a + 1..=KEY_COUNT))
        };
        DeleteRangeRequest {
            key: key(a),
            range_end,
            ..Default::default()
        }
    }

    /// "Create if absent" (version == 0) or "compare and swap" on an earlier value; the
    /// success branch puts, the failure branch puts or deletes another key.
    fn txn(&mut self, id: u64) -> TxnRequest {
        let compare_key = key(self.rng.random_range(0..KEY_COUNT));
        let compare = if self.rng.random_bool(0.5) {
            Compare {
                key: compare_key.clone(),
                target: CompareTarget::Version as i32,
                result: CompareResult::Equal as i32,
                target_union: Some(TargetUnion::Version(0)),
                ..Default::default()
            }
        } else {
            let earlier = self.rng.random_range(1..=id);
            Compare {
                key: compare_key.clone(),
                target: CompareTarget::Value as i32,
                result: CompareResult::Equal as i32,
                target_union: Some(TargetUnion::Value(format!("v{earlier}").into_bytes())),
                ..Default::default()
            }
        };
        let success = RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: compare_key,
                value: format!("v{id}").into_bytes(),
                ..Default::default()
            })),
        };
        let failure = if self.rng.random_bool(0.5) {
            request_op::Request::RequestPut(self.put(id, "f"))
        } else {
            request_op::Request::RequestDeleteRange(self.delete_range())
        };
        TxnRequest {
            compare: vec![compare],
            success: vec![success],
            failure: vec![RequestOp {
                request: Some(failure),
            }],
        }
    }

    /// Encodes `request` for the log.
    pub fn encode(request: &InternalRequest) -> Vec<u8> {
        request.encode_to_vec()
    }

    /// `node` (in its `incarnation`) accepted `request` for proposing.
    pub fn proposed(&mut self, request: InternalRequest, node: NodeId, incarnation: u64) {
        self.stats.proposed += 1;
        self.pending.insert(
            request.id,
            Pending {
                request,
                node,
                incarnation,
            },
        );
    }

    /// A node refused a request at once.
    pub fn refused(&mut self) {
        self.stats.refused += 1;
    }

    /// `node` (in `incarnation`) applied request `id` at `index` with `result`: if that node
    /// is the one the client is waiting on, the client gets its answer. Returns the ack.
    pub fn applied(
        &mut self,
        id: u64,
        node: NodeId,
        incarnation: u64,
        index: u64,
        result: Result<i64, String>,
    ) -> Option<&Ack> {
        let p = self.pending.get(&id)?;
        if p.node != node || p.incarnation != incarnation {
            return None;
        }
        let p = self.pending.remove(&id).expect("checked above");
        self.stats.acked += 1;
        self.acked_index_max = self.acked_index_max.max(index);
        self.acks.push(Ack {
            request: p.request,
            node,
            index,
            result,
        });
        self.acks.last()
    }

    /// Starts a read of a random key on `node`; returns its id (the ReadIndex context).
    pub fn start_read(&mut self, node: NodeId, incarnation: u64, now: u64) -> u64 {
        let id = self.next_read_id;
        self.next_read_id += 1;
        self.stats.reads += 1;
        let key = key(self.rng.random_range(0..KEY_COUNT));
        self.reads.insert(
            id,
            PendingRead {
                node,
                incarnation,
                key,
                acked_floor: self.acked_index_max,
                read_index: None,
                started_at: now,
            },
        );
        id
    }

    /// The node refused read `id` at once (no leader).
    pub fn read_refused(&mut self, id: u64) {
        self.reads.remove(&id);
    }

    /// Raft confirmed read index `index` for read `id` on `node` (in `incarnation`).
    /// Returns false for a read this node does not wait for.
    pub fn read_index_confirmed(
        &mut self,
        id: u64,
        node: NodeId,
        incarnation: u64,
        index: u64,
    ) -> bool {
        match self.reads.get_mut(&id) {
            Some(r) if r.node == node && r.incarnation == incarnation => {
                r.read_index = Some(index);
                true
            }
            _ => false,
        }
    }

    /// Removes and returns the reads `node` can serve now that it applied through `applied`.
    pub fn reads_due(&mut self, node: NodeId, applied: u64) -> Vec<(u64, PendingRead)> {
        let due: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.node == node && r.read_index.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        self.stats.reads_served += due.len() as u64;
        due.into_iter()
            .map(|id| (id, self.reads.remove(&id).expect("listed above")))
            .collect()
    }

    /// Reads older than [`READ_TIMEOUT_TICKS`] at `now` time out (the client got an error).
    pub fn expire_reads(&mut self, now: u64) {
        self.reads
            .retain(|_, r| now.saturating_sub(r.started_at) <= READ_TIMEOUT_TICKS);
    }

    /// `node` crashed: its readers got an error.
    pub fn forget_reads(&mut self, node: NodeId) {
        self.reads.retain(|_, r| r.node != node);
    }

    /// Whether request `id` was acknowledged.
    pub fn is_acked(&self, id: u64) -> bool {
        self.acks.iter().any(|a| a.request.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn only_the_proposing_incarnation_acknowledges() {
        let mut w = Workload::new(ChaCha8Rng::seed_from_u64(7));
        let r = w.next_request();
        let id = r.id;
        w.proposed(r, 2, 1);
        assert!(w.applied(id, 1, 1, 5, Ok(3)).is_none(), "another node");
        assert!(
            w.applied(id, 2, 2, 5, Ok(3)).is_none(),
            "a later incarnation"
        );
        assert_eq!(w.applied(id, 2, 1, 5, Ok(3)).map(|a| a.index), Some(5));
        assert!(w.applied(id, 2, 1, 5, Ok(3)).is_none(), "acknowledged once");
        assert!(w.is_acked(id));
    }

    #[test]
    fn ids_are_unique_and_requests_round_trip() {
        let mut w = Workload::new(ChaCha8Rng::seed_from_u64(7));
        let a = w.next_request();
        let b = w.next_request();
        assert_ne!(a.id, b.id);
        let decoded = InternalRequest::decode(Workload::encode(&a).as_slice()).unwrap();
        assert_eq!(decoded, a);
    }
}
