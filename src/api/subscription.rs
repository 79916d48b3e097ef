//! A watch the server opens for itself: the Lock and Election services wait for deletions and
//! follow leaders through it, as etcd's v3lock / v3election do through an in-process client's
//! Watch.
//!
//! A [`Subscription`] is one stream at the `WatchHub` carrying one watch, exactly what a gRPC
//! Watch stream is to the hub, so history replay, parking and compaction behave the same. It
//! is closed at the hub when dropped: a handler future dropped because its client went away
//! takes its watch with it.

use super::error;
use crate::pb::etcdserverpb::{WatchCreateRequest, WatchResponse};
use crate::watch::StreamId;
use crate::watch::actor::{CloseStream, CreateWatch, OpenStream, Outbound, StreamSink, WatchHub};
use actix::Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tonic::Status;

/// One internal watch; see the module docs.
///
/// Invariant: its stream is open at the hub from [`Subscription::open`] until drop.
pub struct Subscription {
    hub: Addr<WatchHub>,
    stream: StreamId,
    responses: UnboundedReceiver<Outbound>,
    /// Responses the hub queued and [`Subscription::next`] has not taken (the hub parks the
    /// watch while this is at its limit).
    queued: Arc<AtomicUsize>,
}

impl Subscription {
    /// Opens a stream at `hub` and creates `request` on it.
    ///
    /// Errors: "etcdserver: server stopped" when the hub is gone.
    pub async fn open(hub: &Addr<WatchHub>, request: WatchCreateRequest) -> Result<Self, Status> {
        let (tx, responses) = unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let sink = StreamSink {
            tx,
            queued: queued.clone(),
        };
        let stream = hub
            .send(OpenStream(sink))
            .await
            .map_err(|_| error::stopped())?;
        // Built before CreateWatch so that from here on a drop closes the stream.
        let subscription = Subscription {
            hub: hub.clone(),
            stream,
            responses,
            queued,
        };
        hub.send(CreateWatch { stream, request })
            .await
            .map_err(|_| error::stopped())?;
        Ok(subscription)
    }

    /// The next response that carries events or cancels the watch (the `created`
    /// acknowledgement is skipped). Its header holds only the revision. `None` when the hub
    /// went away.
    pub async fn next(&mut self) -> Option<WatchResponse> {
        loop {
            // Never fragmented: the request does not ask for it.
            let response = self.responses.recv().await?.response;
            self.queued.fetch_sub(1, Ordering::AcqRel);
            if response.created && !response.canceled && response.events.is_empty() {
                continue;
            }
            return Some(response);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.do_send(CloseStream(self.stream));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Members;
    use crate::mvcc::actor::{StoreActor, StoreLinks};
    use crate::mvcc::{FjallBackend, Kv};
    use crate::watch::actor::GetWatchCounts;
    use actix::Actor as _;

    /// Dropping a subscription (a handler whose client went away) frees its watch at the hub.
    #[actix_rt::test]
    async fn drop_closes_the_watch_at_the_hub() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let members = Members::open(&db, &Default::default()).unwrap();
        let kv = Kv::open(FjallBackend::open(&db).unwrap()).unwrap();
        let store = StoreActor::new(kv, members, StoreLinks::default()).start();
        let hub = WatchHub::new(store.recipient(), 1, 8).start();
        let request = WatchCreateRequest {
            key: b"k".to_vec(),
            ..Default::default()
        };
        let subscription = Subscription::open(&hub, request).await.unwrap();
        let counts = hub.send(GetWatchCounts).await.unwrap();
        assert_eq!((counts.watchers, counts.streams), (1, 1));
        drop(subscription);
        let counts = hub.send(GetWatchCounts).await.unwrap();
        assert_eq!((counts.watchers, counts.streams), (0, 0));
    }
}
