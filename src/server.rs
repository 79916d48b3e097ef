//! Starting a member: open the data dir, check its identity, restore Raft and the store,
//! start the actors on an actix `System` thread, then serve gRPC on a tokio runtime.
//!
//! ```text
//!  actix System thread                          main thread (tokio, multi-threaded)
//!  ├─ RaftActor  (system arbiter)  ◄─ Step ──── PeerService  (--listen-peer-urls)
//!  ├─ PeerLink × (members − 1)     ── stream ─► peers
//!  ├─ StoreActor (own arbiter)     ◄─ Register/LocalRange ── KV, Maintenance, Cluster
//!  ├─ WatchHub   (own arbiter)     ◄─ Applied (StoreActor), streams ── Watch
//!  └─ LogActor   (SyncArbiter, 1 thread: fsync)             (--listen-client-urls)
//! ```
//! BUILD-NOTES: actors must start inside a running `System`; a blocking fsync gets its own
//! thread; tonic handlers reach actors through `Addr::send`, whose future is `Send`.

use crate::api::{self, Api, ApiConfig, ApiLinks};
use crate::bus::AdvanceTicks;
use crate::cluster::Members;
use crate::config::{ClusterState, ServerConfig};
use crate::lease::actor::LeaseReaper;
use crate::log::actor::LogActor;
use crate::log::{Identity, LogStore};
use crate::mvcc::Kv;
use crate::mvcc::actor::{StoreActor, StoreLinks, StoreProgress};
use crate::node::RaftStatus;
use crate::pb::etcdserverpb as pb;
use crate::pb::peerpb::{MemberAttributes, internal_request};
use crate::peer::actor::{ActivePeers, PeerLink, SnapshotLinks};
use crate::peer::server::PeerService;
use crate::raft::actor::{RaftActor, RaftLinks, StoreInbox};
use crate::raft::{ConfState, Config as RaftConfig, NodeId};
use crate::watch::actor::{STREAM_QUEUE_MAX, WatchHub};
use actix::prelude::*;
use anyhow::{Context as _, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// gRPC framing headroom above `--max-request-bytes` (etcd adds 512 KiB the same way), so an
/// oversized request reaches our check and gets etcd's "request is too large" text.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
/// Largest Raft AppendEntries payload, bytes.
const MAX_SIZE_PER_MSG_BYTES: u64 = 1024 * 1024;
/// Unacknowledged AppendEntries per follower in Replicate state.
const MAX_INFLIGHT_MSGS: usize = 256;

/// Member identity derived from the flags.
struct Membership {
    member_id: u64,
    cluster_id: u64,
    /// member id → peer URLs, for every initial member.
    peers: BTreeMap<u64, Vec<String>>,
}

fn membership(cfg: &ServerConfig) -> Membership {
    let peers = cfg
        .initial_cluster
        .values()
        .map(|urls| {
            let id = crate::config::member_id(urls, &cfg.initial_cluster_token);
            (
                id,
                urls.iter().map(crate::config::etcd_url_string).collect(),
            )
        })
        .collect();
    Membership {
        member_id: cfg.local_member_id(),
        cluster_id: cfg.initial_cluster_id(),
        peers,
    }
}

/// `--initial-cluster-state existing`: asks the other members of `--initial-cluster` (over
/// their peer URLs, `RaftPeer/Members`) for the cluster id and member table, and finds this
/// member in it by its `--initial-advertise-peer-urls` (the member `etcdctl member add`
/// created). Returns (cluster id, member id, members).
///
/// Errors: no peer answered ("could not retrieve cluster information from the given URLs",
/// etcd's words); no member has these peer URLs (add it first).
fn join_existing(cfg: &ServerConfig) -> anyhow::Result<(u64, u64, Vec<crate::cluster::Member>)> {
    let own: BTreeSet<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(crate::config::etcd_url_string)
        .collect();
    let targets: Vec<String> = cfg
        .initial_cluster
        .values()
        .flatten()
        .map(crate::config::etcd_url_string)
        .filter(|u| !own.contains(u))
        .collect();
    let dial = crate::peer::actor::dial_timeout(cfg.election_timeout_ms);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut errors = Vec::new();
    for url in &targets {
        let answer = runtime.block_on(async {
            let mut client = crate::peer::actor::connect(url, dial).await?;
            tokio::time::timeout(dial, client.members(crate::pb::peerpb::MembersRequest {}))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|s| s.message().to_string())
        });
        let response = match answer {
            Ok(r) => r.into_inner(),
            Err(e) => {
                errors.push(format!("{url}: {e}"));
                continue;
            }
        };
        let members: Vec<crate::cluster::Member> = response
            .members
            .into_iter()
            .map(|m| crate::cluster::Member {
                id: m.id,
                name: m.name,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
            })
            .collect();
        let me = members
            .iter()
            .find(|m| m.peer_urls.iter().cloned().collect::<BTreeSet<_>>() == own)
            .with_context(|| {
                format!(
                    "no member of the cluster at {url} has the peer URLs {own:?}: add this member \
                     first (etcdctl member add {} --peer-urls=...)",
                    cfg.name
                )
            })?;
        return Ok((response.cluster_id, me.id, members));
    }
    bail!(
        "could not retrieve cluster information from the given URLs ({})",
        errors.join("; ")
    )
}

