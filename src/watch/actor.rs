//! `WatchHub`: owns the watch [`Hub`] core and one outgoing queue per gRPC Watch stream.
//!
//! Inputs: stream requests from `api::watch` ([`OpenStream`], [`CreateWatch`],
//! [`CancelWatch`], [`RequestProgress`], [`CloseStream`]), applied events from the
//! `StoreActor` ([`EventsApplied`]) and history answers ([`HistoryFetched`]). It never waits on a
//! client: a stream queue holding [`WatchHub::queue_max`] responses counts as full, and a
//! watcher whose delivery finds it full is parked (unsynced) and caught up from history
//! once the client has read (checked on every input and every [`RESYNC_INTERVAL`]).
//! Control responses (created, canceled) always go: they are bounded by the client's own
//! requests.

use super::hub::{Delivery, Hub, StreamId};
use crate::bus::{EventsApplied, FetchHistory, HistoryFetched, StoreRestored};
use crate::pb::etcdserverpb::{WatchCreateRequest, WatchResponse};
use actix::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How often parked watchers are checked for room (etcd syncs unsynced watchers every 100 ms).
pub const RESYNC_INTERVAL: Duration = Duration::from_millis(100);
/// How often idle watchers with `progress_notify` get an empty response (etcd's default
/// `--experimental-watch-progress-notify-interval`).
pub const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Default responses a stream may have queued before it counts as full.
pub const STREAM_QUEUE_MAX: usize = 1024;

/// One response queued on a stream.
#[derive(Debug)]
pub struct Outbound {
    /// The response (header holds only the revision; the gRPC layer fills the rest).
    pub response: WatchResponse,
    /// Its watch asked for fragments: the gRPC layer splits it if it is too large
    /// ([`super::fragment::split`]).
    pub fragment: bool,
}

/// The sending half of one stream: responses, and the count of those not yet taken by the
/// gRPC layer (it decrements on each take).
pub struct StreamSink {
    /// Responses to the client.
    pub tx: UnboundedSender<Outbound>,
    /// Responses queued and not yet taken.
    pub queued: Arc<AtomicUsize>,
}

impl StreamSink {
    /// True while fewer than `queue_max` responses wait for the client.
    fn has_room(&self, queue_max: usize) -> bool {
        self.queued.load(Ordering::Acquire) < queue_max
    }

    /// Queues `out` and counts it; `Err` when the client is gone (the stream must close).
    fn push(&self, out: Outbound) -> Result<(), ClientGone> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.send(out).map_err(|_| ClientGone)
    }
}

/// The receiving half of a stream was dropped.
struct ClientGone;

/// The watch actor; see the module docs.
pub struct WatchHub {
    hub: Hub,
    /// Where history fetches go (the `StoreActor`).
    store: Recipient<FetchHistory>,
    sinks: BTreeMap<StreamId, StreamSink>,
    next_stream_id: StreamId,
    queue_max: usize,
}

impl WatchHub {
    /// A hub for a store at `current_revision`; a stream with `queue_max` queued responses
    /// counts as full.
    pub fn new(store: Recipient<FetchHistory>, current_revision: i64, queue_max: usize) -> Self {
        WatchHub {
            hub: Hub::new(current_revision),
            store,
            sinks: BTreeMap::new(),
            next_stream_id: 1,
            queue_max,
        }
    }

    /// Responses a stream may hold before it counts as full.
    pub fn queue_max(&self) -> usize {
        self.queue_max
    }

    /// Queues a control response; a stream whose client is gone is closed.
    fn send(&mut self, stream: StreamId, response: WatchResponse) {
        self.queue(
            stream,
            Outbound {
                response,
                fragment: false,
            },
        );
    }

    fn queue(&mut self, stream: StreamId, out: Outbound) {
        let Some(sink) = self.sinks.get(&stream) else {
            return;
        };
        if sink.push(out).is_err() {
            self.close(stream);
        }
    }

    /// Queues a watcher's response, or parks the watcher if its stream is full. Per delivery:
    /// one sink lookup, one room check, one count — the hub already made one response per
    /// watcher, so nothing here grows with the stream's other watchers.
    fn deliver(&mut self, d: Delivery) {
        let Some(sink) = self.sinks.get(&d.stream) else {
            return; // closed meanwhile: its watchers are gone too
        };
        if !sink.has_room(self.queue_max) {
            tracing::debug!(
                stream = d.stream,
                watch_id = d.watch_id,
                "watch stream full: parked"
            );
            self.hub.park(d.stream, d.watch_id, d.resume_rev);
            return;
        }
        let out = Outbound {
            response: d.response,
            fragment: d.fragment,
        };
        if sink.push(out).is_err() {
            self.close(d.stream);
        }
    }

