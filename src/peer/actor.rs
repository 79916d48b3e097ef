//! `PeerLink`: the sending half of the transport to one peer.

use super::convert::message_to_pb;
use crate::bus::SendMessages;
use crate::pb::peerpb::{MessageBatch, raft_peer_client::RaftPeerClient};
use crate::raft::Message;
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
pub struct ActivePeers(Arc<AtomicUsize>);

impl ActivePeers {
    /// Peers with an open connection.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Counts one open connection while alive.
struct Active(ActivePeers);

impl Active {
    fn open(peers: &ActivePeers) -> Active {
        peers.0.fetch_add(1, Ordering::AcqRel);
        Active(peers.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
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
        }
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
async fn connect(
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
        let connected = Active::open(&active);
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
                    tracing::info!(peer = peer_id, "peer stream closed: {:?}", result.err());
                    break;
                }
            }
        }
        drop(connected);
        tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
    }
}
