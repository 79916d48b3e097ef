//! The simulated cluster: N nodes, each the server's own [`NodeDriver`] over a simulated
//! [`Disk`] and an MVCC [`Kv`], wired together by the simulated [`Network`] and driven by the
//! virtual clock.
//!
//! Nothing here decides how Raft is driven: the driver does (`src/node/mod.rs`), exactly as in
//! the server's `RaftActor`. The simulator only carries out its effects:
//! ```text
//!   tick / deliver / propose / read ─► NodeDriver ─► effects()
//!     Send(messages)   ─► the network (delay, loss, duplication, partitions)
//!     Persist(write)   ─► the disk; its fsync completes after 0..=k ticks (a crash before
//!                         that loses it) ─► NodeDriver::persisted(write) ─► more effects
//!     Apply(entries)   ─► the Kv (as the StoreActor), watch hub, lease clock, client acks;
//!                         every `snapshot_count` applied entries a snapshot point: a copy of
//!                         the store (its image) ─► NodeDriver::snapshot_point
//!     CompactLog       ─► the disk (durable with the next synced write, see `disk.rs`)
//!     ReadReady/Failed ─► the workload's pending linearizable reads
//! ```
//! An `InstallSnapshot` message is the transport's (`PeerLink`'s) job, as in the server: the
//! sender's image of its latest point goes with it (none at that index: the send fails at
//! once); the receiver installs it into its store — synced, unless the store already applied
//! that far — then steps the message into its driver; the sender's driver hears
//! `snapshot_sent(to, failed)`: failed for a lost transfer (after [`SNAPSHOT_TIMEOUT_TICKS`]),
//! a cut link or a node that is down. A restart finishes an install whose Raft write a crash
//! lost (`Disk::finish_install`, the server's `LogStore::finish_install`).
//! Sabotage modes are filters on those effects or on the disk, so the invariants are shown
//! to catch bugs in the real driving code.
//!
//! A run has two phases (TigerBeetle's VOPR): a **safety phase** with faults on — lossy,
//! duplicating, reordering links, partitions, crashes within a fault budget (never more than
//! a minority down at once) — and a **liveness phase** with faults off and every node up, in
//! which the cluster must elect a leader, commit a final write and converge within a bound.
//! Invariants run after every event in both phases.

mod leases;
mod watches;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use ferrokv::mvcc::applier::{Applied as StoreApplied, LeaseApplied, Skipped, apply_entry};
use ferrokv::mvcc::mem_backend::{MemBackend, MemImage};
use ferrokv::mvcc::{Kv, Response};
use ferrokv::node::{Effect, NodeDriver, Write};
use ferrokv::pb::etcdserverpb::{PutRequest, RangeRequest};
use ferrokv::pb::mvccpb::KeyValue;
use ferrokv::pb::peerpb::{InternalRequest, internal_request};
use ferrokv::raft::{
    ConfState, Config, Entry, Message, MessageBody, NodeId, Role, SnapshotMeta, Storage,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::{EventQueue, Tick};
use crate::disk::Disk;
use crate::invariants::{
    Applied, Check, DurableNode, Final, HistoryRead, Installed, InvariantSet, NodeState, Persisted,
    Restarted, ServedRead, Violation, violated,
};
use crate::lease::{LeaseClients, LeaseStats};
use crate::network::{Network, NetworkProfile};
use crate::trace::Trace;
use crate::watch::{WatchClients, WatchStats};
use crate::workload::Workload;

/// How to run one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Cluster size; `None` = 3 or 5, drawn from the seed.
    pub nodes: Option<usize>,
    /// Length of the safety phase, ticks.
    pub safety_ticks: u64,
    /// Bound on the liveness phase, ticks: the cluster must converge within it.
    pub liveness_ticks_max: u64,
    /// Print the trace.
    pub verbose: bool,
    /// Deliberately break the node driver, to check that the invariants catch it.
    pub sabotage: Option<Sabotage>,
    /// Applied entries between two snapshot points of a node (the server's
    /// `--snapshot-count`); `Some(0)` takes none (no compaction, no InstallSnapshot);
    /// `None` draws one of 10, 20, 30, 50 from the seed.
    pub snapshot_count: Option<u64>,
    /// Entries kept behind each snapshot point for slow followers
    /// (`--experimental-snapshot-catchup-entries`); `None` draws 0..=10 from the seed.
    pub snapshot_catchup_entries: Option<u64>,
}

/// A deliberate bug injected into how a node's effects are carried out, for checking the
/// checker: with one of these, some seeds must fail (see `tests/sabotage.rs`). Never set in
/// normal runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// Report each `Persist` effect to the driver as durable at once, while the disk write is
    /// still in flight: vote grants and append acks leave before the fsync (step 3 of the
    /// `Ready` contract broken), so a crash can make a node forget a vote or entries it
    /// already promised.
    SendBeforePersist,
    /// The disk acknowledges an fsync but a crash loses the last durable entry (a disk cache
    /// that lies), so a node can forget an entry it acknowledged.
    LyingFsync,
    /// A node's watch layer drops one event of one live delivery (the first from tick 200
    /// on), leaving a gap in that watcher's stream.
    WatchSkip,
    /// A new leader does not restart lease TTLs: its clock promotes as of the node's start,
    /// so leases renewed on the old leader can expire at once.
    LeaseNoFreshTtl,
    /// A log compaction is made durable at once (fsynced on its own), not with the fsync
    /// that also makes the store's batches durable: a crash can keep the compaction and lose
    /// the store state it summarised.
    CompactBeforeStoreSync,
    /// A node whose latest snapshot point is not the one its Raft core offers (none since a
    /// restart, or a newer image installed) fails the send and takes no new point, as the
    /// server's `StoreActor::handle(ExportImage)` did when this was found: the leader can then
    /// never send an image until `snapshot_count` more entries are applied (seed 12: an idle
    /// cluster never catches its lagging follower up).
    NoPointRefresh,
    /// After an install the lease clock compares the old and new lease tables by id only, as
    /// the server's `StoreActor::handle(InstallImage)` did when this was found: a lease revoked
    /// and granted again with another TTL under the image keeps its old TTL (seed 340).
    ImageLeasesById,
}

impl Options {
    /// Defaults for `seed`: 1000 ticks of faults, then up to 500 ticks to converge.
    pub fn new(seed: u64) -> Self {
        Options {
            seed,
            nodes: None,
            safety_ticks: 1000,
            liveness_ticks_max: 500,
            verbose: false,
            sabotage: None,
            snapshot_count: None,
            snapshot_catchup_entries: None,
        }
    }
}

/// What the snapshot machinery did in one run (summed over nodes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshot points taken (store images kept, `snapshot_point` calls).
    pub points: u64,
    /// Log compactions made durable.
    pub compactions: u64,
    /// Log compactions lost in a crash before an fsync covered them.
    pub compactions_lost: u64,
    /// InstallSnapshot transfers started with an image.
    pub sent: u64,
    /// Images installed into a follower's store.
    pub installed: u64,
    /// Images delivered to a store that had already applied that far (left alone).
    pub unneeded: u64,
    /// Transfers reported failed: no image at the point, lost, cut, or receiver down.
    pub failed: u64,
    /// Installs finished at a restart (`Disk::finish_install`).
    pub finished_at_restart: u64,
}