/// Runs a member until SIGINT/SIGTERM. Errors: a data dir of another cluster or member, a
/// corrupt log, unusable URLs, ports in use.
pub fn run(cfg: ServerConfig) -> anyhow::Result<()> {
    let mut ids = membership(&cfg);
    // Members learned from the cluster when joining it: written to the table below.
    let mut joined_members: Vec<crate::cluster::Member> = Vec::new();
    let db = crate::storage::open(&cfg.data_dir)
        .with_context(|| format!("opening data dir {}", cfg.data_dir.display()))?;
    let mut log_store = LogStore::open(&db)?;
    let mut loaded = log_store.load().context("loading the raft log")?;
    let kv = Kv::open(crate::mvcc::FjallBackend::open(&db).context("opening the MVCC keyspaces")?)
        .context("opening the MVCC store")?;
    // A crash between installing a leader's store image and recording its snapshot in the
    // log leaves the store ahead of the log: finish the install now (docs/snapshots.md §2).
    if let Some(image) = loaded.image.clone()
        && image.index == kv.applied_index()
        && image.index > loaded.hard_state.commit
    {
        tracing::warn!(
            index = image.index,
            "the last snapshot install did not reach the raft log; finishing it"
        );
        loaded = log_store
            .finish_install(loaded, &image)
            .context("finishing a snapshot install")?;
    }
    let conf_state = match &loaded.identity {
        // A member that joined a running cluster: its ids came from that cluster, not from
        // the flags (etcd ignores the initial flags once the data dir exists).
        Some(found) if cfg.initial_cluster_state == ClusterState::Existing => {
            ids.member_id = found.member_id;
            ids.cluster_id = found.cluster_id;
            ids.peers = BTreeMap::new();
            loaded
                .conf_state
                .clone()
                .context("data dir has an identity but no configuration: corrupt")?
        }
        Some(found) if found.cluster_id != ids.cluster_id || found.member_id != ids.member_id => {
            bail!(
                "data dir {} belongs to cluster {:x} member {:x} ({}), but the flags describe \
                 cluster {:x} member {:x} ({}); use the flags it was created with or another --data-dir",
                cfg.data_dir.display(),
                found.cluster_id,
                found.member_id,
                found.name,
                ids.cluster_id,
                ids.member_id,
                cfg.name
            );
        }
        Some(_) => loaded
            .conf_state
            .clone()
            .context("data dir has an identity but no configuration: corrupt")?,
        None => {
            if !loaded.entries.is_empty() {
                bail!(
                    "data dir {} has a raft log but no identity: corrupt",
                    cfg.data_dir.display()
                );
            }
            let conf_state = if cfg.initial_cluster_state == ClusterState::Existing {
                let (cluster_id, member_id, members) = join_existing(&cfg)?;
                tracing::info!(
                    cluster_id = format_args!("{cluster_id:x}"),
                    member_id = format_args!("{member_id:x}"),
                    members = members.len(),
                    "joining an existing cluster"
                );
                ids.member_id = member_id;
                ids.cluster_id = cluster_id;
                ids.peers = BTreeMap::new();
                let conf = ConfState {
                    voters: members
                        .iter()
                        .filter(|m| !m.is_learner)
                        .map(|m| m.id)
                        .collect(),
                    learners: members
                        .iter()
                        .filter(|m| m.is_learner)
                        .map(|m| m.id)
                        .collect(),
                    ..Default::default()
                };
                joined_members = members;
                conf
            } else {
                ConfState {
                    voters: ids.peers.keys().copied().collect::<BTreeSet<NodeId>>(),
                    ..Default::default()
                }
            };
            log_store.save_conf_state(&conf_state)?;
            log_store.save_identity(&Identity {
                cluster_id: ids.cluster_id,
                member_id: ids.member_id,
                name: cfg.name.clone(),
            })?;
            conf_state
        }
    };
    tracing::info!(
        name = %cfg.name,
        member_id = format_args!("{:x}", ids.member_id),
        cluster_id = format_args!("{:x}", ids.cluster_id),
        entries = loaded.entries.len(),
        compacted_through = loaded.compacted.0,
        term = loaded.hard_state.term,
        commit = loaded.hard_state.commit,
        "starting member"
    );
    // The configuration at the latest snapshot point (it covers every change compacted away);
    // the driver re-applies the changes after it up to the applied index.
    let conf_state = loaded
        .snapshot
        .as_ref()
        .map_or(conf_state, |point| point.conf_state.clone());
    let storage = loaded
        .to_storage(conf_state)
        .context("restoring the raft log into memory")?;
    let store_revision = kv.current_revision();
    let granted_leases = kv.leases().list();
    let lease_extend = Duration::from_millis(cfg.election_timeout_ms);
    let mut members = Members::open(&db, &ids.peers)?;
    for m in joined_members {
        members.apply(&crate::cluster::MemberChange::Add(m))?;
    }
    let removed_ids = members.removed_view();
    let raft_config = RaftConfig {
        id: ids.member_id,
        election_tick: cfg.election_ticks() as usize,
        heartbeat_tick: cfg.heartbeat_ticks() as usize,
        max_size_per_msg: MAX_SIZE_PER_MSG_BYTES,
        max_inflight_msgs: MAX_INFLIGHT_MSGS,
        pre_vote: cfg.pre_vote,
        check_quorum: true,
        applied: kv.applied_index(),
    };
    let tick_interval = cfg.tick_interval();
    let (status_tx, status_rx) = watch::channel(RaftStatus::default());

    // Actors live on the actix System thread; their addresses come back over a channel.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let peer_urls: BTreeMap<u64, String> = members
        .list()
        .into_iter()
        .filter_map(|m| Some((m.id, m.peer_urls.first()?.clone())))
        .collect();
    // Links to every member of the table (the initial ones and those added at runtime;
    // removed ones are gone from it), at their current peer URLs.
    let peer_links: Vec<(u64, String)> = members
        .list()
        .into_iter()
        .filter(|m| m.id != ids.member_id)
        .filter_map(|m| Some((m.id, m.peer_urls.first()?.clone())))
        .collect();
    let known_urls: BTreeMap<u64, String> = peer_links.iter().cloned().collect();
    let cluster_id = ids.cluster_id;
    let dial_timeout = crate::peer::actor::dial_timeout(cfg.election_timeout_ms);
    let active_peers = ActivePeers::default();
    let tick_advance = TickAdvance {
        members: peer_links.len() + 1,
        election_ticks: cfg.election_ticks() as u32,
        tick: tick_interval,
        enabled: cfg.initial_election_tick_advance,
        active: active_peers.clone(),
    };
    // Election jitter and the first read-round id: distinct per start (a restarted member
    // must not reuse its previous incarnation's read contexts).
    let now_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = ids.member_id ^ (std::process::id() as u64).rotate_left(32) ^ now_nanos;
    let store_db = db.clone();
    let snapshot_count = cfg.snapshot_count;
    let catchup = cfg.snapshot_catchup_entries;
    std::thread::Builder::new()
        .name("actix".into())
        .spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let log = SyncArbiter::start(1, move || LogActor::new(log_store.clone()));
                // Actors get each other's recipients at construction (src/bus.rs). The
                // reaper's mailbox exists before the reaper (`Context::new`), so the store can
                // report applied grants to it before the RaftActor it proposes to exists.
                let reaper_ctx = Context::<LeaseReaper>::new();
                let reaper = reaper_ctx.address();
                // Likewise the RaftActor's: the store reports snapshot points to it and the
                // peer links report image transfers, and both exist before it.
                let raft_ctx = Context::<RaftActor>::new();
                let raft_addr = raft_ctx.address();
                let store_points = raft_addr.clone().recipient();
                // Store and watch hub, each on its own arbiter so fan-out never delays
                // applying. They name each other: the hub is started from inside the store's
                // construction, where the store's address is known, and handed back here.
                let store_arbiter = Arbiter::new();
                let watch_arbiter = Arbiter::new();
                let watch_handle = watch_arbiter.handle();
                let (hub_tx, hub_rx) = std::sync::mpsc::channel();
                let store_leases = reaper.clone().recipient();
                let store = StoreActor::start_in_arbiter(&store_arbiter.handle(), move |ctx| {
                    let history = ctx.address().recipient();
                    let hub = WatchHub::start_in_arbiter(&watch_handle, move |_| {
                        WatchHub::new(history, store_revision, STREAM_QUEUE_MAX)
                    });
                    let links = StoreLinks {
                        events: Some(hub.clone().recipient()),
                        history: Some(hub.clone().recipient()),
                        leases: Some(store_leases),
                        restored: Some(hub.clone().recipient()),
                        points: Some(store_points),
                    };
                    let actor = StoreActor::new(kv, members, links)
                        .with_snapshots(store_db, snapshot_count);
                    let _ = hub_tx.send((hub, actor.progress()));
                    actor
                });
                let (hub, progress) = hub_rx
                    .recv()
                    .expect("the store arbiter builds the store and the hub");
                let make_link = {
                    let store = store.clone();
                    let raft_addr = raft_addr.clone();
                    let active_peers = active_peers.clone();
                    move |id: u64, url: String| {
                        PeerLink::new(id, url, dial_timeout, cluster_id, active_peers.clone())
                            .with_snapshots(SnapshotLinks {
                                store: store.clone().recipient(),
                                raft: raft_addr.clone().recipient(),
                            })
                            .start()
                            .recipient()
                    }
                };
                let peers = peer_links
                    .into_iter()
                    .map(|(id, url)| (id, make_link(id, url)))
                    .collect();
                let links = RaftLinks {
                    log: log.clone().recipient(),
                    compact: log.recipient(),
                    store: StoreInbox {
                        apply: store.clone().recipient(),
                        register: store.clone().recipient(),
                        cancel: store.clone().recipient(),
                    },
                    peers,
                    status_tx: status_tx.clone(),
                };
                let raft = RaftActor::new(&raft_config, storage, seed, tick_interval, links).map(
                    |actor| {
                        raft_ctx.run(
                            actor
                                .with_snapshot_catchup_entries(catchup)
                                .with_link_factory(Box::new(make_link), known_urls),
                        )
                    },
                );
                if let Ok(raft) = &raft {
                    let reaper_actor = LeaseReaper::new(
                        granted_leases,
                        lease_extend,
                        raft.clone().recipient(),
                        status_tx.subscribe(),
                    );
                    reaper_ctx.run(reaper_actor);
                }
                let _ = addr_tx.send(raft.map(|raft| {
                    (
                        raft,
                        ClientActors {
                            store,
                            hub,
                            reaper,
                            progress,
                            status: status_rx,
                            active: active_peers.clone(),
                            removed: removed_ids.clone(),
                        },
                    )
                }));
            });
            system.run()
        })?;
    let (raft, actors) = addr_rx.recv().context("actor system failed to start")??;

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.spawn(tick_advance.run(raft.clone()));
    runtime.block_on(serve(
        cfg,
        ids.member_id,
        cluster_id,
        raft,
        actors,
        db,
        peer_urls,
    ))
}

