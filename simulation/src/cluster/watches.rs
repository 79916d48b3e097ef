//! Watches on the simulated nodes: each running node owns a real `ferrokv::watch::Hub` and
//! its Watch streams, driven the way the `WatchHub` actor drives them
//! (`src/watch/actor.rs`):
//!
//! ```text
//!   apply(entry) ─► ApplyOutcome.events ─► Hub::apply(revision) ─► per-watcher responses
//!                                                                  │ stream full? park
//!   every tick, after a create, after a history answer:            ▼
//!   Hub::fetches(has_room) ─► Kv::history ─► Hub::history ─► stream queue ─► client reads
//! ```
//!
//! A stream queue holds at most its bound of responses (control responses always go), as the
//! actor's `queue_max`; a delivery to a full stream parks the watcher. A history answer
//! normally reaches the hub at once — the actor's FIFO mailbox puts it after the live events
//! of every revision it covers and before any later one; with the run's late-history rate it
//! arrives 1..=3 ticks later, after live events of later revisions, which the hub must handle
//! by fetching again. A crash drops the node's hub, streams and late answers.

use std::collections::{BTreeMap, VecDeque};

use ferrokv::mvcc::MvccError;
use ferrokv::pb::etcdserverpb::{WatchCreateRequest, WatchResponse};
use ferrokv::pb::mvccpb::Event as WatchEvent;
use ferrokv::watch::{Delivery, History, Hub, StreamId};

use super::{Cluster, Event, Phase, Sabotage, storage_violation};
use crate::clock::Tick;
use crate::invariants::{Check, HistoryRead, Violation, violated};
use crate::watch::{STREAMS_PER_NODE_MAX, WatchRecord};

/// Bound on fetch rounds in one sync: each round syncs, parks or cancels every watcher it
/// fetched for, so a handful suffice; more means the hub keeps asking.
const SYNC_ROUNDS_MAX: usize = 100;

/// A response on its way to the client, and whether it came from a history read.
type Queued = (WatchResponse, Option<HistoryRead>);

/// One Watch stream of a node: the responses the client has not read yet.
#[derive(Debug)]
pub(super) struct SimStream {
    queue: VecDeque<Queued>,
    /// Responses it may hold before it counts as full (the actor's `queue_max`).
    queue_max: usize,
    /// The client does not read before this tick.
    stalled_until: Tick,
}

impl SimStream {
    fn has_room(&self) -> bool {
        self.queue.len() < self.queue_max
    }
}

/// The watch side of one running node (one incarnation).
#[derive(Debug)]
pub(super) struct NodeWatch {
    hub: Hub,
    streams: BTreeMap<StreamId, SimStream>,
    /// History answers on their way to the hub (late ones).
    late_answers: usize,
}

impl NodeWatch {
    pub(super) fn new(current_revision: i64) -> Self {
        NodeWatch {
            hub: Hub::new(current_revision),
            streams: BTreeMap::new(),
            late_answers: 0,
        }
    }

    /// Every stream read to the end, every watcher synced, no history answer outstanding.
    pub(super) fn settled(&self) -> bool {
        self.late_answers == 0
            && self
                .streams
                .iter()
                .all(|(s, st)| st.queue.is_empty() && self.hub.progress(*s).is_some())
    }
}

impl Cluster {
    /// One tick of the watch clients: read the streams, then (safety phase) create, cancel,
    /// stall, ask for progress, compact; re-create watches of crashed nodes; and let every
    /// hub catch up its unsynced watchers (the actor's `RESYNC_INTERVAL`).
    pub(super) fn watch_tick(&mut self, phase: Phase) -> Check {
        for i in 0..self.nodes.len() {
            self.watch_read(i)?;
        }
        if phase == Phase::Safety {
            let rates = self.watch_clients.rates;
            if self.watch_clients.has_capacity() && self.watch_clients.chance(rates.create) {
                let i = self.random_watch_node();
                let current = self.kv(i).current_revision();
                let request = self.watch_clients.random_request(current);
                self.watch_create(i, request, None)?;
            }
            if self.watch_clients.chance(rates.cancel) {
                self.watch_cancel();
            }
            if self.watch_clients.chance(rates.stall) {
                self.watch_stall();
            }
            if self.watch_clients.chance(rates.progress) {
                self.watch_progress();
            }
            if self.watch_clients.chance(rates.compact) {
                self.watch_compact()?;
            }
        }
        for w in self.watch_clients.resumes_due(self.now) {
            let i = self.random_watch_node();
            let mut request = w.request.clone();
            request.start_revision = w.through + 1;
            self.watch_clients.stats.resumed += 1;
            self.watch_create(i, request, Some(w))?;
        }
        for i in 0..self.nodes.len() {
            self.watch_sync(i)?;
        }
        Ok(())
    }