/// What one passing run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Ticks simulated (both phases).
    pub ticks: u64,
    /// Events handled (message deliveries, fsync completions, restarts, heals).
    pub events: u64,
    /// Entries committed and applied.
    pub commits: u64,
    /// Terms that elected a leader.
    pub elections: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Partitions (two-way splits and one-way cuts).
    pub partitions: u64,
    /// Messages lost, duplicated or delayed by a spike.
    pub message_faults: u64,
    /// Disk writes lost in crashes.
    pub writes_lost: u64,
    /// Unsynced MVCC store batches lost in crashes (replayed from the log on restart).
    pub store_batches_lost: u64,
    /// Client requests accepted for proposing.
    pub proposals: u64,
    /// Client requests acknowledged.
    pub acks: u64,
    /// Linearizable reads served (ReadIndex).
    pub reads: u64,
    /// Leadership transfers requested.
    pub transfers: u64,
    /// What the watch clients did and received.
    pub watch: WatchStats,
    /// What the lease clients and the leaders' clocks did.
    pub lease: LeaseStats,
    /// Snapshot points, compactions and InstallSnapshot transfers.
    pub snapshots: SnapshotStats,
    /// Least room the no-early-expiry rule had at an expiry after a keep-alive, ms.
    pub lease_margin_min_ms: Option<i64>,
    /// The same, for expiries whose last keep-alive another (former leader) node answered.
    pub lease_margin_min_other_ms: Option<i64>,
    /// Hash of the whole trace; equal for two runs of one seed.
    pub trace_hash: u64,
}

impl RunStats {
    /// All injected faults.
    pub fn faults(&self) -> u64 {
        self.crashes + self.partitions + self.message_faults
    }
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The seed that replays it.
    pub seed: u64,
    /// Tick of the failure.
    pub tick: Tick,
    /// The broken invariant (or `liveness`, `panic`, `storage`).
    pub violation: Violation,
    /// Hash of the trace up to the failure.
    pub trace_hash: u64,
}

/// Runs one seed to completion. Panics inside the cores are caught and reported as failures.
pub fn run_seed(options: &Options) -> Result<RunStats, Failure> {
    let mut cluster = Cluster::new(options);
    let outcome = catch_unwind(AssertUnwindSafe(|| cluster.run()));
    let violation = match outcome {
        Ok(Ok(())) => return Ok(cluster.stats()),
        Ok(Err(v)) => v,
        Err(panic) => Violation {
            invariant: "no panic",
            detail: panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic payload".into()),
        },
    };
    Err(Failure {
        seed: options.seed,
        tick: cluster.now,
        violation,
        trace_hash: cluster.trace.hash(),
    })
}

/// Raft settings of a run (the server's are election 10 / heartbeat 1 ticks, 1 MiB, 256).
const ELECTION_TICKS: usize = 10;
const HEARTBEAT_TICKS: usize = 1;
/// Small, so that replication is split into several AppendEntries and flow control engages.
const MAX_SIZE_PER_MSG_BYTES: u64 = 512;
const MAX_INFLIGHT_MSGS: usize = 4;
/// Work bound per tick: a healthy 5-node cluster handles a few dozen events per tick; a
/// feedback loop between nodes (each message causing more than one) would otherwise hang the
/// run instead of failing it.
const EVENTS_PER_TICK_MAX: u64 = 10_000;
/// How often the liveness phase re-proposes its final write if unacknowledged, ticks.
const FINAL_RETRY_TICKS: u64 = 25;
/// When a lost InstallSnapshot transfer is reported failed, ticks after it started (the
/// server's stream fails on its dial timeout, 1 s + one election timeout; 10 ticks = 1 s).
pub const SNAPSHOT_TIMEOUT_TICKS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Safety,
    Liveness,
}

#[derive(Debug)]
enum Event {
    Deliver(Message),
    /// An InstallSnapshot message with the sender's store image of its point (the
    /// `PeerLink`'s separate stream), from the sender's incarnation `incarnation`.
    DeliverSnapshot {
        msg: Message,
        image: Arc<MemImage>,
        incarnation: u64,
    },
    /// The transport tells `from` (if still in `incarnation`) how its transfer to `to` went.
    SnapshotReport {
        from: NodeId,
        incarnation: u64,
        to: NodeId,
        failed: bool,
    },
    PersistDone {
        node: NodeId,
        write_id: u64,
    },
    Restart(NodeId),
    Heal,
    /// A late history answer for a watcher of `node` (in `incarnation`).
    History {
        node: NodeId,
        incarnation: u64,
        /// `(stream, watch id, watcher generation)` the answer is for.
        target: (ferrokv::watch::StreamId, i64, u64),
        history: ferrokv::watch::History,
        read: HistoryRead,
    },
}

/// The MVCC store of a running node: the server's `Kv` over the node's [`MemBackend`].
struct Store {
    kv: Kv,
}

/// A node's latest snapshot point: the store's image at its applied index, kept in memory
/// (the `StoreActor`'s fjall snapshot view; gone with a crash).
struct StorePoint {
    index: u64,
    image: Arc<MemImage>,
}

struct Node {
    id: NodeId,
    disk: Disk,
    /// The store's disk: survives crashes, except for the batches committed since the last
    /// synced log write (one journal for log and store, as fjall's in the server).
    backend: MemBackend,
    /// The store's durable applied index at the last crash (what the restart must find).
    synced_applied_index: u64,
    store: Option<Store>,
    /// The server's own node driver (`None` while down).
    driver: Option<NodeDriver>,
    /// Starts so far (1 after the first start).
    incarnation: u64,
    /// Role last observed, to trace changes.
    role: Role,
    /// The watch hub and streams of this incarnation (`None` while down).
    watch: Option<watches::NodeWatch>,
    /// The lease clock of this incarnation (`None` while down).
    lease: Option<leases::NodeLease>,
    /// The latest snapshot point of this incarnation.
    point: Option<StorePoint>,
    /// Applied index of the latest point, or of the store at start before any.
    last_point_index: u64,
    /// Highest index of an image installed in this incarnation: the store may be handed
    /// entries through it again (it skips them).
    installed_through: u64,
}

impl Node {
    fn running(&self) -> bool {
        self.driver.is_some()
    }
}

/// The fault schedule's knobs, drawn from the seed.
#[derive(Debug)]
struct FaultPlan {
    rng: ChaCha8Rng,
    crash_per_mille: u32,
    partition_per_mille: u32,
    restart_ticks_max: u64,
    heal_ticks_max: u64,
    fsync_ticks_max: u64,
    propose_per_mille: u32,
    read_per_mille: u32,
    transfer_per_mille: u32,
    partition_active: bool,
    transfers: u64,
    crashes: u64,
    partitions: u64,
}

impl FaultPlan {
    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.random_range(0..1000) < per_mille
    }
}

struct Cluster {
    options: Options,
    now: Tick,
    events: u64,
    nodes: Vec<Node>,
    queue: EventQueue<Event>,
    network: Network,
    workload: Workload,
    plan: FaultPlan,
    /// Seeds of each node incarnation's Raft PRNG (election jitter).
    raft_seeds: ChaCha8Rng,
    pre_vote: bool,
    check_quorum: bool,
    invariants: InvariantSet,
    trace: Trace,
    watch_clients: WatchClients,
    phase: Phase,
    /// `Sabotage::WatchSkip` did its damage.
    watch_skipped: bool,
    lease_clients: LeaseClients,
    /// Keep-alives count for the no-early-expiry check: only with `check_quorum` (as the
    /// server always runs), since without it a deposed leader never steps down.
    lease_renewals_checked: bool,
    /// Highest index of a revoke counted in the stats.
    lease_revoked_max_index: u64,
    /// Resolved [`Options::snapshot_count`].
    snapshot_count: u64,
    /// Resolved [`Options::snapshot_catchup_entries`].
    snapshot_catchup_entries: u64,
    snapshot_stats: SnapshotStats,
}