/// etcd's initial election tick advance (`EtcdServer.adjustTicks`): a booting member need not
/// sit through a whole election timeout before its first campaign. A single-member cluster
/// fast-forwards `election_ticks − 1` ticks at once; a larger one, with
/// `--initial-election-tick-advance` (default true), waits up to 5 s (etcd's
/// `rafthttp.ConnReadTimeout`) for more than one peer connection and then fast-forwards
/// `election_ticks − 2`, leaving two ticks for a leader's heartbeat to arrive. Raft safety does
/// not depend on it: only the first election timeout gets shorter (pre-vote still applies).
struct TickAdvance {
    members: usize,
    election_ticks: u32,
    tick: Duration,
    enabled: bool,
    active: ActivePeers,
}

impl TickAdvance {
    const PEER_WAIT: Duration = Duration::from_secs(5);
    const POLL: Duration = Duration::from_millis(50);

    async fn run(self, raft: Addr<RaftActor>) {
        let forward =
            |ticks: u32| Duration::from_millis(self.tick.as_millis() as u64 * ticks as u64);
        if self.members == 1 {
            let ticks = self.election_ticks.saturating_sub(1);
            tracing::info!(
                forward_ticks = ticks,
                forward_duration = ?forward(ticks),
                election_ticks = self.election_ticks,
                "started as single-node; fast-forwarding election ticks"
            );
            raft.do_send(AdvanceTicks(ticks));
            return;
        }
        if !self.enabled {
            tracing::info!(
                election_ticks = self.election_ticks,
                "skipping initial election tick advance"
            );
            return;
        }
        tracing::info!(
            election_ticks = self.election_ticks,
            "starting initial election tick advance"
        );
        let deadline = tokio::time::Instant::now() + Self::PEER_WAIT;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Self::POLL).await;
            let peers = self.active.count();
            if peers > 1 {
                let ticks = self.election_ticks.saturating_sub(2);
                tracing::info!(
                    forward_ticks = ticks,
                    forward_duration = ?forward(ticks),
                    election_ticks = self.election_ticks,
                    active_remote_members = peers,
                    "initialized peer connections; fast-forwarding election ticks"
                );
                raft.do_send(AdvanceTicks(ticks));
                return;
            }
        }
    }
}

