//! Simulated watch clients: they open Watch streams on random running nodes, create watches
//! (one key, a prefix, a key range, from a key, or every key; with `start_revision` 0, in the
//! past — so the node catches them up from its history, or cancels them as compacted — or in
//! the future), cancel some, ask for progress, stop reading a stream for a while (so the node
//! parks watchers and catches them up later), propose compactions, and after a crash of
//! their node re-create their watches elsewhere from the revision after the last one they
//! saw — as an etcd client library resumes a broken watch.
//!
//! Each watch's client-side state is a [`WatchRecord`]; what it must receive is checked by
//! [`crate::invariants::WatchDelivery`]. The node side (a `ferrokv::watch::Hub` per node and
//! the stream queues) lives in the cluster driver.

use std::collections::BTreeMap;

use ferrokv::pb::etcdserverpb::WatchCreateRequest;
use ferrokv::pb::etcdserverpb::watch_create_request::FilterType;
use ferrokv::raft::NodeId;
use ferrokv::watch::StreamId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::clock::Tick;
use crate::workload::{KEY_COUNT, key};

/// Most watches a run keeps at once (active plus waiting to resume): enough to overlap every
/// kind of range, few enough that the hubs stay cheap.
pub const WATCHES_MAX: usize = 16;
/// Most streams a client opens on one node incarnation.
pub const STREAMS_PER_NODE_MAX: usize = 3;

/// The client's view of one watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRecord {
    /// Stable across resumes: the client's own name for the watch.
    pub client_id: u64,
    /// The node it is registered on.
    pub node: NodeId,
    /// The stream (ids are unique over the run).
    pub stream: StreamId,
    /// The id the node gave it.
    pub watch_id: i64,
    /// The latest create request (key, range, filters, `prev_kv`, start revision).
    pub request: WatchCreateRequest,
    /// Every matching change with revision ≤ `through` has been received (or precedes the
    /// watch's start); nothing above it has.
    pub through: i64,
    /// The `created` response was read.
    pub created_seen: bool,
    /// The client asked to cancel it.
    pub cancel_sent: bool,
}

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Watches created (including re-creations after a crash).
    pub created: u64,
    /// Watches re-created on another node (or incarnation) after a crash.
    pub resumed: u64,
    /// Responses with events read by clients.
    pub responses: u64,
    /// Events read by clients.
    pub events: u64,
    /// History reads (`Kv::history`) for unsynced watchers.
    pub fetches: u64,
    /// Deliveries that found their stream full: the watcher was parked.
    pub parked: u64,
    /// Watches canceled with `compact_revision` (their start was compacted).
    pub compacted: u64,
    /// Compactions proposed.
    pub compactions: u64,
}

/// Per-seed rates of the watch clients, per mille per tick unless noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchRates {
    /// Create a watch.
    pub create: u32,
    /// Cancel one.
    pub cancel: u32,
    /// Stop reading one stream for a while.
    pub stall: u32,
    /// Ask one stream for progress.
    pub progress: u32,
    /// Propose a compaction.
    pub compact: u32,
    /// Percent of history reads whose answer reaches the hub 1..=3 ticks late, after live
    /// events of later revisions (the seam case the hub must survive without the FIFO
    /// mailbox).
    pub late_history_percent: u32,
    /// Percent of a crashed node's watches whose client re-creates them elsewhere.
    pub resume_percent: u32,
}

/// The watch clients of one run.
#[derive(Debug)]
pub struct WatchClients {
    rng: ChaCha8Rng,
    /// This run's rates.
    pub rates: WatchRates,
    next_stream: StreamId,
    next_client_id: u64,
    /// Watches registered on a node, by `(stream, watch_id)`.
    pub watches: BTreeMap<(StreamId, i64), WatchRecord>,
    /// Watches whose node crashed, to be re-created at the given tick.
    pub resumes: Vec<(Tick, WatchRecord)>,
    /// What happened so far.
    pub stats: WatchStats,
}