    fn kv(&self, i: usize) -> &ferrokv::mvcc::Kv {
        &self.nodes[i].store.as_ref().expect("a running node").kv
    }

    fn random_watch_node(&mut self) -> usize {
        let up = self.running_nodes();
        up[self.watch_clients.pick(0..up.len())]
    }

    /// Creates a watch on node `i` (on a new stream or one of its open ones). `resumed` is
    /// the record of a watch whose node crashed: it keeps its client id and `through`.
    fn watch_create(
        &mut self,
        i: usize,
        request: WatchCreateRequest,
        resumed: Option<WatchRecord>,
    ) -> Check {
        let id = self.nodes[i].id;
        let open = self.nodes[i].watch.as_ref().expect("running").streams.len();
        let new_stream =
            open == 0 || (open < STREAMS_PER_NODE_MAX && self.watch_clients.pick(0..100) < 30);
        let stream = if new_stream {
            let (stream, queue_max) = self.watch_clients.new_stream();
            let nw = self.nodes[i].watch.as_mut().expect("running");
            nw.hub.open_stream(stream);
            nw.streams.insert(
                stream,
                SimStream {
                    queue: VecDeque::new(),
                    queue_max,
                    stalled_until: 0,
                },
            );
            stream
        } else {
            let k = self.watch_clients.pick(0..open);
            let nw = self.nodes[i].watch.as_ref().expect("running");
            *nw.streams.keys().nth(k).expect("k < open")
        };
        let nw = self.nodes[i].watch.as_mut().expect("running");
        let response = nw.hub.create(stream, &request);
        if !response.created || response.canceled || response.watch_id < 0 {
            return violated(
                "watch delivery (etcd watch guarantees)",
                format!("n{id} refused a valid watch {request:?}: {response:?}"),
            );
        }
        let watch_id = response.watch_id;
        let current = response.header.as_ref().map_or(0, |h| h.revision);
        nw.streams
            .get_mut(&stream)
            .expect("opened above")
            .queue
            .push_back((response, None));
        let record = match resumed {
            Some(mut w) => {
                w.node = id;
                w.stream = stream;
                w.watch_id = watch_id;
                w.request = request;
                w.created_seen = false;
                w
            }
            None => {
                let through = if request.start_revision == 0 {
                    current
                } else {
                    request.start_revision - 1
                };
                self.watch_clients
                    .record(id, stream, watch_id, request, through)
            }
        };
        self.trace.line(format_args!(
            "t={} n{id} watch {} create s{stream} w{watch_id} {:?}..{:?} start={} through={}",
            self.now,
            record.client_id,
            String::from_utf8_lossy(&record.request.key),
            String::from_utf8_lossy(&record.request.range_end),
            record.request.start_revision,
            record.through
        ));
        self.watch_clients.stats.created += 1;
        self.watch_clients
            .watches
            .insert((stream, watch_id), record);
        self.watch_sync(i)
    }

    fn watch_cancel(&mut self) {
        let n = self.watch_clients.watches.len();
        if n == 0 {
            return;
        }
        let k = self.watch_clients.pick(0..n);
        let (key, w) = self.watch_clients.watches.iter_mut().nth(k).expect("k < n");
        if w.cancel_sent {
            return;
        }
        w.cancel_sent = true;
        let (stream, watch_id) = *key;
        let i = super::index_of(w.node);
        let nw = self.nodes[i]
            .watch
            .as_mut()
            .expect("watches live on running nodes");
        if let Some(response) = nw.hub.cancel(stream, watch_id) {
            let st = nw.streams.get_mut(&stream).expect("open stream");
            st.queue.push_back((response, None));
        }
        self.trace.line(format_args!(
            "t={} n{} watch {} cancel",
            self.now, w.node, w.client_id
        ));
    }

