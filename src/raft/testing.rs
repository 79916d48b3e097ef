//! Test harness: a network of `RawNode<MemStorage>`s with a message queue, link cuts, and a
//! text rendering of Readies. Used by the paper tests and the interaction scripts.
#![allow(dead_code)] // parts are used only by some test modules

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    ConfChange, ConfState, Config, Entry, EntryKind, MemStorage, Message, NodeId, RawNode,
    ReadState, Ready, Role,
};

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

/// A new node over `storage`.
pub(crate) fn new_node(config: &Config, storage: MemStorage) -> RawNode<MemStorage> {
    RawNode::new(config, storage, test_rng(config.id)).expect("valid test node")
}

/// N nodes, an in-flight message queue (FIFO), and directed link cuts.
pub(crate) struct Cluster {
    pub nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
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
        self.nodes.insert(id, new_node(&config, storage));
        self.configs.insert(id, config);
    }

    pub fn node(&self, id: NodeId) -> &RawNode<MemStorage> {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut RawNode<MemStorage> {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Handles one Ready of `id` following the contract: persist, queue messages, record
    /// applied entries and read states, advance. Returns the Ready handled.
    pub fn process_ready(&mut self, id: NodeId) -> Option<Ready> {
        let node = self.nodes.get_mut(&id)?;
        if !node.has_ready() {
            return None;
        }
        let ready = node.ready();
        self.in_flight.extend(ready.messages.iter().cloned());
        if let Some(hs) = ready.hard_state {
            node.storage_mut().set_hard_state(hs);
        }
        node.storage_mut()
            .append(&ready.entries)
            .expect("append to MemStorage");
        self.in_flight
            .extend(ready.persisted_messages.iter().cloned());
        self.applied
            .entry(id)
            .or_default()
            .extend(ready.committed_entries.iter().cloned());
        self.read_states
            .entry(id)
            .or_default()
            .extend(ready.read_states.iter().cloned());
        // Apply configuration changes as the application would, before advance.
        for e in ready
            .committed_entries
            .iter()
            .filter(|e| e.kind == EntryKind::ConfChange)
        {
            let cc = ConfChange::decode(&e.data).expect("valid conf change");
            if let Ok(cs) = node.apply_conf_change(&cc) {
                node.storage_mut().set_conf_state(cs);
            }
        }
        let shown = ready.clone();
        node.advance(ready);
        Some(shown)
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

    /// Replaces `id` by a fresh node built from its durable storage (a crash + restart).
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
        self.nodes.insert(id, new_node(&config, storage));
        // The state machine is rebuilt by replaying committed entries (config.applied = 0).
        self.applied.insert(id, Vec::new());
    }

    /// The unique leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
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
    Ready(NodeId, Box<Ready>),
    Delivered(NodeId, Vec<(Message, bool)>),
}

/// Renders a Ready the way the interaction scripts show it; no blank lines.
pub(crate) fn fmt_ready(id: NodeId, rd: &Ready) -> String {
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

/// An empty normal entry at `index` of `term`, for log tests.
pub(crate) fn ent(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        ..Default::default()
    }
}