impl Cluster {
    fn new(options: &Options) -> Self {
        let mut root = ChaCha8Rng::seed_from_u64(options.seed);
        let node_count = options
            .nodes
            .unwrap_or(if root.random_bool(0.5) { 3 } else { 5 });
        let mut sub = || ChaCha8Rng::seed_from_u64(root.next_u64());
        let mut network_rng = sub();
        let profile = NetworkProfile::random(&mut network_rng);
        let network = Network::new(network_rng, profile);
        let workload = Workload::new(sub());
        let raft_seeds = sub();
        let mut plan_rng = sub();
        let plan = FaultPlan {
            crash_per_mille: plan_rng.random_range(0..=15),
            partition_per_mille: plan_rng.random_range(0..=15),
            restart_ticks_max: plan_rng.random_range(5..=80),
            heal_ticks_max: plan_rng.random_range(10..=120),
            fsync_ticks_max: plan_rng.random_range(0..=3),
            propose_per_mille: plan_rng.random_range(100..=350),
            read_per_mille: plan_rng.random_range(0..=150),
            transfer_per_mille: plan_rng.random_range(0..=5),
            partition_active: false,
            transfers: 0,
            crashes: 0,
            partitions: 0,
            rng: plan_rng,
        };
        let pre_vote = root.random_bool(0.8);
        let check_quorum = root.random_bool(0.8);
        let watch_clients = WatchClients::new(ChaCha8Rng::seed_from_u64(root.next_u64()));
        let lease_clients = LeaseClients::new(ChaCha8Rng::seed_from_u64(root.next_u64()));
        // Drawn last, from a generator of its own, so every earlier draw stays as it was.
        let mut snapshot_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        let snapshot_count = [10, 20, 30, 50][snapshot_rng.random_range(0..4)];
        let snapshot_count = options.snapshot_count.unwrap_or(snapshot_count);
        let catchup = snapshot_rng.random_range(0..=10);
        let snapshot_catchup_entries = options.snapshot_catchup_entries.unwrap_or(catchup);
        let ids: Vec<NodeId> = (1..=node_count as NodeId).collect();
        let nodes = ids
            .iter()
            .map(|&id| Node {
                id,
                disk: Disk::new(ConfState::from_voters(ids.iter().copied())),
                backend: MemBackend::new(),
                synced_applied_index: 0,
                store: None,
                driver: None,
                incarnation: 0,
                role: Role::Follower,
                watch: None,
                lease: None,
                point: None,
                last_point_index: 0,
                installed_through: 0,
            })
            .collect();
        Cluster {
            options: options.clone(),
            now: 0,
            events: 0,
            nodes,
            queue: EventQueue::default(),
            network,
            workload,
            plan,
            raft_seeds,
            pre_vote,
            check_quorum,
            invariants: InvariantSet::default(),
            trace: Trace::new(options.verbose),
            watch_clients,
            phase: Phase::Safety,
            watch_skipped: false,
            lease_clients,
            lease_renewals_checked: check_quorum,
            lease_revoked_max_index: 0,
            snapshot_count,
            snapshot_catchup_entries,
            snapshot_stats: SnapshotStats::default(),
        }
    }

    fn stats(&self) -> RunStats {
        let net = self.network.stats;
        RunStats {
            seed: self.options.seed,
            nodes: self.nodes.len(),
            ticks: self.now,
            events: self.events,
            commits: self.invariants.history.committed.len() as u64,
            elections: self.invariants.election_safety.elections(),
            crashes: self.plan.crashes,
            partitions: self.plan.partitions,
            message_faults: net.lost + net.duplicated + net.delayed,
            writes_lost: self.nodes.iter().map(|n| n.disk.stats.lost).sum(),
            store_batches_lost: self.nodes.iter().map(|n| n.backend.lost_batches()).sum(),
            proposals: self.workload.stats.proposed,
            acks: self.workload.stats.acked,
            reads: self.workload.stats.reads_served,
            transfers: self.plan.transfers,
            watch: self.watch_clients.stats,
            lease: self.lease_clients.stats,
            snapshots: SnapshotStats {
                compactions: self.nodes.iter().map(|n| n.disk.stats.compactions).sum(),
                compactions_lost: self
                    .nodes
                    .iter()
                    .map(|n| n.disk.stats.compactions_lost)
                    .sum(),
                ..self.snapshot_stats
            },
            lease_margin_min_ms: self.invariants.lease_expiry.margin_min_ms,
            lease_margin_min_other_ms: self.invariants.lease_expiry.margin_min_other_ms,
            trace_hash: self.trace.hash(),
        }
    }

    fn run(&mut self) -> Check {
        self.trace.line(format_args!(
            "seed={} nodes={} pre_vote={} check_quorum={} network={:?} crash/partition/propose \
             per mille={}/{}/{} fsync_ticks_max={} snapshot count/catchup={}/{}",
            self.options.seed,
            self.nodes.len(),
            self.pre_vote,
            self.check_quorum,
            self.network.profile(),
            self.plan.crash_per_mille,
            self.plan.partition_per_mille,
            self.plan.propose_per_mille,
            self.plan.fsync_ticks_max,
            self.snapshot_count,
            self.snapshot_catchup_entries,
        ));
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        while self.now < self.options.safety_ticks {
            self.tick(Phase::Safety)?;
        }
        self.liveness()
    }

    // ---- the two phases ---------------------------------------------------------------------

    fn tick(&mut self, phase: Phase) -> Check {
        self.now += 1;
        if phase == Phase::Safety {
            self.inject_faults()?;
            self.client_request()?;
        }
        self.watch_tick(phase)?;
        self.lease_tick(phase)?;
        for i in 0..self.nodes.len() {
            if let Some(driver) = self.nodes[i].driver.as_mut() {
                driver.tick();
                self.drive(i)?;
                self.observe(i)?;
            }
        }
        let mut events_this_tick = 0;
        while let Some((_, event)) = self.queue.pop_due(self.now) {
            self.events += 1;
            events_this_tick += 1;
            if events_this_tick > EVENTS_PER_TICK_MAX {
                return violated(
                    "liveness",
                    format!(
                        "message storm: more than {EVENTS_PER_TICK_MAX} events in tick {} \
                         ({} still queued)",
                        self.now,
                        self.queue.len()
                    ),
                );
            }
            self.handle(event)?;
        }
        Ok(())
    }