    /// The client of a random open stream stops reading it for 1..=25 ticks.
    fn watch_stall(&mut self) {
        let streams: Vec<(usize, StreamId)> = (0..self.nodes.len())
            .flat_map(|i| {
                let keys: Vec<StreamId> = self.nodes[i]
                    .watch
                    .as_ref()
                    .map(|nw| nw.streams.keys().copied().collect())
                    .unwrap_or_default();
                keys.into_iter().map(move |s| (i, s))
            })
            .collect();
        if streams.is_empty() {
            return;
        }
        let (i, s) = streams[self.watch_clients.pick(0..streams.len())];
        let until = self.now + self.watch_clients.pick_u64(1..=25);
        let nw = self.nodes[i].watch.as_mut().expect("listed as running");
        nw.streams.get_mut(&s).expect("listed").stalled_until = until;
        self.trace.line(format_args!(
            "t={} n{} stream s{s} not read until t={until}",
            self.now, self.nodes[i].id
        ));
    }

    /// A progress request on the stream of a random watch (etcd `RequestProgress`).
    fn watch_progress(&mut self) {
        let n = self.watch_clients.watches.len();
        if n == 0 {
            return;
        }
        let k = self.watch_clients.pick(0..n);
        let ((stream, _), w) = self.watch_clients.watches.iter().nth(k).expect("k < n");
        let i = super::index_of(w.node);
        let nw = self.nodes[i].watch.as_mut().expect("running");
        if let Some(response) = nw.hub.progress(*stream) {
            let st = nw.streams.get_mut(stream).expect("open stream");
            st.queue.push_back((response, None));
        }
    }

    /// A client proposes a compaction at up to 20 revisions below a node's current revision.
    fn watch_compact(&mut self) -> Check {
        let i = self.random_watch_node();
        let current = self.kv(i).current_revision();
        let back = self.watch_clients.pick_u64(0..=20) as i64;
        let revision = (current - back).max(1);
        let request = self.workload.compaction(revision);
        self.watch_clients.stats.compactions += 1;
        self.propose(i, request).map(|_| ())
    }

    /// The clients of node `i`'s streams read every response queued, unless stalled.
    fn watch_read(&mut self, i: usize) -> Check {
        let now = self.now;
        let Some(nw) = self.nodes[i].watch.as_mut() else {
            return Ok(());
        };
        if nw.streams.values().all(|st| st.queue.is_empty()) {
            return Ok(());
        }
        let mut read: Vec<(StreamId, Queued)> = Vec::new();
        for (s, st) in nw
            .streams
            .iter_mut()
            .filter(|(_, st)| st.stalled_until <= now)
        {
            read.extend(st.queue.drain(..).map(|q| (*s, q)));
        }
        let id = self.nodes[i].id;
        let mut recreate = Vec::new();
        for (stream, (response, history)) in read {
            recreate.extend(self.watch_receive(id, stream, &response, history)?);
        }
        // Clients whose watch was canceled as compacted start over from the compacted
        // revision (the usual answer to etcd's ErrCompacted).
        for request in recreate {
            self.watch_create(i, request, None)?;
        }
        Ok(())
    }

    /// A client reads one response; returns a request to create if the client starts over
    /// after a compacted cancel.
    fn watch_receive(
        &mut self,
        node: ferrokv::raft::NodeId,
        stream: StreamId,
        response: &WatchResponse,
        history: Option<HistoryRead>,
    ) -> Result<Option<WatchCreateRequest>, Violation> {
        let header = response.header.as_ref().map_or(0, |h| h.revision);
        if response.watch_id < 0 && !response.created && !response.canceled {
            self.trace.line(format_args!(
                "t={} n{node} s{stream} progress rev={header}",
                self.now
            ));
            let watches = self
                .watch_clients
                .watches
                .range_mut((stream, i64::MIN)..=(stream, i64::MAX))
                .map(|(_, w)| w);
            self.invariants.on_watch_progress(watches, header)?;
            return Ok(None);
        }
        let key = (stream, response.watch_id);
        let Some(w) = self.watch_clients.watches.get_mut(&key) else {
            return Err(Violation {
                invariant: "watch delivery (etcd watch guarantees)",
                detail: format!(
                    "n{node} stream {stream}: a response for a watch the client does not have: \
                     {response:?}"
                ),
            });
        };
        if !response.events.is_empty() {
            self.watch_clients.stats.responses += 1;
            self.watch_clients.stats.events += response.events.len() as u64;
        }
        let (client_id, through) = (w.client_id, w.through);
        let ended = self.invariants.on_watch_response(w, response, history)?;
        self.trace.line(format_args!(
            "t={} n{node} watch {client_id} recv after={through} rev={header} events={} \
             created={} canceled={} compact={}{}",
            self.now,
            response.events.len(),
            response.created,
            response.canceled,
            response.compact_revision,
            if history.is_some() { " history" } else { "" }
        ));
        if !ended {
            return Ok(None);
        }
        let w = self
            .watch_clients
            .watches
            .remove(&key)
            .expect("present above");
        if response.compact_revision == 0 {
            return Ok(None);
        }
        self.watch_clients.stats.compacted += 1;
        let again = self.phase == Phase::Safety && self.watch_clients.pick(0..100) < 50;
        Ok(again.then_some(WatchCreateRequest {
            start_revision: response.compact_revision,
            ..w.request
        }))
    }