    fn close(&mut self, stream: StreamId) {
        self.sinks.remove(&stream);
        let freed = self.hub.close_stream(stream);
        tracing::debug!(
            stream,
            freed,
            watchers = self.hub.watcher_count(),
            streams = self.hub.stream_count(),
            "watch stream closed"
        );
    }

    /// Asks the store for the history of every unsynced watcher whose stream has room.
    fn sync(&mut self) {
        let sinks = &self.sinks;
        let max = self.queue_max;
        let fetches = self
            .hub
            .fetches(|s| sinks.get(&s).is_some_and(|s| s.has_room(max)));
        for f in fetches {
            self.store.do_send(FetchHistory(f));
        }
    }
}

impl Actor for WatchHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(RESYNC_INTERVAL, |hub, _| hub.sync());
        ctx.run_interval(PROGRESS_NOTIFY_INTERVAL, |hub, _| {
            for d in hub.hub.progress_tick() {
                hub.deliver(d);
            }
        });
    }
}

/// A new gRPC Watch stream; answers its id.
#[derive(Message)]
#[rtype(result = "StreamId")]
pub struct OpenStream(pub StreamSink);

impl Handler<OpenStream> for WatchHub {
    type Result = StreamId;

    fn handle(&mut self, OpenStream(sink): OpenStream, _: &mut Context<Self>) -> StreamId {
        let id = self.next_stream_id;
        self.next_stream_id += 1;
        self.sinks.insert(id, sink);
        self.hub.open_stream(id);
        id
    }
}

/// The client ended its stream (or went away): free its watchers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStream(pub StreamId);

impl Handler<CloseStream> for WatchHub {
    type Result = ();

    fn handle(&mut self, CloseStream(stream): CloseStream, _: &mut Context<Self>) {
        self.close(stream);
    }
}

/// `WatchCreateRequest` on a stream.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CreateWatch {
    /// The stream.
    pub stream: StreamId,
    /// The request.
    pub request: WatchCreateRequest,
}

impl Handler<CreateWatch> for WatchHub {
    type Result = ();

    fn handle(&mut self, msg: CreateWatch, _: &mut Context<Self>) {
        let response = self.hub.create(msg.stream, &msg.request);
        self.send(msg.stream, response);
        self.sync();
    }
}

/// `WatchCancelRequest` on a stream.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelWatch {
    /// The stream.
    pub stream: StreamId,
    /// The watch to cancel.
    pub watch_id: i64,
}

impl Handler<CancelWatch> for WatchHub {
    type Result = ();

    fn handle(&mut self, msg: CancelWatch, _: &mut Context<Self>) {
        if let Some(response) = self.hub.cancel(msg.stream, msg.watch_id) {
            self.send(msg.stream, response);
        }
    }
}

/// `WatchProgressRequest` on a stream.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestProgress(pub StreamId);

impl Handler<RequestProgress> for WatchHub {
    type Result = ();

    fn handle(&mut self, RequestProgress(stream): RequestProgress, _: &mut Context<Self>) {
        if let Some(response) = self.hub.progress(stream) {
            self.send(stream, response);
        }
    }
}

impl Handler<EventsApplied> for WatchHub {
    type Result = ();

    fn handle(&mut self, msg: EventsApplied, _: &mut Context<Self>) {
        for d in self.hub.apply(msg.revision, &msg.events) {
            self.deliver(d);
        }
    }
}

impl Handler<StoreRestored> for WatchHub {
    type Result = ();

    fn handle(&mut self, msg: StoreRestored, _: &mut Context<Self>) {
        self.hub.restored(msg.revision);
        self.sync();
    }
}

impl Handler<HistoryFetched> for WatchHub {
    type Result = ();

    fn handle(&mut self, msg: HistoryFetched, _: &mut Context<Self>) {
        if let Some(d) = self
            .hub
            .history(msg.stream, msg.watch_id, msg.generation, msg.history)
        {
            if d.response.canceled {
                self.send(d.stream, d.response); // compacted: always goes
            } else {
                self.deliver(d);
            }
        }
        self.sync();
    }
}

