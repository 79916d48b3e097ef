//! `RaftActor`: the thin shell around [`RawNode`] (STYLE.md: actors carry effects out, cores decide).
//!
//! ```text
//!  ticks ─┐   Step (from PeerLink server) ─┐   Propose / ReadIndex (from the gRPC API)
//!         ▼                                ▼
//!       RawNode::tick / step / propose / read_index
//!         │ ready()
//!         ├─ messages            ──────────────► PeerLink (at once; leader's AppendEntries too)
//!         ├─ read_states         ──────────────► waiting ReadIndex callers
//!         ├─ hard_state+entries  ── Persist ───► LogActor (one fsync for the whole Ready)
//!         │        ◄── Persisted ─┘
//!         ├─ persisted_messages  ──────────────► PeerLink (vote grants, append acks)
//!         ├─ committed_entries   ─ ApplyCommitted► StoreActor
//!         └─ advance()
//! ```
//! While a `Persist` is in flight the actor keeps stepping messages and ticks but fetches no new
//! `Ready`; whatever accumulates lands in the next one, so one fsync covers many proposals
//! (group commit).

use crate::log::actor::{LogActor, Persist, Persisted};
use crate::mvcc::actor::{ApplyCommitted, ApplyResult, CancelWait, RegisterWait, StoreActor};
use crate::peer::actor::{PeerLink, SendMessages};
use crate::raft::{Config, MemStorage, Message, NodeId, RawNode, Ready, Role};
use crate::storage::StorageError;
use actix::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// What the rest of the server may read about Raft without asking the actor: published on a
/// `watch` channel after every `Ready`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// Current term.
    pub term: u64,
    /// Known leader, 0 when none.
    pub leader_id: NodeId,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Whether this member is the leader.
    pub is_leader: bool,
}

/// Why a proposal or read could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// No leader is known (election in progress or this member is cut off).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// The leader changed before a read index was confirmed.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
}

/// Owns the Raft core and routes its effects; see the module docs.
pub struct RaftActor {
    /// This member's id.
    id: NodeId,
    node: RawNode<MemStorage>,
    log: Addr<LogActor>,
    store: Addr<StoreActor>,
    peers: BTreeMap<NodeId, Addr<PeerLink>>,
    tick_interval: Duration,
    /// A `Persist` is in flight; no new `Ready` until it returns.
    persisting: bool,
    /// ReadIndex callers by request context.
    pending_reads: BTreeMap<u64, oneshot::Sender<Result<u64, ProposeError>>>,
    next_read_ctx: u64,
    status: RaftStatus,
    status_tx: watch::Sender<RaftStatus>,
}

/// The other actors and channels a [`RaftActor`] routes effects to.
pub struct RaftLinks {
    /// Where Ready's hard state and entries are persisted.
    pub log: Addr<LogActor>,
    /// Where committed entries are applied.
    pub store: Addr<StoreActor>,
    /// One sender per peer.
    pub peers: BTreeMap<NodeId, Addr<PeerLink>>,
    /// Where the [`RaftStatus`] is published.
    pub status_tx: watch::Sender<RaftStatus>,
}

impl RaftActor {
    /// Builds the actor around a core restored from `storage`, with election jitter drawn
    /// from a ChaCha8 PRNG seeded with `seed`.
    ///
    /// `tick_interval` is one Raft tick (etcd's `--heartbeat-interval`); the core's
    /// `election_tick`/`heartbeat_tick` in `config` count these ticks. Errors: the core's
    /// validation of `config` or `storage`.
    pub fn new(
        config: &Config,
        storage: MemStorage,
        seed: u64,
        tick_interval: Duration,
        links: RaftLinks,
    ) -> Result<Self, crate::raft::RaftError> {
        use rand::SeedableRng;
        let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let node = RawNode::new(config, storage, rng)?;
        let RaftLinks {
            log,
            store,
            peers,
            status_tx,
        } = links;
        Ok(Self {
            id: config.id,
            node,
            log,
            store,
            peers,
            tick_interval,
            persisting: false,
            pending_reads: BTreeMap::new(),
            next_read_ctx: 1,
            status: RaftStatus::default(),
            status_tx,
        })
    }

