//! `RaftActor`: the thin shell around the [`NodeDriver`] (STYLE.md: actors carry effects out,
//! cores decide). Every decision — when a `Ready` may be taken, what waits for the fsync, when
//! committed entries are handed out, conf-change application, failing reads on a leader
//! change — is the driver's (`src/node/mod.rs`); this actor feeds it inputs and routes its
//! [`Effect`]s:
//!
//! ```text
//!  ticks ─┐   Step (from the peer server) ─┐   Propose / ProposeConfChange / ReadIndex (API)
//!         ▼                                ▼
//!       NodeDriver::tick / step / propose / read_index      ◄── Persisted (LogActor answer)
//!         │ effects()
//!         ├─ Send              ─────────────────► PeerLink of each peer
//!         ├─ Persist(write)    ── Persist ──────► LogActor (one fsync for the whole Ready)
//!         ├─ Apply(entries)    ── ApplyCommitted ► StoreActor
//!         ├─ ReadReady/Failed  ─────────────────► the waiting ReadIndex caller
//!         ├─ StatusChanged     ─────────────────► the RaftStatus watch channel
//!         ├─ CompactLog        ── CompactLog ───► LogActor (after the writes before it)
//!         └─ ConfChangeApplied ─────────────────► peer links follow the configuration (added
//!                                                  members get one, removed ones lose it; a
//!                                                  member no longer in it stops)
//!
//!  StorePoint (StoreActor took a snapshot point) ──► NodeDriver::snapshot_point
//!  SnapshotSent (a PeerLink sent an image)       ──► NodeDriver::snapshot_sent
//! ```

use crate::bus::{
    AdvanceTicks, ApplyCommitted, CancelWait, CompactLog, Persist, Propose, RegisterWait,
    SendMessages, SnapshotSent, Step, StorePoint, TransferLeader,
};
use crate::node::{Effect, NodeDriver, ProposeError, RaftStatus, Write};
use crate::raft::{Config, MemStorage, Message, NodeId};
use actix::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How often (in ticks) read waiters whose caller gave up are forgotten.
const READ_PRUNE_TICKS: u64 = 100;

/// Owns the node driver and routes its effects; see the module docs.
pub struct RaftActor {
    driver: NodeDriver,
    log: Recipient<Persist>,
    compact: Recipient<CompactLog>,
    store: StoreInbox,
    peers: BTreeMap<NodeId, Recipient<SendMessages>>,
    tick_interval: Duration,
    ticks: u64,
    /// A [`Drive`] is queued in the mailbox.
    drive_scheduled: bool,
    /// ReadIndex callers by the read id handed to the driver.
    read_waiters: BTreeMap<u64, oneshot::Sender<Result<u64, ProposeError>>>,
    next_read_id: u64,
    status_tx: watch::Sender<RaftStatus>,
    /// Builds the link to a member added at runtime (id, peer URL).
    link_factory: Option<LinkFactory>,
    /// Peer URLs of members named by configuration changes seen in committed entries.
    member_urls: BTreeMap<NodeId, String>,
}

/// Builds a [`PeerLink`](crate::peer::actor::PeerLink) for (member id, peer URL) and returns
/// where to send it messages. Called on the actor's own thread.
pub type LinkFactory = Box<dyn Fn(NodeId, String) -> Recipient<SendMessages>>;

/// The `StoreActor`'s messages the [`RaftActor`] sends (three recipients of one mailbox, so
/// they keep their send order).
pub struct StoreInbox {
    /// Committed entries to apply.
    pub apply: Recipient<ApplyCommitted>,
    /// A proposer's waiter, registered before its entry is proposed.
    pub register: Recipient<RegisterWait>,
    /// A waiter withdrawn (proposal refused).
    pub cancel: Recipient<CancelWait>,
}

/// The other actors and channels a [`RaftActor`] routes effects to.
pub struct RaftLinks {
    /// Where Ready's hard state and entries are persisted (the `LogActor`).
    pub log: Recipient<Persist>,
    /// Where log compactions go (the same `LogActor`).
    pub compact: Recipient<CompactLog>,
    /// Where committed entries are applied (the `StoreActor`).
    pub store: StoreInbox,
    /// One sender per peer (its `PeerLink`).
    pub peers: BTreeMap<NodeId, Recipient<SendMessages>>,
    /// Where the [`RaftStatus`] is published.
    pub status_tx: watch::Sender<RaftStatus>,
}

