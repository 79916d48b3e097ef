//! `PeerLink`: the sending half of the transport to one peer.

use super::convert::message_to_pb;
use crate::bus::{SendMessages, SnapshotSent};
use crate::mvcc::actor::ExportImage;
use crate::pb::peerpb::{MessageBatch, SnapshotChunk, raft_peer_client::RaftPeerClient};
use crate::raft::{Message, MessageBody};
use actix::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages queued per peer before new ones are dropped (Raft retries what matters).
const QUEUE_MESSAGES_MAX: usize = 4096;
/// Messages per wire batch.
const BATCH_MESSAGES_MAX: usize = 256;
/// Reconnect backoff bounds, ms.
const BACKOFF_MS_MIN: u64 = 50;
const BACKOFF_MS_MAX: u64 = 1000;
/// HTTP/2 ping interval on an open peer connection, and how long an unanswered ping may wait
/// before the connection counts as dead (etcd rafthttp gives up on a silent stream after 5 s,
/// `ConnReadTimeout`). Without it a peer that vanished without closing its sockets (a container
/// stopped mid-connection, a cable pulled) would keep its link "open" until TCP gives up,
/// ~15 minutes later.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// How many of a member's peer links have a connection open now (etcd rafthttp's "active
/// peers"), shared by all of them; read at start for the initial election tick advance.
#[derive(Clone, Debug, Default)]
pub struct ActivePeers {
    count: Arc<AtomicUsize>,
    /// Since when each connected peer's stream has been open.
    since: Arc<std::sync::Mutex<std::collections::BTreeMap<u64, std::time::Instant>>>,
}

impl ActivePeers {
    /// Peers with an open connection.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Since when the connection to `peer` has been open, `None` when it is not (etcd
    /// rafthttp `Transport.ActiveSince`).
    pub fn active_since(&self, peer: u64) -> Option<std::time::Instant> {
        self.since.lock().expect("not poisoned").get(&peer).copied()
    }
}

/// Counts one open connection while alive.
struct Active(ActivePeers, u64);

impl Active {
    fn open(peers: &ActivePeers, peer: u64) -> Active {
        peers.count.fetch_add(1, Ordering::AcqRel);
        peers
            .since
            .lock()
            .expect("not poisoned")
            .insert(peer, std::time::Instant::now());
        Active(peers.clone(), peer)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.since.lock().expect("not poisoned").remove(&self.1);
    }
}

/// Owns the queue to one peer; a task on the same arbiter drains it into a gRPC client
/// stream, reconnecting with exponential backoff (50 ms … 1 s) when the stream breaks.
pub struct PeerLink {
    peer_id: u64,
    url: String,
    dial_timeout: Duration,
    cluster_id: u64,
    active: ActivePeers,
    queue: Option<mpsc::Sender<Message>>,
    snapshots: Option<SnapshotLinks>,
}

/// What a link needs to send store images: where they come from (the `StoreActor`) and where
/// the outcome goes (the `RaftActor`).
#[derive(Clone)]
pub struct SnapshotLinks {
    /// Cuts the image of a snapshot point.
    pub store: Recipient<ExportImage>,
    /// Hears whether the transfer worked.
    pub raft: Recipient<SnapshotSent>,
}

impl PeerLink {
    /// A link to `peer_id` at `url` (`http://host:port`), counted in `active` while connected.
    /// `dial_timeout` bounds one connection attempt, name resolution included (see
    /// [`dial_timeout`]).
    pub fn new(
        peer_id: u64,
        url: String,
        dial_timeout: Duration,
        cluster_id: u64,
        active: ActivePeers,
    ) -> Self {
        Self {
            peer_id,
            url,
            dial_timeout,
            cluster_id,
            active,
            queue: None,
            snapshots: None,
        }
    }

    /// Sends InstallSnapshot messages with their store image from `links`. A link without it
    /// drops such messages with a warning.
    pub fn with_snapshots(mut self, links: SnapshotLinks) -> Self {
        self.snapshots = Some(links);
        self
    }
}

impl Actor for PeerLink {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        let (tx, rx) = mpsc::channel(QUEUE_MESSAGES_MAX);
        self.queue = Some(tx);
        actix_rt::spawn(run_link(
            self.peer_id,
            self.url.clone(),
            self.dial_timeout,
            self.cluster_id,
            self.active.clone(),
            rx,
        ));
    }
}

impl Handler<SendMessages> for PeerLink {
    type Result = ();

    fn handle(&mut self, msg: SendMessages, _: &mut Context<Self>) {
        let Some(queue) = &self.queue else { return };
        for m in msg.0 {
            if let MessageBody::InstallSnapshot { .. } = &m.body {
                match &self.snapshots {
                    Some(links) => {
                        actix_rt::spawn(send_snapshot(
                            m,
                            self.url.clone(),
                            self.dial_timeout,
                            self.cluster_id,
                            links.clone(),
                        ));
                    }
                    None => {
                        tracing::warn!(peer = self.peer_id, "no image source: snapshot dropped")
                    }
                }
                continue;
            }
            if queue.try_send(m).is_err() {
                tracing::debug!(
                    peer = self.peer_id,
                    "peer queue full or closed; message dropped"
                );
            }
        }
    }
}