/// How many watchers and streams are open (etcd's gauges `etcd_debugging_mvcc_watcher_total`
/// and `etcd_debugging_mvcc_watch_stream_total`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchCounts {
    /// Watchers over all streams.
    pub watchers: usize,
    /// Open gRPC Watch streams.
    pub streams: usize,
}

/// Ask for the [`WatchCounts`] (for metrics and tests).
#[derive(Message)]
#[rtype(result = "WatchCounts")]
pub struct GetWatchCounts;

impl Handler<GetWatchCounts> for WatchHub {
    type Result = MessageResult<GetWatchCounts>;

    fn handle(&mut self, _: GetWatchCounts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(WatchCounts {
            watchers: self.hub.watcher_count(),
            streams: self.hub.stream_count(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::ApplyCommitted;
    use crate::cluster::Members;
    use crate::mvcc::actor::{StoreActor, StoreLinks};
    use crate::mvcc::{FjallBackend, Kv};
    use crate::pb::etcdserverpb::PutRequest;
    use crate::pb::peerpb::{InternalRequest, internal_request};
    use crate::raft::{Entry, EntryKind};
    use prost::Message as _;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    fn put_entry(index: u64, key: &[u8]) -> Entry {
        let request = internal_request::Request::Put(PutRequest {
            key: key.to_vec(),
            value: index.to_be_bytes().to_vec(),
            ..Default::default()
        });
        Entry {
            term: 1,
            index,
            kind: EntryKind::Normal,
            data: InternalRequest {
                id: index,
                request: Some(request),
            }
            .encode_to_vec(),
        }
    }

    async fn recv(rx: &mut UnboundedReceiver<Outbound>, queued: &AtomicUsize) -> WatchResponse {
        let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a response within 10 s")
            .expect("stream open");
        queued.fetch_sub(1, Ordering::AcqRel);
        r.response
    }

    /// A stream that does not read is parked (apply never waits for it) and, once it reads,
    /// gets every revision exactly once, in order, from history and then live.
    #[actix_rt::test]
    async fn slow_stream_is_parked_then_caught_up_without_gap_or_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let kv = Kv::open(FjallBackend::open(&db).unwrap()).unwrap();
        let members = Members::open(&db, &BTreeMap::new()).unwrap();
        // The hub's mailbox first, so the store can be built knowing it.
        let hub_ctx = Context::<WatchHub>::new();
        let hub = hub_ctx.address();
        let links = StoreLinks {
            events: Some(hub.clone().recipient()),
            history: Some(hub.clone().recipient()),
            leases: None,
            restored: None,
            points: None,
        };
        let store = StoreActor::new(kv, members, links).start();
        hub_ctx.run(WatchHub::new(store.clone().recipient(), 1, 2));
        let (tx, mut rx) = unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let stream = hub
            .send(OpenStream(StreamSink {
                tx,
                queued: queued.clone(),
            }))
            .await
            .unwrap();
        let request = WatchCreateRequest {
            key: b"k".to_vec(),
            ..Default::default()
        };
        hub.send(CreateWatch { stream, request }).await.unwrap();
        let entries = (1..=20).map(|i| put_entry(i, b"k")).collect();
        // Applying 20 entries completes while nobody reads the stream.
        store.send(ApplyCommitted { entries }).await.unwrap();
        assert!(recv(&mut rx, &queued).await.created);
        let mut revs = Vec::new();
        let mut responses = 0;
        while revs.len() < 20 {
            let r = recv(&mut rx, &queued).await;
            responses += 1;
            revs.extend(r.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision));
        }
        assert_eq!(revs, (2..=21).collect::<Vec<i64>>());
        assert!(
            responses < 20,
            "the parked watcher caught up in batches from history"
        );
        store
            .send(ApplyCommitted {
                entries: vec![put_entry(21, b"k")],
            })
            .await
            .unwrap();
        let live = recv(&mut rx, &queued).await;
        assert_eq!(live.events[0].kv.as_ref().unwrap().mod_revision, 22);
        drop(rx);
        hub.send(CloseStream(stream)).await.unwrap();
        assert_eq!(
            hub.send(GetWatchCounts).await.unwrap(),
            WatchCounts::default()
        );
    }
}