impl RaftActor {
    /// Builds the actor around a driver restored from `storage`, with election jitter drawn
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
        let driver = NodeDriver::new(config, storage, rng)?;
        let RaftLinks {
            log,
            compact,
            store,
            peers,
            status_tx,
        } = links;
        Ok(Self {
            driver,
            log,
            compact,
            store,
            peers,
            tick_interval,
            ticks: 0,
            drive_scheduled: false,
            read_waiters: BTreeMap::new(),
            next_read_id: 1,
            status_tx,
            link_factory: None,
            member_urls: BTreeMap::new(),
        })
    }

    /// Lets the actor open links to members added at runtime (and close links to removed
    /// ones) as configuration changes are applied.
    /// `known_urls`: the peer URLs of the members known at start (the member table's).
    pub fn with_link_factory(
        mut self,
        factory: LinkFactory,
        known_urls: BTreeMap<NodeId, String>,
    ) -> Self {
        self.link_factory = Some(factory);
        self.member_urls = known_urls;
        self
    }

    /// Notes the peer URLs that configuration changes in `entries` carry.
    fn note_member_urls(&mut self, entries: &[crate::raft::Entry]) {
        use crate::cluster::{ChangeContext, MemberChange};
        for ctx in entries.iter().filter_map(ChangeContext::of_entry) {
            match ctx.change {
                MemberChange::Add(m) => {
                    if let Some(url) = m.peer_urls.first() {
                        self.member_urls.insert(m.id, url.clone());
                    }
                }
                MemberChange::Update { id, peer_urls } => {
                    if let Some(url) = peer_urls.first() {
                        self.member_urls.insert(id, url.clone());
                        // The link dials the old URL: replace it.
                        self.peers.remove(&id);
                    }
                }
                MemberChange::Remove(_) | MemberChange::Promote(_) => {}
            }
        }
    }

    /// After a configuration change: a link to every member of `conf_state` but this one, none
    /// to anyone else; a member no longer in the configuration stops (etcd: "the member has
    /// been permanently removed from the cluster").
    fn follow_configuration(&mut self, conf_state: &crate::raft::ConfState) {
        let me = self.driver.raw().id();
        let members: std::collections::BTreeSet<NodeId> = conf_state
            .voters
            .iter()
            .chain(&conf_state.voters_outgoing)
            .chain(&conf_state.learners)
            .chain(&conf_state.learners_next)
            .copied()
            .collect();
        if !members.contains(&me) {
            tracing::warn!("{}; stopping in 1 s", crate::cluster::REMOVED_TEXT);
            // etcd `stopWithDelay(1 s)`: answers in flight (the MemberRemove that removed
            // this member, if it came here) get out first.
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_secs(1));
                crate::cluster::exit_removed()
            });
            return;
        }
        self.peers.retain(|id, _| members.contains(id));
        let Some(factory) = &self.link_factory else {
            return;
        };
        for id in members {
            if id == me || self.peers.contains_key(&id) {
                continue;
            }
            match self.member_urls.get(&id) {
                Some(url) => {
                    tracing::info!(peer = format_args!("{id:x}"), url, "adding a peer link");
                    self.peers.insert(id, factory(id, url.clone()));
                }
                None => tracing::warn!(
                    peer = format_args!("{id:x}"),
                    "a member of the configuration with no known peer URL: no link"
                ),
            }
        }
    }

    /// Keeps `entries` behind each snapshot point (`--experimental-snapshot-catchup-entries`).
    pub fn with_snapshot_catchup_entries(mut self, entries: u64) -> Self {
        self.driver.set_snapshot_catchup_entries(entries);
        self
    }

    /// Drives once the messages already in the mailbox are handled: a burst of proposals,
    /// reads and peer batches becomes one `Ready` and one send per peer instead of one each.
    fn schedule_drive(&mut self, ctx: &mut Context<Self>) {
        if !self.drive_scheduled {
            self.drive_scheduled = true;
            ctx.notify(Drive);
        }
    }

    /// Drains the driver's effects and carries each out.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        self.drive_scheduled = false;
        for effect in self.driver.effects() {
            match effect {
                Effect::Send(messages) => self.send(messages),
                Effect::Persist(write) => self.persist(write, ctx),
                Effect::Apply(entries) => {
                    self.note_member_urls(&entries);
                    self.store.apply.do_send(ApplyCommitted { entries })
                }
                Effect::ReadReady { id, index } => self.answer_read(id, Ok(index)),
                Effect::ReadFailed { id, error } => self.answer_read(id, Err(error)),
                Effect::StatusChanged(status) => {
                    self.status_tx.send_replace(status);
                }
                Effect::ConfChangeApplied { index, conf_state } => {
                    tracing::info!(index, ?conf_state, "configuration changed");
                    self.follow_configuration(&conf_state);
                }
                Effect::CompactLog {
                    through,
                    through_term,
                    snapshot,
                } => {
                    tracing::info!(
                        snapshot_index = snapshot.index,
                        compacted_through = through,
                        "snapshot point; log compacted"
                    );
                    self.compact
                        .send(CompactLog {
                            through,
                            through_term,
                            snapshot,
                        })
                        .into_actor(self)
                        .map(|res, _, _| match res {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => fatal(&format!("cannot compact the raft log: {e}")),
                            Err(e) => fatal(&format!("the log actor is gone ({e})")),
                        })
                        .spawn(ctx);
                }
            }
        }
    }

    fn persist(&mut self, write: Write, ctx: &mut Context<Self>) {
        let Write {
            hard_state,
            snapshot,
            entries,
            sync,
        } = write;
        self.log
            .send(Persist {
                hard_state,
                snapshot,
                entries,
                sync,
            })
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok(Ok(persisted)) => {
                    let write = Write {
                        hard_state: persisted.hard_state,
                        snapshot: persisted.snapshot,
                        entries: persisted.entries,
                        sync,
                    };
                    if let Err(e) = act.driver.persisted(write) {
                        fatal(&format!("the log's answer does not match the write: {e}"));
                    }
                    act.drive(ctx);
                }
                Ok(Err(e)) => fatal(&format!("cannot persist the raft log: {e}")),
                Err(e) => fatal(&format!(
                    "the log actor is gone ({e}): nothing can be persisted"
                )),
            })
            .spawn(ctx);
    }

    fn answer_read(&mut self, id: u64, result: Result<u64, ProposeError>) {
        if let Some(tx) = self.read_waiters.remove(&id) {
            let _ = tx.send(result);
        }
    }

    fn send(&self, messages: Vec<Message>) {
        let mut by_peer: BTreeMap<NodeId, Vec<Message>> = BTreeMap::new();
        for m in messages {
            by_peer.entry(m.to).or_default().push(m);
        }
        for (to, batch) in by_peer {
            match self.peers.get(&to) {
                Some(link) if link.connected() => link.do_send(SendMessages(batch)),
                // Raft tolerates the loss; the link's actor stopping is a bug worth seeing.
                Some(_) => tracing::warn!(to, "peer link is gone: messages dropped"),
                None => tracing::warn!(to, "message for unknown peer dropped"),
            }
        }
    }

    /// Forgets read waiters whose caller timed out (a read lost with a dropped message is
    /// otherwise only failed at the next leader change).
    fn prune_reads(&mut self) {
        let gone: Vec<u64> = self
            .read_waiters
            .iter()
            .filter(|(_, tx)| tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.read_waiters.remove(&id);
            self.driver.cancel_read(id);
        }
    }
}

