//! Test harness: a network of the server's own [`NodeDriver`]s (`src/node`) over
//! `MemStorage`, with a message queue, link cuts, and a text rendering of what each handled
//! `Ready` did. Used by the paper tests, the interaction scripts and the chaos test.
//!
//! The harness has no Ready loop of its own (STYLE.md, "Simulate the replica itself"): it
//! asks the driver for one `Ready` at a time ([`NodeDriver::drive_one`]) and only carries out
//! the effects — `Send` goes to the queue, `Persist` is durable at once (a disk that never
//! fails: [`NodeDriver::persisted`] is called with the write), `Apply` is recorded,
//! `ReadReady` becomes a [`ReadState`]. Persisting, applying conf changes and advancing are
//! the driver's. Reads: the driver makes its own 16-byte request contexts from a read id, so
//! [`Cluster::read_index`] allocates an id per script context and maps the answer back.
//!
//! Snapshots: the driver does not carry `Ready::snapshot` yet (its integration —
//! persisting the snapshot, streaming the store image, reporting the outcome — is being
//! written in `src/node`), so scenarios with InstallSnapshot run on [`Network`] below: bare
//! cores whose Ready loop is written here, after the contract on `Ready`, snapshots
//! included. Once the driver handles snapshots, those scenarios belong on `Cluster`.
#![allow(dead_code)] // parts are used only by some test modules

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    ConfChange, ConfState, Config, Entry, EntryKind, HardState, MemStorage, Message, MessageBody,
    NodeId, RawNode, ReadState, Ready, Role, SnapshotMeta, SoftState, Storage,
};
use crate::node::{Effect, NodeDriver, ProposeError};

/// A message from `from` to `to` at `term` (test shorthand).
pub(crate) fn msg(from: NodeId, to: NodeId, term: u64, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

/// A Raft config for tests: election 10 ticks, heartbeat 1, pre-vote and check-quorum off.
pub(crate) fn test_config(id: NodeId) -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..Config::new(id)
    }
}

/// A node's deterministic PRNG: seeded with its id.
pub(crate) fn test_rng(id: NodeId) -> Box<ChaCha8Rng> {
    Box::new(ChaCha8Rng::seed_from_u64(id))
}

/// A bare core over `storage`, for unit tests of `RawNode` itself.
pub(crate) fn new_node(config: &Config, storage: MemStorage) -> RawNode<MemStorage> {
    RawNode::new(config, storage, test_rng(config.id)).expect("valid test node")
}

/// A node driver over `storage`, as the server builds one.
pub(crate) fn new_driver(config: &Config, storage: MemStorage) -> NodeDriver {
    NodeDriver::new(config, storage, test_rng(config.id)).expect("valid test node")
}

/// What one [`Cluster::process_ready`] carried out, gathered from the driver's effects in the
/// sections a `Ready` has, for printing ([`fmt_ready`]) and assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Handled {
    /// Role or leader, if changed since the previous Ready (the core's soft state as the
    /// driver took the Ready).
    pub soft_state: Option<SoftState>,
    /// `Persist`: the hard state written.
    pub hard_state: Option<HardState>,
    /// `Persist`: the entries written.
    pub entries: Vec<Entry>,
    /// The `Send` of messages that needed nothing durable.
    pub messages: Vec<Message>,
    /// The `Send` that waited for the write (vote grants, append acks).
    pub persisted_messages: Vec<Message>,
    /// `Apply`: committed entries handed to the state machine.
    pub committed_entries: Vec<Entry>,
    /// `ReadReady`, with the caller's context mapped back from the read id.
    pub read_states: Vec<ReadState>,
    /// `ReadFailed`: the context of each read the driver gave up on, and why.
    pub failed_reads: Vec<(Vec<u8>, ProposeError)>,
}