    /// Node `i` applied an entry that produced `revision` with `events`: the hub hands them
    /// to its synced watchers (`WatchHub`'s `Applied` handler).
    pub(super) fn watch_applied(
        &mut self,
        i: usize,
        revision: i64,
        events: Vec<WatchEvent>,
    ) -> Check {
        let Some(nw) = self.nodes[i].watch.as_mut() else {
            return Ok(());
        };
        let deliveries = nw.hub.apply(revision, &events);
        for mut d in deliveries {
            if self.options.sabotage == Some(Sabotage::WatchSkip)
                && !self.watch_skipped
                && self.now >= 200
            {
                self.watch_skipped = true;
                let dropped = d.response.events.pop();
                self.trace
                    .line(format_args!("t={} sabotage: dropped {dropped:?}", self.now));
                if d.response.events.is_empty() {
                    continue;
                }
            }
            self.watch_deliver(i, d, None);
        }
        Ok(())
    }

    /// Queues `d` on its stream, or parks the watcher if the stream is full (the actor's
    /// `deliver`).
    fn watch_deliver(&mut self, i: usize, d: Delivery, read: Option<HistoryRead>) {
        let nw = self.nodes[i].watch.as_mut().expect("running");
        let Some(st) = nw.streams.get_mut(&d.stream) else {
            return;
        };
        if st.has_room() {
            st.queue.push_back((d.response, read));
        } else {
            nw.hub.park(d.stream, d.watch_id, d.resume_rev);
            self.watch_clients.stats.parked += 1;
            self.trace.line(format_args!(
                "t={} n{} s{} w{} parked at {}",
                self.now, self.nodes[i].id, d.stream, d.watch_id, d.resume_rev
            ));
        }
    }

    /// Node `i`'s hub asks for the history of its unsynced watchers whose stream has room;
    /// the store reads it (`StoreActor`'s `FetchHistory` handler) and the answer goes to the
    /// hub at once or, with the run's late-history rate, 1..=3 ticks later.
    fn watch_sync(&mut self, i: usize) -> Check {
        for _ in 0..SYNC_ROUNDS_MAX {
            let Some(nw) = self.nodes[i].watch.as_mut() else {
                return Ok(());
            };
            let streams = &nw.streams;
            let fetches = nw
                .hub
                .fetches(|s| streams.get(&s).is_some_and(SimStream::has_room));
            if fetches.is_empty() {
                return Ok(());
            }
            for f in fetches {
                let node = &self.nodes[i];
                let kv = &node.store.as_ref().expect("running").kv;
                let (history, compacted) =
                    match kv.history(&f.key, &f.range_end, f.from_rev, f.prev_kv) {
                        Ok(events) => (
                            History::Events {
                                revision: kv.current_revision(),
                                events,
                            },
                            false,
                        ),
                        Err(MvccError::Compacted) => (
                            History::Compacted {
                                compact_revision: kv.compact_revision(),
                            },
                            true,
                        ),
                        Err(e) => return Err(storage_violation(node.id, &e)),
                    };
                let read = HistoryRead {
                    from_rev: f.from_rev,
                    compact_revision: kv.compact_revision(),
                };
                let (id, incarnation) = (node.id, node.incarnation);
                self.invariants.on_history_read(
                    id,
                    kv.applied_index(),
                    (f.stream, f.watch_id),
                    read,
                    compacted,
                )?;
                self.watch_clients.stats.fetches += 1;
                let late = self.phase == Phase::Safety
                    && (self.watch_clients.pick(0..100) as u32)
                        < self.watch_clients.rates.late_history_percent;
                self.trace.line(format_args!(
                    "t={} n{id} s{} w{} history from {} compacted={compacted}{}",
                    self.now,
                    f.stream,
                    f.watch_id,
                    f.from_rev,
                    if late { " late" } else { "" }
                ));
                if late {
                    let at = self.now + self.watch_clients.pick_u64(1..=3);
                    self.nodes[i].watch.as_mut().expect("running").late_answers += 1;
                    self.queue.push(
                        at,
                        Event::History {
                            node: id,
                            incarnation,
                            target: (f.stream, f.watch_id, f.generation),
                            history,
                            read,
                        },
                    );
                } else {
                    self.watch_history(i, (f.stream, f.watch_id, f.generation), history, read);
                }
            }
        }
        violated(
            "liveness",
            format!(
                "n{}'s watch hub still fetches history after {SYNC_ROUNDS_MAX} rounds",
                self.nodes[i].id
            ),
        )
    }