    /// Faults off, everyone up; then the cluster must commit a final write and converge.
    fn liveness(&mut self) -> Check {
        self.trace.line(format_args!(
            "t={} liveness phase: heal, restart all",
            self.now
        ));
        self.network.heal();
        self.network.set_faults(false);
        self.phase = Phase::Liveness;
        self.plan.partition_active = false;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].running() {
                self.start(i)?;
            }
        }
        let deadline = self.now + self.options.liveness_ticks_max;
        let mut final_id: Option<u64> = None;
        let mut last_final_at = 0;
        loop {
            if let Some(id) = final_id
                && self.workload.is_acked(id)
                && let Some(key_spaces) = self.converged()?
            {
                let lease_tables = self.lease_tables(&key_spaces)?;
                let f = Final {
                    key_spaces: &key_spaces,
                    acks: &self.workload.acks,
                    lease_tables: &lease_tables,
                };
                self.trace
                    .line(format_args!("t={} converged; final checks", self.now));
                self.invariants.on_final(&f)?;
                return self.watch_final();
            }
            if self.now >= deadline {
                return violated(
                    "liveness",
                    format!(
                        "no convergence within {} ticks of the liveness phase (final write \
                         {final_id:?} acked: {}): {}",
                        self.options.liveness_ticks_max,
                        final_id.is_some_and(|id| self.workload.is_acked(id)),
                        self.describe()
                    ),
                );
            }
            let acked = final_id.is_some_and(|id| self.workload.is_acked(id));
            let retry = final_id.is_none() || self.now >= last_final_at + FINAL_RETRY_TICKS;
            if !acked
                && retry
                && let Some(id) = self.propose_final()?
            {
                final_id = Some(id);
                last_final_at = self.now;
            }
            self.tick(Phase::Liveness)?;
        }
    }

    /// Proposes the final write on the current leader (highest-term leader), if any.
    fn propose_final(&mut self) -> Result<Option<u64>, Violation> {
        let leader = (0..self.nodes.len())
            .filter_map(|i| {
                let st = self.nodes[i].driver.as_ref()?.raw().status();
                (st.soft_state.role == Role::Leader).then_some((st.hard_state.term, i))
            })
            .max();
        let Some((_, i)) = leader else {
            return Ok(None);
        };
        let request = InternalRequest {
            id: u64::MAX - self.now,
            request: Some(internal_request::Request::Put(PutRequest {
                key: b"final".to_vec(),
                value: format!("final@{}", self.now).into_bytes(),
                ..Default::default()
            })),
        };
        let id = request.id;
        Ok(self.propose(i, request)?.then_some(id))
    }

    /// All nodes up, settled, at one commit index which they all applied, with identical
    /// key spaces: returns those key spaces.
    fn converged(
        &self,
    ) -> Result<Option<std::collections::BTreeMap<NodeId, Vec<KeyValue>>>, Violation> {
        let mut target = None;
        for node in &self.nodes {
            let (Some(driver), Some(store)) = (&node.driver, &node.store) else {
                return Ok(None);
            };
            let st = driver.raw().status();
            let here = (st.hard_state.commit, st.applied, store.kv.applied_index());
            if !driver.is_settled() || here.0 != here.1 || here.1 != here.2 {
                return Ok(None);
            }
            if *target.get_or_insert(here.0) != here.0 {
                return Ok(None);
            }
        }
        if !self.watch_settled() {
            return Ok(None);
        }
        let mut key_spaces = std::collections::BTreeMap::new();
        for node in &self.nodes {
            let store = node.store.as_ref().expect("checked running above");
            let kvs = leases::live_keys(&store.kv).map_err(|e| storage_violation(node.id, &e))?;
            key_spaces.insert(node.id, kvs);
        }
        let first = key_spaces.values().next().expect("at least one node");
        if let Some((id, _)) = key_spaces.iter().find(|(_, kvs)| *kvs != first) {
            return violated(
                "convergence",
                format!("n{id} applied the same index as n1 but holds a different key space"),
            )
            .map(|()| None);
        }
        Ok(Some(key_spaces))
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match (&node.driver, &node.store) {
                (Some(driver), Some(store)) => {
                    let st = driver.raw().status();
                    out.push_str(&format!(
                        "[n{} {:?} term={} commit={} applied={} kv_applied={} last={} \
                         persisting={}] ",
                        node.id,
                        st.soft_state.role,
                        st.hard_state.term,
                        st.hard_state.commit,
                        st.applied,
                        store.kv.applied_index(),
                        st.last_index,
                        driver.is_persisting()
                    ));
                }
                _ => out.push_str(&format!("[n{} down] ", node.id)),
            }
        }
        out.push_str(&self.watch_describe());
        out
    }

    // ---- faults and clients -----------------------------------------------------------------

    fn inject_faults(&mut self) -> Check {
        let n = self.nodes.len();
        let down = self.nodes.iter().filter(|n| !n.running()).count();
        // Fault budget: a majority must stay up, so every crash is survivable.
        let max_down = (n - 1) / 2;
        if down < max_down && self.plan.chance(self.plan.crash_per_mille) {
            let up: Vec<usize> = (0..n).filter(|&i| self.nodes[i].running()).collect();
            let leader = up
                .iter()
                .copied()
                .find(|&i| self.nodes[i].role == Role::Leader);
            let victim = match leader {
                Some(l) if self.plan.rng.random_bool(0.4) => l,
                _ => up[self.plan.rng.random_range(0..up.len())],
            };
            self.crash(victim)?;
            let at = self.now + self.plan.rng.random_range(1..=self.plan.restart_ticks_max);
            self.queue.push(at, Event::Restart(self.nodes[victim].id));
        }
        if self.plan.chance(self.plan.transfer_per_mille)
            && let Some(l) = (0..n).find(|&i| self.nodes[i].role == Role::Leader)
            && let Some(driver) = self.nodes[l].driver.as_mut()
        {
            let to = self.plan.rng.random_range(1..=n as NodeId);
            driver.transfer_leader(to);
            self.plan.transfers += 1;
            self.trace.line(format_args!(
                "t={} n{} transfer leadership to n{to}",
                self.now,
                l + 1
            ));
            self.drive(l)?;
            self.observe(l)?;
        }
        if !self.plan.partition_active && self.plan.chance(self.plan.partition_per_mille) {
            let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
            let shape = self.plan.rng.random_range(0..3);
            let what = match shape {
                0 | 1 => {
                    // Two-way split; shape 0 isolates one node, shape 1 a random minority.
                    let size = if shape == 0 {
                        1
                    } else {
                        self.plan.rng.random_range(1..=max_down.max(1))
                    };
                    for k in 0..size {
                        let j = self.plan.rng.random_range(k..ids.len());
                        ids.swap(k, j);
                    }
                    let (a, b) = ids.split_at(size);
                    self.network.partition(a, b);
                    format!("partition {a:?} | {b:?}")
                }
                _ => {
                    let cuts = self.plan.rng.random_range(1..=n);
                    let mut links = Vec::new();
                    for _ in 0..cuts {
                        let from = ids[self.plan.rng.random_range(0..n)];
                        let to = ids[self.plan.rng.random_range(0..n)];
                        if from != to {
                            self.network.cut_one_way(from, to);
                            links.push(format!("{from}->{to}"));
                        }
                    }
                    format!("one-way cuts {links:?}")
                }
            };
            self.plan.partition_active = true;
            self.plan.partitions += 1;
            let at = self.now + self.plan.rng.random_range(1..=self.plan.heal_ticks_max);
            self.queue.push(at, Event::Heal);
            self.trace
                .line(format_args!("t={} {what} until t={at}", self.now));
        }
        Ok(())
    }

    fn client_request(&mut self) -> Check {
        self.workload.expire_reads(self.now);
        if self.plan.chance(self.plan.read_per_mille) {
            let i = self.random_running_node();
            self.start_read(i)?;
        }
        if !self.plan.chance(self.plan.propose_per_mille) {
            return Ok(());
        }
        let i = self.random_running_node();
        let request = self.workload.next_request();
        self.propose(i, request).map(|_| ())
    }

    fn random_running_node(&mut self) -> usize {
        let up = self.running_nodes();
        up[self.plan.rng.random_range(0..up.len())]
    }

    /// Indexes of the running nodes (never empty: a majority is always up).
    fn running_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].running())
            .collect()
    }

    /// A linearizable Range of one key on node `i`, as the API's `ReadIndex` path does.
    fn start_read(&mut self, i: usize) -> Check {
        let node = &mut self.nodes[i];
        let id = self
            .workload
            .start_read(node.id, node.incarnation, self.now);
        let driver = node.driver.as_mut().expect("reads go to running nodes");
        let accepted = driver.read_index(id).is_ok();
        if !accepted {
            self.workload.read_refused(id);
        }
        self.trace.line(format_args!(
            "t={} n{} read id={id} {}",
            self.now,
            node.id,
            if accepted { "accepted" } else { "refused" }
        ));
        self.drive(i)?;
        self.observe(i)
    }

    /// Serves the reads node `i` waits for whose read index it has applied.
    fn serve_reads(&mut self, i: usize) -> Check {
        let node = &self.nodes[i];
        let Some(store) = node.store.as_ref() else {
            return Ok(());
        };
        let applied_index = store.kv.applied_index();
        for (id, read) in self.workload.reads_due(node.id, applied_index) {
            let request = RangeRequest {
                key: read.key.clone(),
                ..Default::default()
            };
            let response = store
                .kv
                .range(&request)
                .map_err(|e| storage_violation(node.id, &e))?;
            let revision = response.header.as_ref().map_or(0, |h| h.revision);
            self.trace.line(format_args!(
                "t={} n{} serve read id={id} index={:?} applied={applied_index} rev={revision}",
                self.now, node.id, read.read_index
            ));
            self.invariants.on_read_served(&ServedRead {
                id,
                read: &read,
                applied_index,
                revision,
            })?;
        }
        Ok(())
    }

    /// Proposes `request` on node `i` as the API does; returns whether it was accepted.
    fn propose(&mut self, i: usize, request: InternalRequest) -> Result<bool, Violation> {
        let node = &mut self.nodes[i];
        let driver = node.driver.as_mut().expect("proposals go to running nodes");
        let accepted = driver.propose(Workload::encode(&request)).is_ok();
        self.trace.line(format_args!(
            "t={} n{} propose id={} {}",
            self.now,
            node.id,
            request.id,
            if accepted { "accepted" } else { "refused" }
        ));
        if request.id == 0 {
            // An internal proposal (the lease reaper's): nobody waits for it.
        } else if accepted {
            let (id, incarnation) = (node.id, node.incarnation);
            self.workload.proposed(request, id, incarnation);
        } else {
            self.workload.refused();
        }
        self.drive(i)?;
        self.observe(i)?;
        Ok(accepted)
    }

    // ---- node lifecycle ---------------------------------------------------------------------

    /// Starts (or restarts) node `i` the way `server::run` does: open the store, load the
    /// durable log, and tell Raft what the store already applied (`Config::applied`).
    fn start(&mut self, i: usize) -> Check {
        let raft_seed = self.raft_seeds.next_u64();
        let now_ms = self.now_ms();
        let node = &mut self.nodes[i];
        let kv = Kv::open(node.backend.reopen()).map_err(|e| storage_violation(node.id, &e))?;
        if node.incarnation > 0 {
            // As `server::run`: an install whose Raft write a crash lost is finished first.
            let repaired = node
                .disk
                .finish_install(kv.applied_index())
                .map_err(|e| Violation {
                    invariant: "restart",
                    detail: format!("n{} cannot finish its snapshot install: {e}", node.id),
                })?;
            if let Some((hard_state, snapshot)) = repaired {
                let id = node.id;
                self.snapshot_stats.finished_at_restart += 1;
                self.trace.line(format_args!(
                    "t={} n{id} finish install: commit={} log replaced={}",
                    self.now,
                    hard_state.commit,
                    snapshot.is_some()
                ));
                self.invariants.on_persisted(&Persisted {
                    node: id,
                    hard_state: Some(hard_state),
                    snapshot: snapshot.as_ref(),
                    entries: &[],
                })?;
            }
            self.check_durable(i)?;
        }
        let node = &mut self.nodes[i];
        let config = Config {
            id: node.id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            max_size_per_msg: MAX_SIZE_PER_MSG_BYTES,
            max_inflight_msgs: MAX_INFLIGHT_MSGS,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            applied: kv.applied_index(),
        };
        let restarted = Restarted {
            node: node.id,
            durable: node.disk.durable().hard_state(),
            kv_applied_index: kv.applied_index(),
            kv_synced_applied_index: node.synced_applied_index,
            kv_revision: kv.current_revision(),
        };
        self.trace.line(format_args!(
            "t={} n{} start #{} durable={:?} kv_applied={}",
            self.now,
            node.id,
            node.incarnation + 1,
            restarted.durable,
            restarted.kv_applied_index
        ));
        // Before the core: a store ahead of its durable log is the finding, not the core's
        // refusal to start from it.
        if node.incarnation > 0 {
            self.invariants.on_restart(&restarted)?;
        }
        let node = &mut self.nodes[i];
        let rng = Box::new(ChaCha8Rng::seed_from_u64(raft_seed));
        let mut driver =
            NodeDriver::new(&config, node.disk.durable().clone(), rng).map_err(|e| Violation {
                invariant: "restart",
                detail: format!(
                    "n{} cannot restart from its durable state (store applied {}): {e}",
                    node.id,
                    kv.applied_index()
                ),
            })?;
        driver.set_snapshot_catchup_entries(self.snapshot_catchup_entries);
        node.point = None;
        node.last_point_index = kv.applied_index();
        node.installed_through = 0;
        node.watch = Some(watches::NodeWatch::new(kv.current_revision()));
        node.lease = Some(leases::NodeLease::new(kv.leases().list(), now_ms));
        node.store = Some(Store { kv });
        node.driver = Some(driver);
        node.incarnation += 1;
        node.role = Role::Follower;
        self.drive(i)?;
        self.observe(i)
    }

    /// Kills node `i`: its memory (snapshot point included), its waiters, its unsynced write
    /// and compactions are gone.
    fn crash(&mut self, i: usize) -> Check {
        let node = &mut self.nodes[i];
        node.driver = None;
        node.disk.crash();
        if self.options.sabotage == Some(Sabotage::LyingFsync) {
            node.disk.lose_last_entry();
        }
        // The OS may have written out some of the unsynced store batches: a random prefix of
        // them survives.
        node.synced_applied_index = match node.backend.durable_state() {
            Ok(state) => state.map_or(0, |s| s.applied_index),
            Err(e) => panic!("n{}: the store's durable state is unreadable: {e}", node.id),
        };
        let unsynced = node.backend.unsynced_batches();
        let keep = self.plan.rng.random_range(0..=unsynced);
        let lost = node.backend.crash_keeping(keep);
        node.store = None;
        node.lease = None;
        node.point = None;
        self.plan.crashes += 1;
        self.workload.forget_reads(node.id);
        let kept = node
            .backend
            .durable_state()
            .map_err(|e| storage_violation(node.id, &e))?;
        let durable = DurableNode {
            node: node.id,
            compacted_through: node.disk.durable().first_index().expect("never fails") - 1,
            store_durable_applied_index: kept.as_ref().map_or(0, |s| s.applied_index),
        };
        let revision = kept.map_or(1, |s| s.current_revision);
        self.trace.line(format_args!(
            "t={} n{} crash (store batches lost: {lost})",
            self.now, node.id
        ));
        self.watch_crash(i);
        self.invariants.on_crash(durable.node, &durable, revision)
    }

    // ---- snapshots --------------------------------------------------------------------------

    /// After a store batch: a snapshot point if `snapshot_count` entries were applied since
    /// the last one (the `StoreActor`'s `maybe_take_point`): the image is a copy of the store
    /// right after the batch, so it holds exactly the entries through the applied index.
    fn maybe_take_point(&mut self, i: usize) -> Check {
        let every = self.snapshot_count;
        let node = &self.nodes[i];
        let Some(store) = node.store.as_ref() else {
            return Ok(());
        };
        let applied = store.kv.applied_index();
        if every == 0 || applied < node.last_point_index + every {
            return Ok(());
        }
        self.take_point(i)
    }

    /// Takes a snapshot point of node `i`'s store at its applied index now and tells its
    /// driver: after every `snapshot_count` entries, and when a send finds no image of the
    /// point the core offers (see `send_snapshot`).
    fn take_point(&mut self, i: usize) -> Check {
        let node = &mut self.nodes[i];
        let (Some(store), Some(driver)) = (node.store.as_ref(), node.driver.as_mut()) else {
            return Ok(());
        };
        let applied = store.kv.applied_index();
        if applied == 0 {
            return Ok(());
        }
        let image = node
            .backend
            .image()
            .map_err(|e| storage_violation(node.id, &e))?;
        self.trace.line(format_args!(
            "t={} n{} snapshot point {applied} ({} records)",
            self.now,
            node.id,
            image.records()
        ));
        node.point = Some(StorePoint {
            index: applied,
            image: Arc::new(image),
        });
        node.last_point_index = applied;
        self.snapshot_stats.points += 1;
        driver.snapshot_point(applied);
        Ok(())
    }

    /// `Effect::CompactLog`: the disk queues the compaction behind the writes begun so far.
    /// `Sabotage::CompactBeforeStoreSync` makes it durable at once instead.
    fn compact_log(
        &mut self,
        i: usize,
        through: u64,
        through_term: u64,
        snapshot: SnapshotMeta,
    ) -> Check {
        let node = &mut self.nodes[i];
        self.trace.line(format_args!(
            "t={} n{} compact log through {through} (point {}/{})",
            self.now, node.id, snapshot.term, snapshot.index
        ));
        node.disk.compact(through, through_term, snapshot);
        if self.options.sabotage == Some(Sabotage::CompactBeforeStoreSync) {
            node.disk
                .sync_compactions()
                .map_err(|e| storage_violation(node.id, &e))?;
            self.check_durable(i)?;
        }
        Ok(())
    }

    /// Checks node `i`'s durable log against its durable store (compaction safety).
    fn check_durable(&mut self, i: usize) -> Check {
        let node = &self.nodes[i];
        let store = node
            .backend
            .durable_state()
            .map_err(|e| storage_violation(node.id, &e))?;
        self.invariants.on_durable(&DurableNode {
            node: node.id,
            compacted_through: node.disk.durable().first_index().expect("never fails") - 1,
            store_durable_applied_index: store.map_or(0, |s| s.applied_index),
        })
    }

    /// The transport takes an InstallSnapshot message from the sender's driver: with the
    /// image of the sender's latest point if that is the message's point (the `PeerLink`'s
    /// `ExportImage`), else the send fails at once.
    fn send_snapshot(&mut self, msg: Message, index: u64) -> Check {
        let (from, to) = (msg.from, msg.to);
        let node = &self.nodes[index_of(from)];
        let incarnation = node.incarnation;
        let image = node
            .point
            .as_ref()
            .filter(|p| p.index == index)
            .map(|p| p.image.clone());
        let Some(image) = image else {
            self.trace.line(format_args!(
                "t={} n{from} snapshot {index} for n{to}: no image (latest point {:?})",
                self.now,
                node.point.as_ref().map(|p| p.index)
            ));
            if self.options.sabotage != Some(Sabotage::NoPointRefresh) {
                // A point now, at the store's applied index: the core offers it next time.
                self.take_point(index_of(from))?;
            }
            let report = Event::SnapshotReport {
                from,
                incarnation,
                to,
                failed: true,
            };
            self.queue.push(self.now, report);
            return Ok(());
        };
        self.snapshot_stats.sent += 1;
        self.trace.line(format_args!(
            "t={} n{from} send snapshot {}/{index} to n{to} ({} records)",
            self.now,
            msg.term,
            image.records()
        ));
        // One stream: it arrives once or not at all (no duplicates).
        let arrival = self.network.send(self.now, &msg).first().copied();
        match arrival {
            Some(at) => self.queue.push(
                at,
                Event::DeliverSnapshot {
                    msg,
                    image,
                    incarnation,
                },
            ),
            None => self.queue.push(
                self.now + SNAPSHOT_TIMEOUT_TICKS,
                Event::SnapshotReport {
                    from,
                    incarnation,
                    to,
                    failed: true,
                },
            ),
        }
        Ok(())
    }

    /// An image reaches its receiver (the peer server's `install_snapshot`): install it, then
    /// step the message, then the sender hears of the success. A cut link or a receiver that
    /// is down fails the transfer.
    fn deliver_snapshot(&mut self, msg: Message, image: &Arc<MemImage>, incarnation: u64) -> Check {
        let (from, to) = (msg.from, msg.to);
        let MessageBody::InstallSnapshot { snapshot: meta } = &msg.body else {
            unreachable!("only InstallSnapshot messages travel with an image");
        };
        let meta = meta.clone();
        let i = index_of(to);
        let fate = self.delivery_fate(from, to);
        self.trace.line(format_args!(
            "t={} deliver {from}->{to} InstallSnapshot term={} index={} {fate}",
            self.now, msg.term, meta.index
        ));
        if fate != "ok" {
            return self.snapshot_report(from, incarnation, to, true);
        }
        self.install_image(i, &meta, image)?;
        let driver = self.nodes[i].driver.as_mut().expect("checked running");
        if let Err(e) = driver.step(msg) {
            self.trace
                .line(format_args!("t={} step refused: {e}", self.now));
        }
        self.drive(i)?;
        self.observe(i)?;
        self.snapshot_report(from, incarnation, to, false)
    }

    /// Replaces node `i`'s store by `image` of point `meta`, synced, unless the store already
    /// applied that far (the `StoreActor`'s `InstallImage`); then the watch hub and the lease
    /// clock follow the new store, and waiting reads are served.
    fn install_image(&mut self, i: usize, meta: &SnapshotMeta, image: &Arc<MemImage>) -> Check {
        let node = &mut self.nodes[i];
        let id = node.id;
        let kv = &node.store.as_ref().expect("a running node has a store").kv;
        let (applied_index_before, revision_before) = (kv.applied_index(), kv.current_revision());
        if meta.index <= applied_index_before {
            self.snapshot_stats.unneeded += 1;
            self.trace.line(format_args!(
                "t={} n{id} image {} left alone: store applied {applied_index_before}",
                self.now, meta.index
            ));
            return Ok(());
        }
        let old_leases = kv.leases().list();
        node.backend
            .install_image(image)
            .map_err(|e| storage_violation(id, &e))?;
        node.disk.record_image(meta.clone());
        let kv = Kv::open(node.backend.reopen()).map_err(|e| storage_violation(id, &e))?;
        let key_space = leases::live_keys(&kv).map_err(|e| storage_violation(id, &e))?;
        let new_leases = kv.leases().list();
        let (applied_index_after, revision_after) = (kv.applied_index(), kv.current_revision());
        node.store = Some(Store { kv });
        node.installed_through = node.installed_through.max(meta.index);
        node.point = Some(StorePoint {
            index: meta.index,
            image: image.clone(),
        });
        node.last_point_index = meta.index;
        if let Some(driver) = node.driver.as_mut() {
            driver.applied(applied_index_after);
        }
        self.snapshot_stats.installed += 1;
        self.trace.line(format_args!(
            "t={} n{id} install image {}/{}: applied {applied_index_before} -> \
             {applied_index_after}, rev {revision_before} -> {revision_after}",
            self.now, meta.term, meta.index
        ));
        self.invariants.on_installed(&Installed {
            node: id,
            meta,
            applied_index_before,
            revision_before,
            applied_index_after,
            revision_after,
            key_space: &key_space,
            leases: &new_leases,
        })?;
        self.check_durable(i)?;
        self.lease_restored(i, &old_leases, &new_leases);
        self.watch_restored(i, revision_after)?;
        self.serve_reads(i)
    }

    /// The transport's report reaches the sender's driver, unless the sender restarted since
    /// (its link died with it).
    fn snapshot_report(
        &mut self,
        from: NodeId,
        incarnation: u64,
        to: NodeId,
        failed: bool,
    ) -> Check {
        if failed {
            self.snapshot_stats.failed += 1;
        }
        let i = index_of(from);
        let node = &mut self.nodes[i];
        if node.incarnation != incarnation {
            return Ok(());
        }
        let Some(driver) = node.driver.as_mut() else {
            return Ok(());
        };
        driver.snapshot_sent(to, failed);
        self.trace.line(format_args!(
            "t={} n{from} snapshot to n{to} reported {}",
            self.now,
            if failed { "failed" } else { "sent" }
        ));
        self.drive(i)?;
        self.observe(i)
    }

    // ---- events -----------------------------------------------------------------------------

    fn handle(&mut self, event: Event) -> Check {
        match event {
            Event::Deliver(msg) => self.deliver(msg),
            Event::DeliverSnapshot {
                msg,
                image,
                incarnation,
            } => self.deliver_snapshot(msg, &image, incarnation),
            Event::SnapshotReport {
                from,
                incarnation,
                to,
                failed,
            } => self.snapshot_report(from, incarnation, to, failed),
            Event::PersistDone { node, write_id } => self.persist_done(node, write_id),
            Event::Restart(node) => {
                let i = index_of(node);
                if self.nodes[i].running() {
                    return Ok(());
                }
                self.start(i)
            }
            Event::Heal => {
                self.network.heal();
                self.plan.partition_active = false;
                self.trace.line(format_args!("t={} heal", self.now));
                Ok(())
            }
            Event::History {
                node,
                incarnation,
                target,
                history,
                read,
            } => self.watch_late_history(node, incarnation, target, history, read),
        }
    }

    /// What becomes of a message from `from` to `to` arriving now: "cut" (no link), "down"
    /// (the receiver is not running) or "ok".
    fn delivery_fate(&self, from: NodeId, to: NodeId) -> &'static str {
        if !self.network.link_up(from, to) {
            "cut"
        } else if !self.nodes[index_of(to)].running() {
            "down"
        } else {
            "ok"
        }
    }

    fn deliver(&mut self, msg: Message) -> Check {
        let i = index_of(msg.to);
        let fate = self.delivery_fate(msg.from, msg.to);
        self.trace.line(format_args!(
            "t={} deliver {}->{} {} term={} {}{}",
            self.now,
            msg.from,
            msg.to,
            msg.body.name(),
            msg.term,
            fate,
            append_summary(&msg.body)
        ));
        if self.trace.verbose() {
            println!("    {msg}");
        }
        if fate != "ok" {
            return Ok(());
        }
        let driver = self.nodes[i].driver.as_mut().expect("checked running");
        if let Err(e) = driver.step(msg) {
            // As the RaftActor: a message the core refuses (e.g. a forwarded proposal with
            // no leader) is dropped.
            self.trace
                .line(format_args!("t={} step refused: {e}", self.now));
        }
        self.drive(i)?;
        self.observe(i)
    }

    /// Carries out node `i`'s driver effects until it has none (`RaftActor::drive` does the
    /// same against the actors): messages to the network, writes to the disk, committed
    /// entries to the store, read answers to the workload.
    fn drive(&mut self, i: usize) -> Check {
        loop {
            let Some(driver) = self.nodes[i].driver.as_mut() else {
                return Ok(());
            };
            let effects = driver.effects();
            if effects.is_empty() {
                return Ok(());
            }
            for effect in effects {
                if !self.nodes[i].running() {
                    return Ok(());
                }
                self.carry_out(i, effect)?;
            }
        }
    }

    fn carry_out(&mut self, i: usize, effect: Effect) -> Check {
        let (id, incarnation) = (self.nodes[i].id, self.nodes[i].incarnation);
        match effect {
            Effect::Send(messages) => {
                for m in messages {
                    self.send(m)?;
                }
            }
            Effect::Persist(write) => self.persist(i, write)?,
            Effect::Apply(entries) => {
                // One store batch per Apply, as the StoreActor does.
                if let Some(store) = self.nodes[i].store.as_mut() {
                    store.kv.defer_commits();
                }
                for entry in &entries {
                    self.apply(i, entry)?;
                }
                let node = &mut self.nodes[i];
                if let Some(store) = node.store.as_mut() {
                    store
                        .kv
                        .flush()
                        .map_err(|e| storage_violation(node.id, &e))?;
                }
                let node = &mut self.nodes[i];
                if let (Some(driver), Some(store)) = (node.driver.as_mut(), node.store.as_ref()) {
                    driver.applied(store.kv.applied_index());
                }
                self.maybe_take_point(i)?;
                self.serve_reads(i)?;
            }
            Effect::ReadReady { id: read_id, index } => {
                if self
                    .workload
                    .read_index_confirmed(read_id, id, incarnation, index)
                {
                    self.trace.line(format_args!(
                        "t={} n{id} read id={read_id} index={index}",
                        self.now
                    ));
                }
                self.serve_reads(i)?;
            }
            Effect::ReadFailed { id: read_id, error } => {
                self.workload.read_refused(read_id);
                self.trace.line(format_args!(
                    "t={} n{id} read id={read_id} failed: {error}",
                    self.now
                ));
            }
            Effect::StatusChanged(_) => {} // `observe` follows the role after each event
            Effect::ConfChangeApplied { index, conf_state } => {
                self.trace.line(format_args!(
                    "t={} n{id} conf change at {index}: {conf_state:?}",
                    self.now
                ));
            }
            Effect::CompactLog {
                through,
                through_term,
                snapshot,
            } => self.compact_log(i, through, through_term, snapshot)?,
        }
        Ok(())
    }

    /// Puts a driver's write on node `i`'s disk; its fsync completes after 0..=k ticks.
    /// `Sabotage::SendBeforePersist` is a filter on this effect: it tells the driver the write
    /// is durable at once, so vote grants and append acks leave before the fsync.
    fn persist(&mut self, i: usize, write: Write) -> Check {
        let sabotage = self.options.sabotage == Some(Sabotage::SendBeforePersist);
        let node = &mut self.nodes[i];
        let early = sabotage.then(|| write.clone());
        let write_id = node
            .disk
            .begin(write.hard_state, write.snapshot, write.entries, write.sync);
        let delay = self.plan.rng.random_range(0..=self.plan.fsync_ticks_max);
        let id = node.id;
        self.queue
            .push(self.now + delay, Event::PersistDone { node: id, write_id });
        if let Some(write) = early {
            self.driver_persisted(i, write)?;
        }
        Ok(())
    }

    /// Reports a durable write to node `i`'s driver; a refusal is a driver or simulator bug.
    fn driver_persisted(&mut self, i: usize, write: Write) -> Check {
        let node = &mut self.nodes[i];
        let id = node.id;
        let driver = node
            .driver
            .as_mut()
            .expect("a node with a write in flight runs");
        driver.persisted(write).map_err(|e| Violation {
            invariant: "node driver",
            detail: format!("n{id}: {e}"),
        })
    }

    /// The fsync of a node's write completed (if the node did not crash meanwhile).
    fn persist_done(&mut self, id: NodeId, write_id: u64) -> Check {
        let i = index_of(id);
        let node = &mut self.nodes[i];
        let writes = match node.disk.complete(write_id) {
            Ok(writes) if writes.is_empty() => return Ok(()), // lost in a crash
            Ok(writes) => writes,
            Err(e) => {
                return violated(
                    "log matching (Raft §5.3)",
                    format!("n{id}'s Ready entries do not fit its durable log: {e}"),
                );
            }
        };
        let early = self.options.sabotage == Some(Sabotage::SendBeforePersist);
        if writes.len() > 1 && !early {
            return violated(
                "node driver",
                format!("n{id} had {} writes in flight at once", writes.len()),
            );
        }
        if writes.iter().any(|w| w.sync) {
            // One journal: the log's fsync also makes the store's earlier batches durable,
            // with the compactions it covers (which `Disk::complete` applied).
            self.nodes[i].backend.sync_all();
        }
        for write in writes {
            self.trace.line(format_args!(
                "t={} n{id} fsync hs={:?} entries={}{}",
                self.now,
                write.hard_state,
                write.entries.len(),
                write.snapshot.as_ref().map_or(String::new(), |s| format!(
                    " snapshot={}/{}",
                    s.term, s.index
                ))
            ));
            self.invariants.on_persisted(&Persisted {
                node: id,
                hard_state: write.hard_state,
                snapshot: write.snapshot.as_ref(),
                entries: &write.entries,
            })?;
            if !early {
                let write = Write {
                    hard_state: write.hard_state,
                    snapshot: write.snapshot,
                    entries: write.entries,
                    sync: write.sync,
                };
                self.driver_persisted(i, write)?;
            }
        }
        self.check_durable(i)?;
        self.drive(i)?;
        self.observe(i)
    }

    fn send(&mut self, msg: Message) -> Check {
        if let MessageBody::InstallSnapshot { snapshot } = &msg.body {
            let index = snapshot.index;
            return self.send_snapshot(msg.clone(), index);
        }
        for at in self.network.send(self.now, &msg) {
            self.queue.push(at, Event::Deliver(msg.clone()));
        }
        Ok(())
    }

    /// Applies one committed entry with the server's own applier (`mvcc::applier`, as the
    /// `StoreActor` does), then routes what it reports: lease clock, watch hub, client ack.
    fn apply(&mut self, i: usize, entry: &Entry) -> Check {
        let node = &mut self.nodes[i];
        let id = node.id;
        let kv = &mut node.store.as_mut().expect("a running node has a store").kv;
        let revision_before = kv.current_revision();
        let applied_before = kv.applied_index();
        let applied = match apply_entry(kv, entry) {
            Ok(Some(applied)) => applied,
            Ok(None) if entry.index <= node.installed_through => {
                // Covered by the image this store installed (the core had not applied that
                // far): the applier skips it, as the StoreActor's does.
                self.trace.line(format_args!(
                    "t={} n{id} skip {}/{} (under the installed image)",
                    self.now, entry.term, entry.index
                ));
                return self.invariants.on_replayed(id, entry);
            }
            Ok(None) => {
                return violated(
                    "state machine safety (Raft §5.4.3)",
                    format!(
                        "n{id} was handed entry {} again (store applied {applied_before})",
                        entry.index
                    ),
                );
            }
            Err(e) => return Err(storage_violation(id, &e)),
        };
        let StoreApplied {
            request_id,
            result,
            events,
            revision: revision_after,
            lease,
            member,
            skipped,
            ..
        } = applied;
        match skipped {
            Some(Skipped::Undecodable { reason }) => {
                return violated(
                    "state machine safety (Raft §5.4.3)",
                    format!(
                        "n{id}: committed entry {} does not decode: {reason}",
                        entry.index
                    ),
                );
            }
            Some(Skipped::UnknownRequest) => {
                return violated(
                    "workload",
                    format!("n{id}: unexpected request at index {}", entry.index),
                );
            }
            Some(Skipped::ConfChange | Skipped::NoOp) | None => {}
        }
        if member.is_some() {
            return violated(
                "workload",
                format!(
                    "n{id}: unexpected member attributes at index {}",
                    entry.index
                ),
            );
        }
        let applied_index_after = kv.applied_index();
        let incarnation = node.incarnation;
        self.invariants.on_applied(&Applied {
            node: id,
            entry,
            revision_before,
            revision_after,
            applied_index_after,
        })?;
        self.trace.line(format_args!(
            "t={} n{id} apply {}/{} rev={revision_after}",
            self.now, entry.term, entry.index
        ));
        if let Some(change) = lease {
            self.lease_applied(i, entry.index, change)?;
        }
        // As the StoreActor: the events go to the watch hub before the proposer's answer.
        if !events.is_empty() {
            self.watch_applied(i, revision_after, events)?;
        }
        if request_id == 0 || skipped.is_some() {
            return Ok(());
        }
        let result = match result {
            Ok(Some(outcome)) => Ok(response_revision(&outcome.response)),
            Ok(None) => {
                return violated("workload", format!("n{id}: no answer at {}", entry.index));
            }
            Err(e) => Err(e.to_string()),
        };
        if let Some(ack) = self
            .workload
            .applied(request_id, id, incarnation, entry.index, result)
        {
            let result = &ack.result;
            self.trace.line(format_args!(
                "t={} n{id} ack id={request_id} {result:?}",
                self.now
            ));
        }
        Ok(())
    }

    /// Reports node `i`'s state to the invariants.
    fn observe(&mut self, i: usize) -> Check {
        let node = &mut self.nodes[i];
        let Some(driver) = node.driver.as_ref() else {
            return Ok(());
        };
        let st = driver.raw().status();
        let state = NodeState {
            node: node.id,
            incarnation: node.incarnation,
            hard_state: st.hard_state,
            role: st.soft_state.role,
            applied: st.applied,
            last_index: st.last_index,
            settled: driver.is_settled(),
        };
        if state.role != node.role {
            node.role = state.role;
            self.trace.line(format_args!(
                "t={} n{} becomes {:?} term={}",
                self.now, state.node, state.role, state.hard_state.term
            ));
        }
        self.lease_role(i, state.role, state.hard_state.term);
        self.invariants.on_state(&state)
    }
}