    fn drive(&mut self, ctx: &mut Context<Self>) {
        if self.persisting || !self.node.has_ready() {
            return;
        }
        let mut ready = self.node.ready();
        self.publish_status(&ready);
        self.send(std::mem::take(&mut ready.messages));
        for rs in std::mem::take(&mut ready.read_states) {
            let ctx_id = decode_ctx(self.id, &rs.request_ctx);
            if let Some(tx) = ctx_id.and_then(|id| self.pending_reads.remove(&id)) {
                let _ = tx.send(Ok(rs.index));
            }
        }
        let hard_state = ready.hard_state;
        let entries = std::mem::take(&mut ready.entries);
        if hard_state.is_none() && entries.is_empty() {
            self.finish(ready, ctx);
            return;
        }
        self.persisting = true;
        self.log
            .send(Persist {
                hard_state,
                entries,
                sync: ready.must_sync(),
            })
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.persisting = false;
                match res {
                    Ok(Ok(persisted)) => {
                        act.stabilize(persisted);
                        act.finish(ready, ctx);
                    }
                    Ok(Err(e)) => fatal(&e),
                    Err(e) => fatal(&StorageError::Corrupt {
                        keyspace: "raft_log",
                        key: "-".into(),
                        reason: format!("log actor unreachable: {e}"),
                    }),
                }
            })
            .spawn(ctx);
    }

    /// Mirrors what the LogActor made durable into the core's storage view.
    fn stabilize(&mut self, persisted: Persisted) {
        let storage = self.node.storage_mut();
        if let Err(e) = storage.append(&persisted.entries) {
            // The core handed out these entries itself; a gap here is a bug, not bad input.
            panic!("durable entries do not fit the in-memory log: {e}");
        }
        if let Some(hs) = persisted.hard_state {
            storage.set_hard_state(hs);
        }
    }

    fn finish(&mut self, mut ready: Ready, ctx: &mut Context<Self>) {
        self.send(std::mem::take(&mut ready.persisted_messages));
        let committed = std::mem::take(&mut ready.committed_entries);
        if !committed.is_empty() {
            self.store.do_send(ApplyCommitted { entries: committed });
        }
        self.node.advance(ready);
        self.drive(ctx);
    }

    fn send(&self, messages: Vec<Message>) {
        let mut by_peer: BTreeMap<NodeId, Vec<Message>> = BTreeMap::new();
        for m in messages {
            by_peer.entry(m.to).or_default().push(m);
        }
        for (to, batch) in by_peer {
            match self.peers.get(&to) {
                Some(link) => link.do_send(SendMessages(batch)),
                None => tracing::warn!(to, "message for unknown peer dropped"),
            }
        }
    }

    fn publish_status(&mut self, ready: &Ready) {
        let mut status = self.status.clone();
        if let Some(ss) = &ready.soft_state {
            status.leader_id = ss.leader_id;
            status.is_leader = ss.role == Role::Leader;
            if ss.leader_id != self.status.leader_id {
                tracing::info!(leader = ss.leader_id, role = ?ss.role, "leader changed");
                for (_, tx) in std::mem::take(&mut self.pending_reads) {
                    let _ = tx.send(Err(ProposeError::LeaderChanged));
                }
            }
        }
        if let Some(hs) = &ready.hard_state {
            status.term = hs.term;
            status.commit_index = hs.commit;
        }
        if status != self.status {
            self.status = status.clone();
            self.status_tx.send_replace(status);
        }
    }
}

/// Storage failure is fatal for a member, as in etcd: a log that cannot be made durable must
/// not acknowledge anything.
fn fatal(e: &StorageError) -> ! {
    tracing::error!("fatal: cannot persist the raft log: {e}");
    std::process::exit(1);
}

/// A read index request context: this member's id then a counter, 16 bytes. The leader keys
/// pending reads by context (etcd raft's readOnly does the same), so contexts must be unique
/// across members, not just within one.
fn encode_ctx(member_id: u64, counter: u64) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(16);
    ctx.extend_from_slice(&member_id.to_be_bytes());
    ctx.extend_from_slice(&counter.to_be_bytes());
    ctx
}

/// The counter of a context made by [`encode_ctx`] for `member_id`; `None` for another
/// member's context.
fn decode_ctx(member_id: u64, ctx: &[u8]) -> Option<u64> {
    let (member, counter) = ctx.split_at_checked(8)?;
    if member != member_id.to_be_bytes() {
        return None;
    }
    counter.try_into().ok().map(u64::from_be_bytes)
}

impl Actor for RaftActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.tick_interval, |act, ctx| {
            act.node.tick();
            act.drive(ctx);
        });
        self.drive(ctx);
    }
}

/// A Raft message from a peer, to step into the core.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Step(pub Message);

impl Handler<Step> for RaftActor {
    type Result = ();

    fn handle(&mut self, msg: Step, ctx: &mut Context<Self>) {
        if let Err(e) = self.node.step(msg.0) {
            tracing::debug!("step: {e}");
        }
        self.drive(ctx);
    }
}

/// Propose one encoded `InternalRequest` for the log. The answer says only whether it was
/// accepted for proposing; its result comes from the StoreActor when the entry is applied.
#[derive(Message)]
#[rtype(result = "Result<(), ProposeError>")]
pub struct Propose {
    /// Encoded `peerpb::InternalRequest`, bytes.
    pub data: Vec<u8>,
    /// The request id and where its apply result goes. The RaftActor registers it with the
    /// StoreActor before proposing: both that registration and the later `ApplyCommitted` are
    /// sent from here, so the StoreActor's FIFO mailbox sees them in that order.
    pub waiter: Option<(u64, oneshot::Sender<ApplyResult>)>,
}

impl Handler<Propose> for RaftActor {
    type Result = Result<(), ProposeError>;

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) -> Self::Result {
        let id = msg.waiter.as_ref().map(|(id, _)| *id);
        if let Some((id, reply)) = msg.waiter {
            self.store.do_send(RegisterWait { id, reply });
        }
        let result = self
            .node
            .propose(msg.data)
            .map_err(|_| ProposeError::NoLeader);
        if let (Err(_), Some(id)) = (&result, id) {
            self.store.do_send(CancelWait { id });
        }
        self.drive(ctx);
        result
    }
}

/// Ask for a read index (Raft thesis §6.4): answers with the commit index a linearizable read
/// must wait for the StoreActor to apply.
#[derive(Message)]
#[rtype(result = "Result<oneshot::Receiver<Result<u64, ProposeError>>, ProposeError>")]
pub struct ReadIndex;

impl Handler<ReadIndex> for RaftActor {
    type Result = Result<oneshot::Receiver<Result<u64, ProposeError>>, ProposeError>;

    fn handle(&mut self, _: ReadIndex, ctx: &mut Context<Self>) -> Self::Result {
        if self.status.leader_id == 0 {
            return Err(ProposeError::NoLeader);
        }
        let id = self.next_read_ctx;
        self.next_read_ctx += 1;
        let (tx, rx) = oneshot::channel();
        if self.node.read_index(encode_ctx(self.id, id)).is_err() {
            return Err(ProposeError::NoLeader);
        }
        self.pending_reads.insert(id, tx);
        self.drive(ctx);
        Ok(rx)
    }
}