/// The actors client services talk to besides the `RaftActor`.
struct ClientActors {
    store: Addr<StoreActor>,
    hub: Addr<WatchHub>,
    reaper: Addr<LeaseReaper>,
    progress: Arc<StoreProgress>,
    status: watch::Receiver<RaftStatus>,
    active: ActivePeers,
    removed: crate::cluster::RemovedIds,
}

async fn serve(
    cfg: ServerConfig,
    member_id: u64,
    cluster_id: u64,
    raft: Addr<RaftActor>,
    ClientActors {
        store,
        hub,
        reaper,
        progress,
        status,
        active,
        removed,
    }: ClientActors,
    db: fjall::Database,
    peer_urls: BTreeMap<u64, String>,
) -> anyhow::Result<()> {
    let min_lease_ttl = cfg.min_lease_ttl_secs();
    let store_images = store.clone().recipient();
    let store_status = store.clone().recipient();
    let api = Api::new(
        ApiLinks {
            raft: raft.clone(),
            store,
            reaper,
            raft_status: status,
            progress,
        },
        db,
        ApiConfig {
            min_lease_ttl,
            peer_urls,
            member_id,
            cluster_id,
            max_request_bytes: cfg.max_request_bytes,
            max_txn_ops: cfg.max_txn_ops,
            request_timeout: Duration::from_millis(5000 + 2 * cfg.election_timeout_ms),
            quota_backend_bytes: cfg.quota_backend_bytes,
            active_peers: active,
        },
    );
    if let Some(mode) = cfg.auto_compaction {
        tokio::spawn(crate::compactor::run(
            crate::compactor::AutoCompactor::new(mode),
            api.clone(),
        ));
    }
    let max_decode = cfg.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let mut servers = tokio::task::JoinSet::new();
    for addr in cfg.listen_peer_addrs.clone() {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for peers on {addr}"))?;
        let service = crate::pb::peerpb::raft_peer_server::RaftPeerServer::new(
            PeerService::new(
                raft.clone().recipient(),
                cluster_id,
                std::sync::Arc::new(api.clone()),
            )
            .with_images(store_images.clone())
            .with_members(store_status.clone())
            .with_removed(removed.clone()),
        )
        .max_decoding_message_size(usize::MAX);
        servers.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming(listener)),
        );
    }
    // Like etcd, serve clients only once this member's attributes are published through the
    // log: from then on every member lists its name and client URLs.
    publish_attributes(
        &api,
        member_id,
        cfg.name.clone(),
        cfg.advertise_client_urls
            .iter()
            .map(crate::config::etcd_url_string)
            .collect(),
    )
    .await;
    // /metrics, /health (and /debug/pprof/ with --enable-pprof) over HTTP/1.1 on the same
    // listeners as gRPC, like etcd.
    let http = api::http::Http::new(api.clone(), hub.clone(), member_id, cfg.enable_pprof)
        .with_cors(cfg.cors.clone());
    let watch_fragment_limit_bytes = cfg.max_request_bytes + GRPC_OVERHEAD_BYTES;
    for addr in cfg.listen_client_addrs.clone() {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for clients on {addr}"))?;
        let api = api.clone();
        let recipe = api::concurrency::Recipe::new(api.clone(), hub.clone());
        // etcd's default --max-concurrent-streams (math.MaxUint32) means "no limit": leave
        // tonic's default then.
        let max_streams =
            (cfg.max_concurrent_streams != u32::MAX).then_some(cfg.max_concurrent_streams);
        servers.spawn(
            tonic::transport::Server::builder()
                .accept_http1(true)
                .max_concurrent_streams(max_streams)
                .http2_keepalive_interval(cfg.grpc_keepalive_interval)
                .http2_keepalive_timeout(cfg.grpc_keepalive_timeout)
                .add_routes(http.routes())
                .add_service(
                    pb::kv_server::KvServer::new(api::kv::KvService::new(api.clone()))
                        .max_decoding_message_size(max_decode),
                )
                .add_service(pb::maintenance_server::MaintenanceServer::new(
                    api::maintenance::MaintenanceService::new(api.clone()),
                ))
                .add_service(pb::cluster_server::ClusterServer::new(
                    api::cluster::ClusterService::new(api.clone()),
                ))
                .add_service(pb::watch_server::WatchServer::new(
                    api::watch::WatchService::new(
                        api.clone(),
                        hub.clone(),
                        watch_fragment_limit_bytes,
                    ),
                ))
                .add_service(pb::lease_server::LeaseServer::new(
                    api::lease::LeaseService::new(api.clone()),
                ))
                .add_service(pb::auth_server::AuthServer::new(api::Unimplemented))
                .add_service(crate::pb::v3lockpb::lock_server::LockServer::new(
                    api::lock::LockService::new(recipe.clone()),
                ))
                .add_service(
                    crate::pb::v3electionpb::election_server::ElectionServer::new(
                        api::election::ElectionService::new(recipe),
                    ),
                )
                .serve_with_incoming(incoming(listener)),
        );
        tracing::info!(address = %addr, "serving client traffic insecurely; this is strongly discouraged!");
    }
    // --listen-metrics-urls: /metrics and /health only, plain HTTP (etcd's metrics listener).
    for addr in cfg.listen_metrics_addrs.clone() {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        servers.spawn(
            tonic::transport::Server::builder()
                .accept_http1(true)
                .add_routes(http.routes())
                .serve_with_incoming(incoming(listener)),
        );
        tracing::info!(%addr, "serving /metrics and /health");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        Some(result) = servers.join_next() => {
            result??;
            bail!("a gRPC server stopped unexpectedly");
        }
    }
    Ok(())
}

/// Accepted connections of a listener, with `TCP_NODELAY` set on each. Without it Nagle's
/// algorithm holds back a small response while an earlier one is unacknowledged, and the
/// peer's delayed ACK (~40 ms) makes every read on a busy connection wait that long (tonic's
/// `tcp_nodelay` applies only to listeners it binds itself, not to `serve_with_incoming`).
fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Publishes this member's name and client URLs through the log, retrying until applied.
async fn publish_attributes(api: &Api, member_id: u64, name: String, client_urls: Vec<String>) {
    let request = internal_request::Request::MemberAttributes(MemberAttributes {
        member_id,
        name,
        client_urls,
    });
    loop {
        match api.propose(request.clone()).await {
            Ok(_) => {
                // etcd's wording, which operators and scripts grep for.
                tracing::info!("published local member to cluster through raft");
                tracing::info!("ready to serve client requests");
                // systemd's Type=notify (deploy/systemd/ferrokv.service), as etcd's
                // notifySystemd; a no-op without $NOTIFY_SOCKET.
                if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
                    tracing::warn!("failed to notify systemd for readiness: {e}");
                }
                return;
            }
            Err(e) => {
                tracing::debug!("publishing member attributes: {}; retrying", e.message());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