/// etcd's peer dial timeout (`ServerConfig.PeerDialTimeout`): 1 s plus one election timeout,
/// so 2 s with the default 1000 ms `--election-timeout`.
pub fn dial_timeout(election_timeout_ms: u64) -> Duration {
    Duration::from_secs(1) + Duration::from_millis(election_timeout_ms)
}

/// One connection attempt to `url`, within `dial_timeout` (DNS included: a name whose
/// resolver does not answer must not hold the link longer than a refused connect would).
pub(crate) async fn connect(
    url: &str,
    dial_timeout: Duration,
) -> Result<RaftPeerClient<tonic::transport::Channel>, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| e.to_string())?
        .connect_timeout(dial_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    match tokio::time::timeout(dial_timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(RaftPeerClient::new(channel).max_decoding_message_size(usize::MAX)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {dial_timeout:?}")),
    }
}

/// Sends one InstallSnapshot message with its store image over a connection of its own (the
/// Raft stream keeps flowing meanwhile) and reports the outcome to the leader's Raft (etcd
/// raft `ReportSnapshot`): on failure the follower's progress goes back to probing and the
/// leader tries again later, with whatever point is newest then.
async fn send_snapshot(
    message: Message,
    url: String,
    dial_timeout: Duration,
    cluster_id: u64,
    links: SnapshotLinks,
) {
    let to = message.to;
    let started = std::time::Instant::now();
    let outcome = transfer_snapshot(message, &url, dial_timeout, cluster_id, &links).await;
    let failed = outcome.is_err();
    match outcome {
        Ok((bytes, installed)) => tracing::info!(
            peer = format_args!("{to:x}"),
            bytes,
            installed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sent a snapshot image"
        ),
        Err(e) => tracing::warn!(peer = format_args!("{to:x}"), "snapshot send failed: {e}"),
    }
    crate::snapshot::TRANSFERS.sent(to, !failed, started.elapsed());
    links.raft.do_send(SnapshotSent { to, failed });
}

/// The transfer itself: (image bytes sent, whether the follower installed it).
async fn transfer_snapshot(
    message: Message,
    url: &str,
    dial_timeout: Duration,
    cluster_id: u64,
    links: &SnapshotLinks,
) -> Result<(u64, bool), String> {
    let MessageBody::InstallSnapshot { snapshot } = &message.body else {
        return Err("not an InstallSnapshot message".into());
    };
    let (chunk_tx, mut chunk_rx) = mpsc::channel(4);
    links
        .store
        .send(ExportImage {
            meta: snapshot.clone(),
            chunks: chunk_tx,
        })
        .await
        .map_err(|e| format!("store gone: {e}"))??;
    let mut client = connect(url, dial_timeout).await?;
    let (out_tx, out_rx) = mpsc::channel::<SnapshotChunk>(2);
    let mut first = Some(message_to_pb(message));
    let pump = async move {
        let mut bytes = 0u64;
        while let Some(chunk) = chunk_rx.recv().await {
            let data = chunk?;
            bytes += data.len() as u64;
            let c = SnapshotChunk {
                cluster_id,
                message: first.take(),
                data,
            };
            if out_tx.send(c).await.is_err() {
                return Err("the follower closed the transfer".to_string());
            }
        }
        Ok(bytes)
    };
    let call = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(out_rx));
    let (pumped, answer) = tokio::join!(pump, call);
    let answer = answer.map_err(|s| format!("{}: {}", s.code(), s.message()))?;
    let bytes = pumped?;
    Ok((bytes, answer.into_inner().installed))
}

async fn run_link(
    peer_id: u64,
    url: String,
    dial_timeout: Duration,
    cluster_id: u64,
    active: ActivePeers,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut backoff_ms = BACKOFF_MS_MIN;
    loop {
        let client = match connect(&url, dial_timeout).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(peer = peer_id, %url, "connect failed: {e}");
                // Drop what queued up while the peer was unreachable: stale Raft traffic.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(BACKOFF_MS_MAX);
                continue;
            }
        };
        let (batch_tx, batch_rx) = mpsc::channel::<MessageBatch>(64);
        let mut call = Box::pin({
            let mut client = client;
            async move {
                client
                    .send(tokio_stream::wrappers::ReceiverStream::new(batch_rx))
                    .await
            }
        });
        tracing::info!(peer = peer_id, %url, "peer stream open");
        let connected = Active::open(&active, peer_id);
        backoff_ms = BACKOFF_MS_MIN;
        loop {
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { return };
                    let mut messages = vec![message_to_pb(first)];
                    while messages.len() < BATCH_MESSAGES_MAX {
                        match rx.try_recv() {
                            Ok(m) => messages.push(message_to_pb(m)),
                            Err(_) => break,
                        }
                    }
                    if batch_tx.send(MessageBatch { cluster_id, messages }).await.is_err() {
                        break;
                    }
                }
                result = &mut call => {
                    if let Err(status) = &result
                        && status.message() == crate::cluster::REMOVED_TEXT
                    {
                        // A member told us we were removed (we missed the commit of our own
                        // removal): stop, as etcd does.
                        tracing::warn!(peer = peer_id, "a peer says this member was removed");
                        crate::cluster::exit_removed();
                    }
                    tracing::info!(peer = peer_id, "peer stream closed: {:?}", result.err());
                    break;
                }
            }
        }
        drop(connected);
        tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
    }
}