/// A member that cannot make its log durable must not acknowledge anything, as in etcd: it
/// stops.
fn fatal(why: &str) -> ! {
    tracing::error!("fatal: {why}");
    std::process::exit(1);
}

impl Actor for RaftActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.tick_interval, |act, ctx| {
            act.driver.tick();
            act.ticks += 1;
            if act.ticks % READ_PRUNE_TICKS == 0 {
                act.prune_reads();
            }
            act.drive(ctx);
        });
        self.drive(ctx);
    }
}

impl Handler<TransferLeader> for RaftActor {
    type Result = ();

    fn handle(&mut self, msg: TransferLeader, ctx: &mut Context<Self>) {
        self.driver.transfer_leader(msg.to);
        self.drive(ctx);
    }
}

impl Handler<StorePoint> for RaftActor {
    type Result = ();

    fn handle(&mut self, msg: StorePoint, ctx: &mut Context<Self>) {
        self.driver.snapshot_point(msg.index);
        self.drive(ctx);
    }
}

impl Handler<SnapshotSent> for RaftActor {
    type Result = ();

    fn handle(&mut self, msg: SnapshotSent, ctx: &mut Context<Self>) {
        self.driver.snapshot_sent(msg.to, msg.failed);
        self.drive(ctx);
    }
}