    /// A history answer reaches node `i`'s hub (the actor's `HistoryFetched` handler, minus
    /// its `sync`, which the caller does).
    fn watch_history(
        &mut self,
        i: usize,
        (stream, watch_id, generation): (StreamId, i64, u64),
        history: History,
        read: HistoryRead,
    ) {
        let nw = self.nodes[i].watch.as_mut().expect("running");
        let Some(d) = nw.hub.history(stream, watch_id, generation, history) else {
            return;
        };
        if d.response.canceled {
            // Compacted: a control response, always queued.
            if let Some(st) = nw.streams.get_mut(&d.stream) {
                st.queue.push_back((d.response, Some(read)));
            }
        } else {
            self.watch_deliver(i, d, Some(read));
        }
    }

    /// A late history answer arrives (dropped if its node crashed meanwhile).
    pub(super) fn watch_late_history(
        &mut self,
        node: ferrokv::raft::NodeId,
        incarnation: u64,
        target: (StreamId, i64, u64),
        history: History,
        read: HistoryRead,
    ) -> Check {
        let i = super::index_of(node);
        if self.nodes[i].incarnation != incarnation || self.nodes[i].watch.is_none() {
            return Ok(());
        }
        self.nodes[i].watch.as_mut().expect("checked").late_answers -= 1;
        self.watch_history(i, target, history, read);
        self.watch_sync(i)
    }

    /// Node `i`'s store was replaced by a leader's image at `revision` (the `WatchHub`'s
    /// `StoreRestored` handler): the synced watchers read what they missed from the new
    /// store's history.
    pub(super) fn watch_restored(&mut self, i: usize, revision: i64) -> Check {
        if let Some(nw) = self.nodes[i].watch.as_mut() {
            nw.hub.restored(revision);
        }
        self.watch_sync(i)
    }

    /// Node `i` crashed: its hub, streams and pending answers are gone; clients notice.
    pub(super) fn watch_crash(&mut self, i: usize) {
        self.nodes[i].watch = None;
        self.watch_clients.node_crashed(self.nodes[i].id, self.now);
    }

    /// Every running node's watches settled (see [`NodeWatch::settled`]).
    pub(super) fn watch_settled(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.watch.as_ref().is_none_or(NodeWatch::settled))
            && self.watch_clients.resumes.is_empty()
    }

    /// The end of the run: every watch holds every matching event up to its node's revision.
    pub(super) fn watch_final(&mut self) -> Check {
        let watches: Vec<WatchRecord> = self.watch_clients.watches.values().cloned().collect();
        for w in &watches {
            let current = self.kv(super::index_of(w.node)).current_revision();
            self.invariants.on_watch_final(w, current)?;
        }
        Ok(())
    }

    /// For the liveness dump: per node, watchers and queued responses.
    pub(super) fn watch_describe(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            if let Some(nw) = &n.watch {
                let queued: usize = nw.streams.values().map(|s| s.queue.len()).sum();
                out.push_str(&format!(
                    "[n{} watchers={} queued={queued} late={} settled={}] ",
                    n.id,
                    nw.hub.watcher_count(),
                    nw.late_answers,
                    nw.settled()
                ));
            }
        }
        out
    }
}