impl WatchClients {
    /// Clients drawing their rates and every later choice from `rng`.
    pub fn new(mut rng: ChaCha8Rng) -> Self {
        let rates = WatchRates {
            create: rng.random_range(20..=120),
            cancel: rng.random_range(0..=30),
            stall: rng.random_range(0..=60),
            progress: rng.random_range(0..=30),
            compact: rng.random_range(0..=10),
            late_history_percent: rng.random_range(0..=50),
            resume_percent: rng.random_range(0..=100),
        };
        WatchClients {
            rng,
            rates,
            next_stream: 1,
            next_client_id: 1,
            watches: BTreeMap::new(),
            resumes: Vec::new(),
            stats: WatchStats::default(),
        }
    }

    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.random_range(0..1000) < per_mille
    }

    /// A uniform choice in `range`.
    pub fn pick(&mut self, range: std::ops::Range<usize>) -> usize {
        self.rng.random_range(range)
    }

    /// A uniform choice in `range` (ticks, revisions).
    pub fn pick_u64(&mut self, range: std::ops::RangeInclusive<u64>) -> u64 {
        self.rng.random_range(range)
    }

    /// Whether another watch may be created.
    pub fn has_capacity(&self) -> bool {
        self.watches.len() + self.resumes.len() < WATCHES_MAX
    }

    /// A fresh stream id and that stream's queue bound (1..=8 responses: small, so that a
    /// few revisions in one tick, or a client that stops reading, fill it).
    pub fn new_stream(&mut self) -> (StreamId, usize) {
        let id = self.next_stream;
        self.next_stream += 1;
        (id, self.rng.random_range(1..=8))
    }

    /// A random create request for a node at `current` revision: 45% from now on
    /// (`start_revision` 0), 40% from up to 40 revisions back, 15% from 1..=3 ahead; 30% with
    /// `prev_kv`, 10% each NOPUT / NODELETE.
    pub fn random_request(&mut self, current: i64) -> WatchCreateRequest {
        let (key_bytes, range_end) = self.random_range();
        let roll = self.rng.random_range(0..100);
        let start_revision = if roll < 45 {
            0
        } else if roll < 85 {
            self.rng.random_range((current - 40).max(1)..=current)
        } else {
            current + self.rng.random_range(1..=3)
        };
        let mut filters = Vec::new();
        if self.rng.random_bool(0.1) {
            filters.push(FilterType::Noput as i32);
        }
        if self.rng.random_bool(0.1) {
            filters.push(FilterType::Nodelete as i32);
        }
        WatchCreateRequest {
            key: key_bytes,
            range_end,
            start_revision,
            prev_kv: self.rng.random_bool(0.3),
            filters,
            ..Default::default()
        }
    }

    /// One key (40%), a prefix (`k0`: keys 0..=9, or `k1`: 10..; 20%), `[k_a, k_b)` (20%),
    /// every key from `k_a` (10%), every key (10%).
    fn random_range(&mut self) -> (Vec<u8>, Vec<u8>) {
        let roll = self.rng.random_range(0..100);
        let a = self.rng.random_range(0..KEY_COUNT);
        if roll < 40 {
            (key(a), Vec::new())
        } else if roll < 60 {
            if self.rng.random_bool(0.5) {
                (b"k0".to_vec(), b"k1".to_vec())
            } else {
                (b"k1".to_vec(), b"k2".to_vec())
            }
        } else if roll < 80 {
            (key(a), key(self.rng.random_range(a + 1..=KEY_COUNT)))
        } else if roll < 90 {
            (key(a), vec![0])
        } else {
            (vec![0], vec![0])
        }
    }

    /// A new client-side record for a watch just created.
    pub fn record(
        &mut self,
        node: NodeId,
        stream: StreamId,
        watch_id: i64,
        request: WatchCreateRequest,
        through: i64,
    ) -> WatchRecord {
        let client_id = self.next_client_id;
        self.next_client_id += 1;
        WatchRecord {
            client_id,
            node,
            stream,
            watch_id,
            request,
            through,
            created_seen: false,
            cancel_sent: false,
        }
    }

    /// `node` crashed: its streams are gone. Each of its watches whose `created` response the
    /// client had read is, with the run's resume chance, re-created later (from `through + 1`);
    /// the others are dropped.
    pub fn node_crashed(&mut self, node: NodeId, now: Tick) {
        let keys: Vec<_> = self
            .watches
            .iter()
            .filter(|(_, w)| w.node == node)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let w = self.watches.remove(&k).expect("listed above");
            let resume = self.rng.random_range(0..100) < self.rates.resume_percent;
            if resume && w.created_seen && !w.cancel_sent {
                let at = now + self.rng.random_range(1..=30);
                self.resumes.push((at, w));
            }
        }
    }

    /// Removes and returns the resumes due at `now`, in the order they were queued.
    pub fn resumes_due(&mut self, now: Tick) -> Vec<WatchRecord> {
        if self.resumes.iter().all(|(at, _)| *at > now) {
            return Vec::new();
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resumes)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.resumes = later;
        due.into_iter().map(|(_, w)| w).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn requests_are_valid_ranges_and_start_revisions_stay_positive() {
        let mut c = WatchClients::new(ChaCha8Rng::seed_from_u64(3));
        for current in [1, 2, 50] {
            for _ in 0..200 {
                let r = c.random_request(current);
                assert!(r.start_revision >= 0 && r.start_revision <= current + 3);
                let empty = !r.range_end.is_empty() && r.range_end != [0] && r.range_end <= r.key;
                assert!(!empty, "{r:?}");
            }
        }
    }

    #[test]
    fn a_crash_resumes_only_watches_the_client_saw_created() {
        let mut c = WatchClients::new(ChaCha8Rng::seed_from_u64(3));
        c.rates.resume_percent = 100;
        let req = WatchCreateRequest::default();
        let mut seen = c.record(1, 1, 0, req.clone(), 5);
        seen.created_seen = true;
        let unseen = c.record(1, 1, 1, req.clone(), 5);
        let other = c.record(2, 2, 0, req, 5);
        for w in [seen, unseen, other] {
            c.watches.insert((w.stream, w.watch_id), w);
        }
        c.node_crashed(1, 10);
        assert_eq!(c.watches.len(), 1, "n2's watch stays");
        assert_eq!(c.resumes.len(), 1);
        assert!(c.resumes_due(10).is_empty());
        assert_eq!(c.resumes_due(40)[0].through, 5);
        assert!(c.resumes.is_empty());
    }
}