fn index_of(id: NodeId) -> usize {
    (id - 1) as usize
}

fn storage_violation(node: NodeId, e: &dyn std::fmt::Display) -> Violation {
    Violation {
        invariant: "storage",
        detail: format!("n{node}: {e}"),
    }
}

/// The revision in a response header.
fn response_revision(response: &Response) -> i64 {
    let header = match response {
        Response::Range(r) => &r.header,
        Response::Put(r) => &r.header,
        Response::DeleteRange(r) => &r.header,
        Response::Txn(r) => &r.header,
        Response::Compaction(r) => &r.header,
        Response::LeaseGrant(r) => &r.header,
        Response::LeaseRevoke(r) => &r.header,
        Response::Alarm(r) => &r.header,
    };
    header.as_ref().map_or(0, |h| h.revision)
}

/// ` entries=a..b` for AppendEntries, so the compact trace still shows replication.
fn append_summary(body: &MessageBody) -> String {
    match body {
        MessageBody::AppendEntries {
            entries,
            commit,
            prev_log_index,
            ..
        } => format!(" prev={prev_log_index} n={} commit={commit}", entries.len()),
        MessageBody::AppendEntriesResponse { reject, index, .. } => {
            format!(" index={index}{}", if *reject { " reject" } else { "" })
        }
        _ => String::new(),
    }
}