/// N drivers, an in-flight message queue (FIFO), and directed link cuts.
pub(crate) struct Cluster {
    pub nodes: BTreeMap<NodeId, NodeDriver>,
    pub configs: BTreeMap<NodeId, Config>,
    /// Messages sent and not yet delivered, in send order.
    pub in_flight: Vec<Message>,
    /// Directed links (from, to) that drop messages.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Entries each node applied, in order.
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    /// ReadStates each node received, in order.
    pub read_states: BTreeMap<NodeId, Vec<ReadState>>,
    /// Each node's configuration as of applied index 0 (what its storage held when it was
    /// added): the configuration a restart that replays the log from index 0 starts from.
    pub boot_conf_states: BTreeMap<NodeId, ConfState>,
    /// Each node's soft state as of the last Ready taken (what `RawNode` compares against to
    /// fill `Ready::soft_state`; the driver keeps only leader and is-leader, not the role).
    shown_soft_states: BTreeMap<NodeId, SoftState>,
    /// Pending reads: (node, read id) → the context the test passed to [`Cluster::read_index`].
    read_ctxs: BTreeMap<(NodeId, u64), Vec<u8>>,
    /// The last read id handed to a driver (ids are unique across the cluster).
    last_read_id: u64,
}

impl Cluster {
    /// Nodes 1..=n, all voters, each configured by `config(id)`.
    pub fn new(n: u64, config: impl Fn(NodeId) -> Config) -> Self {
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
            boot_conf_states: BTreeMap::new(),
            shown_soft_states: BTreeMap::new(),
            read_ctxs: BTreeMap::new(),
            last_read_id: 0,
        };
        let cs = ConfState::from_voters(1..=n);
        for id in 1..=n {
            c.add_node(config(id), MemStorage::new_with_conf_state(cs.clone()));
        }
        c
    }

    /// Nodes 1..=n with the test config.
    pub fn with_nodes(n: u64) -> Self {
        Self::new(n, test_config)
    }

    /// Adds (or replaces) a node.
    pub fn add_node(&mut self, config: Config, storage: MemStorage) {
        let id = config.id;
        self.boot_conf_states
            .insert(id, storage.conf_state().clone());
        self.start(config, storage);
    }

    /// Builds `id`'s driver over `storage`, forgetting what the previous one had pending.
    fn start(&mut self, config: Config, storage: MemStorage) {
        let id = config.id;
        let driver = new_driver(&config, storage);
        self.shown_soft_states.insert(id, driver.raw().soft_state());
        self.read_ctxs.retain(|(node, _), _| *node != id);
        self.nodes.insert(id, driver);
        self.configs.insert(id, config);
    }

    /// The core of `id`, to read its state.
    pub fn node(&self, id: NodeId) -> &RawNode<MemStorage> {
        self.nodes[&id].raw()
    }

    /// The driver of `id`.
    pub fn driver(&self, id: NodeId) -> &NodeDriver {
        &self.nodes[&id]
    }

    /// The driver of `id`, for its inputs (`campaign`, `propose`, `step`, `tick`, ...).
    /// Reads go through [`Cluster::read_index`].
    pub fn node_mut(&mut self, id: NodeId) -> &mut NodeDriver {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Starts a linearizable read on `id` for the test's context `ctx`: the driver gets a
    /// fresh read id (and puts its own context on the wire); its answer is recorded in
    /// `read_states` with `ctx`. Errors: the driver's refusal (no leader published yet —
    /// process the node's Ready first).
    pub fn read_index(&mut self, id: NodeId, ctx: Vec<u8>) -> Result<(), ProposeError> {
        let read = self.last_read_id + 1;
        self.node_mut(id).read_index(read)?;
        self.last_read_id = read;
        self.read_ctxs.insert((id, read), ctx);
        Ok(())
    }

    /// Takes one Ready of `id` through its driver and carries out the effects at once:
    /// `Send` → queue, `Persist` → durable (reported back at once), `Apply` → `applied`,
    /// `ReadReady` → `read_states`. Returns what was done, `None` when nothing was ready.
    pub fn process_ready(&mut self, id: NodeId) -> Option<Handled> {
        let driver = self.nodes.get_mut(&id)?;
        // Read before the driver takes the Ready: the soft state it will carry, and whether
        // it has messages that need nothing durable. (A Ready that needs no write yields its
        // immediate and its after-write messages as two `Send`s with nothing in between that
        // says which is which; the driver may send both at once, only the printout cares.)
        let soft_state = driver.raw().soft_state();
        let mut immediate = !driver.raw().raft.msgs.is_empty();
        if !driver.drive_one() {
            return None;
        }
        let mut shown = Handled::default();
        if self.shown_soft_states.insert(id, soft_state) != Some(soft_state) {
            shown.soft_state = Some(soft_state);
        }
        let applied = self.applied.entry(id).or_default();
        let read_states = self.read_states.entry(id).or_default();
        let mut effects = std::collections::VecDeque::from(driver.take_effects());
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::Send(msgs) => {
                    if std::mem::take(&mut immediate) {
                        shown.messages = msgs.clone();
                    } else {
                        shown.persisted_messages.extend(msgs.iter().cloned());
                    }
                    self.in_flight.extend(msgs);
                }
                Effect::Persist(write) => {
                    // A disk that never fails: durable at once.
                    shown.hard_state = write.hard_state;
                    shown.entries = write.entries.clone();
                    driver.persisted(write).expect("the write in flight");
                    effects.extend(driver.take_effects());
                }
                Effect::Apply(entries) => {
                    if let Some(last) = entries.last() {
                        driver.applied(last.index);
                    }
                    shown.committed_entries.extend(entries.iter().cloned());
                    applied.extend(entries);
                }
                Effect::ReadReady { id: read, index } => {
                    let request_ctx = self
                        .read_ctxs
                        .remove(&(id, read))
                        .expect("a read started by Cluster::read_index");
                    let rs = ReadState { index, request_ctx };
                    shown.read_states.push(rs.clone());
                    read_states.push(rs);
                }
                Effect::ReadFailed { id: read, error } => {
                    let ctx = self
                        .read_ctxs
                        .remove(&(id, read))
                        .expect("a read started by Cluster::read_index");
                    shown.failed_reads.push((ctx, error));
                }
                // The driver applied the change to the core and its storage itself; the
                // published status is read from the core directly here.
                // Compaction is the in-memory log's already; a harness disk keeps nothing else.
                Effect::ConfChangeApplied { .. }
                | Effect::StatusChanged(_)
                | Effect::CompactLog { .. } => {}
            }
        }
        Some(shown)
    }

    /// Crashes `id` in the middle of a Ready: the driver takes one, its messages that may
    /// leave before the write do, then the node restarts from durable storage without the
    /// write (if the Ready needed none, it completed before the crash).
    pub fn crash_mid_ready(&mut self, id: NodeId) {
        let driver = self.node_mut(id);
        if driver.drive_one() {
            for effect in driver.take_effects() {
                match effect {
                    Effect::Send(msgs) => self.in_flight.extend(msgs),
                    Effect::Persist(_) => break,
                    _ => {}
                }
            }
        }
        self.restart(id);
    }

    /// Delivers every queued message addressed to `id`, in order. Returns (message,
    /// delivered) pairs; messages on cut links are dropped.
    pub fn deliver(&mut self, id: NodeId) -> Vec<(Message, bool)> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|m| m.to == id);
        self.in_flight = rest;
        let mut out = Vec::new();
        for m in mine {
            let ok = !self.cut.contains(&(m.from, m.to)) && self.nodes.contains_key(&id);
            if ok {
                // Errors (dropped forwarded proposals) are part of normal operation.
                let _ = self.node_mut(id).step(m.clone());
            }
            out.push((m, ok));
        }
        out
    }

    /// Processes Readies and delivers messages until nothing changes.
    pub fn stabilize(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        self.stabilize_nodes(&ids, &mut |_| {});
    }

    /// Like `stabilize` restricted to `ids`, reporting each step to `log`.
    pub fn stabilize_nodes(&mut self, ids: &[NodeId], log: &mut dyn FnMut(Step)) {
        loop {
            let mut progressed = false;
            for id in ids {
                while let Some(rd) = self.process_ready(*id) {
                    log(Step::Ready(*id, Box::new(rd)));
                    progressed = true;
                }
            }
            for id in ids {
                let delivered = self.deliver(*id);
                if !delivered.is_empty() {
                    log(Step::Delivered(*id, delivered));
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Drops both directions between `id` and every other node.
    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|o| *o != id).collect();
        for o in others {
            self.cut.insert((id, o));
            self.cut.insert((o, id));
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_link(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Ticks `id` `n` times.
    pub fn tick(&mut self, id: NodeId, n: usize) {
        for _ in 0..n {
            self.node_mut(id).tick();
        }
    }

    /// Ticks `id` until its election timeout fires (follower/candidate) or its check-quorum
    /// round runs (leader).
    pub fn tick_election(&mut self, id: NodeId) -> usize {
        let r = &self.node(id).raft;
        let target = if r.role == Role::Leader {
            r.election_tick
        } else {
            r.randomized_election_timeout
        };
        let n = target.saturating_sub(r.election_elapsed).max(1);
        self.tick(id, n);
        n
    }

    /// Ticks `id` until its next heartbeat.
    pub fn tick_heartbeat(&mut self, id: NodeId) -> usize {
        let r = &self.node(id).raft;
        let n = r.heartbeat_tick.saturating_sub(r.heartbeat_elapsed).max(1);
        self.tick(id, n);
        n
    }

    /// Campaign on `id` and stabilize.
    pub fn elect(&mut self, id: NodeId) {
        self.node_mut(id).campaign().expect("voter");
        self.stabilize();
    }

    /// Replaces `id` by a fresh driver built from its durable storage (a crash + restart).
    /// Reads it had pending are forgotten (their callers would time out).
    ///
    /// The state machine is rebuilt by replaying every committed entry (`Config::applied` =
    /// 0), configuration changes included, so the restarted node must start from the
    /// configuration as of index 0 (its boot configuration), not from the latest applied
    /// one: the stored `ConfState` and the applied index it belongs to must match
    /// (`RawNode::apply_conf_change` contract; etcd raft restarts from a snapshot's
    /// `ConfState` and replays only entries after the snapshot index). Replaying changes on
    /// top of the already-changed configuration is not idempotent — e.g. a node whose latest
    /// configuration is joint rejects the replayed earlier "enter joint", then applies the
    /// earlier "leave joint" to the *current* joint configuration, and re-enters the current
    /// one from the wrong outgoing set.
    pub fn restart(&mut self, id: NodeId) {
        let mut storage = self.node(id).storage().clone();
        storage.set_conf_state(self.boot_conf_states[&id].clone());
        let config = self.configs[&id].clone();
        self.start(config, storage);
        // The state machine is rebuilt by replaying committed entries (config.applied = 0).
        self.applied.insert(id, Vec::new());
    }

    /// The unique leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .map(NodeDriver::raw)
            .filter(|n| n.raft.role == Role::Leader)
            .max_by_key(|n| n.raft.term)
            .map(|n| n.raft.id)
    }

    /// Every node's durable log as (term, index, data) lines.
    pub fn log_of(&self, id: NodeId) -> Vec<Entry> {
        self.node(id).storage().all_entries().to_vec()
    }
}

/// One step of a stabilize, for printing.
pub(crate) enum Step {
    Ready(NodeId, Box<Handled>),
    Delivered(NodeId, Vec<(Message, bool)>),
}

/// Renders a handled Ready the way the interaction scripts show it; no blank lines.
pub(crate) fn fmt_ready(id: NodeId, rd: &Handled) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "> {id} handling Ready");
    if let Some(ss) = rd.soft_state {
        let _ = writeln!(s, "  State: {:?} leader={}", ss.role, ss.leader_id);
    }
    if let Some(hs) = rd.hard_state {
        let _ = writeln!(
            s,
            "  HardState term={} vote={} commit={}",
            hs.term, hs.vote, hs.commit
        );
    }
    section(&mut s, "Entries", rd.entries.iter().map(|e| e.to_string()));
    section(
        &mut s,
        "Messages",
        rd.messages.iter().map(|m| m.to_string()),
    );
    section(
        &mut s,
        "PersistedMessages",
        rd.persisted_messages.iter().map(|m| m.to_string()),
    );
    section(
        &mut s,
        "CommittedEntries",
        rd.committed_entries.iter().map(|e| e.to_string()),
    );
    section(
        &mut s,
        "ReadStates",
        rd.read_states.iter().map(|r| {
            format!(
                "index={} ctx={}",
                r.index,
                super::types::DisplayBytes(&r.request_ctx)
            )
        }),
    );
    section(
        &mut s,
        "FailedReads",
        rd.failed_reads
            .iter()
            .map(|(ctx, e)| format!("ctx={} {e}", super::types::DisplayBytes(ctx))),
    );
    s
}

fn section(s: &mut String, name: &str, lines: impl Iterator<Item = String>) {
    let lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(s, "  {name}:");
    for l in lines {
        let _ = writeln!(s, "    {l}");
    }
}

/// Renders delivered messages.
pub(crate) fn fmt_delivered(delivered: &[(Message, bool)]) -> String {
    let mut s = String::new();
    for (m, ok) in delivered {
        let _ = writeln!(s, "{}{m}", if *ok { "" } else { "DROPPED " });
    }
    s
}

/// One line of node state: `1 Leader term=2 vote=1 leader=1 commit=3 applied=3 last=3`.
pub(crate) fn fmt_state(node: &RawNode<MemStorage>) -> String {
    let st = node.status();
    format!(
        "{} {:?} term={} vote={} leader={} commit={} applied={} last={}\n",
        st.id,
        st.soft_state.role,
        st.hard_state.term,
        st.hard_state.vote,
        st.soft_state.leader_id,
        st.hard_state.commit,
        st.applied,
        st.last_index
    )
}

/// Carries out one `Ready` of a bare core over `MemStorage` in the contract's order: send
/// `messages` (into `sent`); persist snapshot, hard state, entries; send
/// `persisted_messages`; apply the configuration changes among `committed_entries`;
/// `advance`. Returns the Ready as taken: the caller's state machine installs its snapshot
/// and applies its committed entries (never both in one Ready, so the order between the two
/// is the contract's).
pub(crate) fn carry_out_ready(node: &mut RawNode<MemStorage>, sent: &mut Vec<Message>) -> Ready {
    let mut rd = node.ready();
    let shown = rd.clone();
    sent.append(&mut rd.messages);
    if let Some(snapshot) = &rd.snapshot {
        node.storage_mut()
            .apply_snapshot(snapshot.clone())
            .expect("a Ready's snapshot is newer than the stored one");
    }
    if let Some(hs) = rd.hard_state {
        node.storage_mut().set_hard_state(hs);
    }
    node.storage_mut()
        .append(&rd.entries)
        .expect("a Ready's entries fit the stored log");
    sent.append(&mut rd.persisted_messages);
    for e in &rd.committed_entries {
        if e.kind == EntryKind::ConfChange {
            let cc = ConfChange::decode(&e.data).expect("a valid conf change");
            if let Ok(cs) = node.apply_conf_change(&cc) {
                node.storage_mut().set_conf_state(cs);
            }
        }
    }
    node.advance(rd);
    shown
}

/// N bare cores over `MemStorage`, an in-flight queue and link cuts, with its own Ready loop
/// ([`carry_out_ready`]) that persists and installs snapshots — the harness for
/// InstallSnapshot (see the module docs for why not [`Cluster`]).
///
/// The state machine of each node is the list of entries it applied (`applied`). The
/// network plays the transport of docs/snapshots.md §2: delivering an `InstallSnapshot`
/// first stages the sender's state machine image at the snapshot index for the receiver
/// (what the real transport streams), then steps the message, then reports the outcome to
/// the sender with `report_snapshot` (a cut link: the message is lost, reported failed).
pub(crate) struct Network {
    pub nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    pub configs: BTreeMap<NodeId, Config>,
    /// Messages sent and not yet delivered, in send order.
    pub in_flight: Vec<Message>,
    /// Directed links (from, to) that drop messages.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Each node's state machine: the entries applied, in order (after installing a
    /// snapshot: the image's entries, then the ones applied since).
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    /// Snapshots each node installed, in order.
    pub installed: BTreeMap<NodeId, Vec<SnapshotMeta>>,
    /// Every message delivered (or dropped: `false`), in order, for assertions.
    pub delivered: Vec<(Message, bool)>,
    /// Store images streamed to a node and not yet installed: (snapshot index, image).
    staged: BTreeMap<NodeId, (u64, Vec<Entry>)>,
}

impl Network {
    /// Nodes 1..=n, all voters, test config.
    pub fn with_nodes(n: u64) -> Self {
        Self::with_conf_state(ConfState::from_voters(1..=n), n)
    }

    /// Nodes 1..=n that all start from `conf_state` (which may list some as learners).
    pub fn with_conf_state(conf_state: ConfState, n: u64) -> Self {
        let mut net = Network {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            installed: BTreeMap::new(),
            delivered: Vec::new(),
            staged: BTreeMap::new(),
        };
        for id in 1..=n {
            let storage = MemStorage::new_with_conf_state(conf_state.clone());
            net.configs.insert(id, test_config(id));
            net.nodes.insert(id, new_node(&test_config(id), storage));
            net.applied.insert(id, Vec::new());
        }
        net
    }

    pub fn node(&self, id: NodeId) -> &RawNode<MemStorage> {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut RawNode<MemStorage> {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Takes and carries out one Ready of `id`; `None` when it has none.
    pub fn process_ready(&mut self, id: NodeId) -> Option<Ready> {
        let node = self.nodes.get_mut(&id)?;
        if !node.has_ready() {
            return None;
        }
        let rd = carry_out_ready(node, &mut self.in_flight);
        let applied = self.applied.entry(id).or_default();
        if let Some(snapshot) = &rd.snapshot {
            let (index, image) = self
                .staged
                .remove(&id)
                .expect("the transport staged the image before the InstallSnapshot");
            assert_eq!(index, snapshot.index, "the image matches the snapshot");
            assert!(rd.committed_entries.is_empty());
            *applied = image;
            self.installed.entry(id).or_default().push(snapshot.clone());
        }
        applied.extend(rd.committed_entries.iter().cloned());
        Some(rd)
    }

    /// Delivers every queued message addressed to `id`, in order (cut links drop them).
    pub fn deliver(&mut self, id: NodeId) -> bool {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|m| m.to == id);
        self.in_flight = rest;
        let any = !mine.is_empty();
        for m in mine {
            let ok = !self.cut.contains(&(m.from, m.to)) && self.nodes.contains_key(&id);
            self.delivered.push((m.clone(), ok));
            let snapshot = match &m.body {
                MessageBody::InstallSnapshot { snapshot } => Some(snapshot.index),
                _ => None,
            };
            let from = m.from;
            if ok {
                if let Some(index) = snapshot {
                    let image = self.applied[&from]
                        .iter()
                        .filter(|e| e.index <= index)
                        .cloned()
                        .collect::<Vec<_>>();
                    assert_eq!(
                        image.last().map(|e| e.index),
                        Some(index),
                        "the sender applied through its snapshot"
                    );
                    self.staged.insert(id, (index, image));
                }
                // Stale or unexpected messages are part of normal operation.
                let _ = self.node_mut(id).step(m);
            }
            // The transport reports the outcome of every snapshot it carried.
            if snapshot.is_some()
                && let Some(sender) = self.nodes.get_mut(&from)
            {
                sender.report_snapshot(id, !ok);
            }
        }
        any
    }

    /// Processes Readies and delivers messages until nothing changes.
    pub fn stabilize(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        loop {
            let mut progressed = false;
            for id in &ids {
                while self.process_ready(*id).is_some() {
                    progressed = true;
                }
            }
            for id in &ids {
                progressed |= self.deliver(*id);
            }
            if !progressed {
                return;
            }
        }
    }

    /// Campaign on `id` and stabilize.
    pub fn elect(&mut self, id: NodeId) {
        self.node_mut(id).campaign().expect("voter");
        self.stabilize();
    }

    /// Proposes `data` on `id` (which must accept it) and stabilizes.
    pub fn propose(&mut self, id: NodeId, data: &[u8]) {
        self.node_mut(id).propose(data.to_vec()).expect("accepted");
        self.stabilize();
    }

    /// `id`'s application compacts its log: records a snapshot at its applied index (with its
    /// current configuration) and drops the entries through `compact_to` (≤ applied).
    pub fn compact(&mut self, id: NodeId, compact_to: u64) -> SnapshotMeta {
        let node = self.node_mut(id);
        let applied = node.status().applied;
        assert!(
            compact_to <= applied,
            "compacting {compact_to} past applied {applied}"
        );
        let cs = node.status().conf_state;
        let meta = node
            .storage_mut()
            .create_snapshot(applied, cs)
            .expect("a newer snapshot point");
        node.storage_mut().compact(compact_to).expect("compactable");
        meta
    }

    /// Drops both directions between `id` and every other node.
    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|o| *o != id).collect();
        for o in others {
            self.cut.insert((id, o));
            self.cut.insert((o, id));
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Ticks `id` until its next heartbeat (a leader) and stabilizes.
    pub fn heartbeat(&mut self, id: NodeId) {
        let r = &self.node(id).raft;
        let n = r.heartbeat_tick.saturating_sub(r.heartbeat_elapsed).max(1);
        for _ in 0..n {
            self.node_mut(id).tick();
        }
        self.stabilize();
    }

    /// Crash + restart of `id` from its durable storage. The state machine is durable at the
    /// storage's snapshot point (its image was saved there: `Config::applied` = snapshot
    /// index) and replays the committed entries after it.
    pub fn restart(&mut self, id: NodeId) {
        let storage = self.node(id).storage().clone();
        let snapshot_index = storage.snapshot().expect("MemStorage always has one").index;
        let config = Config {
            applied: snapshot_index,
            ..self.configs[&id].clone()
        };
        self.applied
            .get_mut(&id)
            .expect("node exists")
            .retain(|e| e.index <= snapshot_index);
        self.staged.remove(&id);
        self.nodes.insert(id, new_node(&config, storage));
    }

    /// The term of every index `id`'s log still holds (its snapshot point included), for
    /// comparing logs that were compacted at different points.
    pub fn terms(&self, id: NodeId) -> BTreeMap<u64, u64> {
        let log = &self.node(id).raft.raft_log;
        (log.first_index() - 1..=log.last_index())
            .map(|i| (i, log.term(i).expect("in the log")))
            .collect()
    }

    /// Asserts that every pair of logs agrees on the term of every index both hold (Log
    /// Matching, §5.3, across compaction points) and that every state machine applied the
    /// same sequence (State Machine Safety, §5.4.3; a prefix for a node that is behind).
    pub fn assert_consistent(&self) {
        for a in self.nodes.keys() {
            for b in self.nodes.keys() {
                let (ta, tb) = (self.terms(*a), self.terms(*b));
                for (i, t) in &ta {
                    if let Some(u) = tb.get(i) {
                        assert_eq!(t, u, "nodes {a} and {b} disagree at index {i}");
                    }
                }
                let (sa, sb) = (&self.applied[a], &self.applied[b]);
                let n = sa.len().min(sb.len());
                assert_eq!(sa[..n], sb[..n], "state machines of {a} and {b} differ");
            }
        }
    }
}

/// An empty normal entry at `index` of `term`, for log tests.
pub(crate) fn ent(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        ..Default::default()
    }
}