impl Handler<AdvanceTicks> for RaftActor {
    type Result = ();

    fn handle(&mut self, msg: AdvanceTicks, ctx: &mut Context<Self>) {
        for _ in 0..msg.0 {
            self.driver.tick();
        }
        self.drive(ctx);
    }
}

/// Drive the node now: queued behind the messages already in the mailbox by
/// `schedule_drive` (private to this actor).
#[derive(Message)]
#[rtype(result = "()")]
struct Drive;

impl Handler<Drive> for RaftActor {
    type Result = ();

    fn handle(&mut self, _: Drive, ctx: &mut Context<Self>) {
        self.drive(ctx);
    }
}

impl Handler<Step> for RaftActor {
    type Result = ();

    fn handle(&mut self, msg: Step, ctx: &mut Context<Self>) {
        for m in msg.0 {
            if let Err(e) = self.driver.step(m) {
                tracing::debug!("step: {e}");
            }
        }
        self.schedule_drive(ctx);
    }
}

impl Handler<Propose> for RaftActor {
    type Result = Result<(), ProposeError>;

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) -> Self::Result {
        let id = msg.waiter.as_ref().map(|(id, _)| *id);
        if let Some((id, reply)) = msg.waiter {
            self.store.register.do_send(RegisterWait { id, reply });
        }
        let result = self.driver.propose(msg.data);
        if let (Err(_), Some(id)) = (&result, id) {
            self.store.cancel.do_send(CancelWait { id });
        }
        self.schedule_drive(ctx);
        result
    }
}

/// Propose a membership change (Raft thesis §4) whose `context` is a
/// [`crate::cluster::ChangeContext`]; `waiter` is answered when this member applies it.
#[derive(Message)]
#[rtype(result = "Result<(), crate::raft::RaftError>")]
pub struct ProposeConfChange {
    /// The change.
    pub change: crate::raft::ConfChange,
    /// The context's request id and where the apply result goes.
    pub waiter: (u64, oneshot::Sender<crate::mvcc::applier::ApplyResult>),
}

impl Handler<ProposeConfChange> for RaftActor {
    type Result = Result<(), crate::raft::RaftError>;

    fn handle(&mut self, msg: ProposeConfChange, ctx: &mut Context<Self>) -> Self::Result {
        let (id, reply) = msg.waiter;
        self.store.register.do_send(RegisterWait { id, reply });
        let result = self.driver.propose_conf_change(&msg.change);
        if result.is_err() {
            self.store.cancel.do_send(CancelWait { id });
        }
        self.schedule_drive(ctx);
        result
    }
}

/// On the leader: (the learner's match index, the leader's own), from its progress of `id`;
/// `None` when this member does not lead or tracks no such member.
#[derive(Message)]
#[rtype(result = "Option<(u64, u64)>")]
pub struct LearnerProgress {
    /// The member.
    pub id: NodeId,
}

impl Handler<LearnerProgress> for RaftActor {
    type Result = Option<(u64, u64)>;

    fn handle(&mut self, msg: LearnerProgress, _: &mut Context<Self>) -> Self::Result {
        let status = self.driver.raw().status();
        let learner = status.progress.get(&msg.id)?.match_index;
        let leader = status.progress.get(&status.id)?.match_index;
        Some((learner, leader))
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
        let id = self.next_read_id;
        self.next_read_id += 1;
        self.driver.read_index(id)?;
        let (tx, rx) = oneshot::channel();
        self.read_waiters.insert(id, tx);
        self.schedule_drive(ctx);
        Ok(rx)
    }
}
