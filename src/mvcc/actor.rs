//! `StoreActor`: applies committed Raft entries to the MVCC store, in log order, and answers
//! reads.
//!
//! It runs on an arbiter of its own so applying (fjall writes) never stalls the `RaftActor`.
//! The gRPC call that proposed an entry waits on a oneshot waiter registered here under the
//! entry's request id; the member that applies the entry with that id answers it. Reads that
//! need a read index wait here until `applied_index` reaches it (Raft thesis §6.4).

use crate::bus::{
    ApplyCommitted, CancelWait, EventsApplied, FetchHistory, HistoryFetched, LeaseApplied,
    RegisterWait, StorePoint, StoreRestored,
};
use crate::cluster::{Member, Members};
use crate::mvcc::applier::{self, Skipped};
use crate::mvcc::{Kv, MvccError};
use crate::pb::etcdserverpb::{RangeRequest, RangeResponse};
use crate::raft::Entry;
use crate::raft::SnapshotMeta;
use crate::snapshot::image::{self, StoreImage};
use crate::watch::History;
use actix::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio::sync::oneshot;

pub use crate::mvcc::applier::ApplyResult;
type RangeReply = oneshot::Sender<Result<RangeResponse, MvccError>>;

/// A caller waiting for the applied index to reach some index.
enum Parked {
    /// A Range to serve then (a read after ReadIndex).
    Read(RangeRequest, RangeReply),
    /// Just a signal ([`WaitApplied`]).
    Wait(oneshot::Sender<()>),
}

/// Owns the MVCC store and the member table; see the module docs.
pub struct StoreActor {
    kv: Kv,
    members: Members,
    waiters: BTreeMap<u64, oneshot::Sender<ApplyResult>>,
    /// Reads parked until `applied_index` reaches their read index, keyed by that index.
    /// [`LocalRange`] and [`WaitApplied`] callers parked until `applied_index` reaches their
    /// index, keyed by that index.
    parked: BTreeMap<u64, Vec<Parked>>,
    links: StoreLinks,
    /// The store revision and applied index, published after every batch of applied
    /// entries for readers outside the actor (response headers, overload checks).
    progress: Arc<StoreProgress>,
    /// Snapshot points and images; off (no database) in stores built for tests.
    snapshots: Option<Snapshots>,
}

/// The store's half of snapshots (docs/snapshots.md): a point every `every` applied entries,
/// the view of the latest one kept for images.
struct Snapshots {
    db: fjall::Database,
    /// Applied entries between points (`--snapshot-count`).
    every: u64,
    /// Applied index of the latest point (or of the start, before any).
    last_index: u64,
    /// The latest point's view: the keyspaces exactly as they were after applying its index.
    view: Option<(u64, fjall::Snapshot)>,
}

/// What the [`StoreActor`] publishes after every batch of applied entries, read without a
/// message round trip by the gRPC layer.
#[derive(Debug, Default)]
pub struct StoreProgress {
    /// The store revision (etcd `header.revision`).
    pub revision: AtomicI64,
    /// Index of the last applied raft entry.
    pub applied_index: AtomicU64,
    /// [`Kv::size_bytes`]: bytes of the records the store holds.
    pub size_bytes: AtomicU64,
}

impl StoreProgress {
    /// The store revision as last published.
    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    /// The applied index as last published.
    pub fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Acquire)
    }

    /// The store's record bytes as last published.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes.load(Ordering::Acquire)
    }
}

/// Where the [`StoreActor`] routes what applying produced. Each is optional (`None`: nobody
/// listens, e.g. a store without watches in a test).
#[derive(Default)]
pub struct StoreLinks {
    /// The watch hub's applied events (`WatchHub`).
    pub events: Option<Recipient<EventsApplied>>,
    /// The watch hub's history answers (`WatchHub`), through the same mailbox as `events`.
    pub history: Option<Recipient<HistoryFetched>>,
    /// Applied lease grants and revokes (`LeaseReaper`).
    pub leases: Option<Recipient<LeaseApplied>>,
    /// A store image replaced the store (`WatchHub`, same mailbox as `events`).
    pub restored: Option<Recipient<StoreRestored>>,
    /// Snapshot points taken (`RaftActor`).
    pub points: Option<Recipient<StorePoint>>,
}

impl StoreActor {
    /// Wraps an opened store routing to `links`.
    pub fn new(kv: Kv, members: Members, links: StoreLinks) -> Self {
        let progress = Arc::new(StoreProgress {
            revision: AtomicI64::new(kv.current_revision()),
            applied_index: AtomicU64::new(kv.applied_index()),
            size_bytes: AtomicU64::new(kv.size_bytes()),
        });
        Self {
            progress,
            kv,
            members,
            waiters: BTreeMap::new(),
            parked: BTreeMap::new(),
            links,
            snapshots: None,
        }
    }

    /// Takes a snapshot point every `every` applied entries (`--snapshot-count`; 0 = never)
    /// from `db`, the database the store's keyspaces live in, and installs images into it.
    pub fn with_snapshots(mut self, db: fjall::Database, every: u64) -> Self {
        self.snapshots = Some(Snapshots {
            db,
            every,
            last_index: self.kv.applied_index(),
            view: None,
        });
        self
    }

    fn publish_progress(&self) {
        self.progress
            .revision
            .store(self.kv.current_revision(), Ordering::Release);
        self.progress
            .applied_index
            .store(self.kv.applied_index(), Ordering::Release);
        self.progress
            .size_bytes
            .store(self.kv.size_bytes(), Ordering::Release);
    }

    /// After a batch: a new snapshot point if `every` entries went by since the last one. The
    /// view is taken here, on the only writer's thread between two batches, so it holds
    /// exactly the entries through the applied index.
    fn maybe_take_point(&mut self) {
        let applied = self.kv.applied_index();
        let Some(s) = &mut self.snapshots else { return };
        if s.every == 0 || applied < s.last_index + s.every {
            return;
        }
        s.view = Some((applied, s.db.snapshot()));
        s.last_index = applied;
        if let Some(raft) = &self.links.points {
            raft.do_send(StorePoint { index: applied });
        }
    }

    /// Where this actor publishes the store revision and applied index after applying.
    pub fn progress(&self) -> Arc<StoreProgress> {
        self.progress.clone()
    }

    /// Applies one committed entry ([`applier::apply_entry`]) and routes what it produced, in
    /// apply order: the lease change to the `LeaseReaper`, member attributes to `Members`, the
    /// events to the `WatchHub` — before the waiter's answer (one sender, FIFO mailboxes: see
    /// docs/watch.md, "the seam rule") — then the answer. A fatal store error stops the member.
    fn apply(&mut self, entry: Entry) {
        let applied = match applier::apply_entry(&mut self.kv, &entry) {
            Ok(Some(applied)) => applied,
            Ok(None) => return, // replayed at restart: already in the store
            Err(e) => fatal(&e.to_string()),
        };
        if let Some(Skipped::Undecodable { reason }) = &applied.skipped {
            tracing::error!(
                index = applied.index,
                "undecodable log entry skipped: {reason}"
            );
        }
        // Leases: the reaper's clock follows the table in apply order (one sender, FIFO).
        if let (Some(reaper), Some(change)) = (&self.links.leases, applied.lease) {
            reaper.do_send(change);
        }
        if let Some(a) = applied.member
            && let Err(e) = self.members.publish(a.member_id, a.name, a.client_urls)
        {
            fatal(&e.to_string());
        }
        if let Some(change) = &applied.member_change
            && let Err(e) = self.members.apply(change)
        {
            fatal(&e.to_string());
        }
        if let Some(hub) = &self.links.events
            && !applied.events.is_empty()
        {
            hub.do_send(EventsApplied {
                revision: applied.revision,
                events: applied.events,
            });
        }
        if applied.request_id != 0
            && let Some(waiter) = self.waiters.remove(&applied.request_id)
        {
            let _ = waiter.send(applied.result);
        }
    }

    fn serve_parked(&mut self) {
        while let Some(entry) = self.parked.first_entry() {
            if *entry.key() > self.kv.applied_index() {
                break;
            }
            for parked in entry.remove() {
                match parked {
                    Parked::Read(req, reply) => {
                        let _ = reply.send(self.kv.range(&req));
                    }
                    Parked::Wait(reply) => {
                        let _ = reply.send(());
                    }
                }
            }
        }
    }
}

/// Applying failed on disk: the member stops rather than diverge from its peers.
fn fatal(e: &str) -> ! {
    tracing::error!("fatal: cannot apply to the MVCC store: {e}");
    std::process::exit(1);
}

impl Actor for StoreActor {
    type Context = Context<Self>;

    /// A member that takes snapshots starts with a point at its applied index: the view of
    /// the point recorded before a restart is gone with the process, and a follower needing a
    /// snapshot must not wait `--snapshot-count` more writes for the next one.
    fn started(&mut self, _: &mut Context<Self>) {
        let applied = self.kv.applied_index();
        let Some(s) = &mut self.snapshots else { return };
        if s.every == 0 || applied == 0 {
            return;
        }
        s.view = Some((applied, s.db.snapshot()));
        if let Some(raft) = &self.links.points {
            raft.do_send(StorePoint { index: applied });
        }
    }
}

impl Handler<ApplyCommitted> for StoreActor {
    type Result = ();

    fn handle(&mut self, msg: ApplyCommitted, _: &mut Context<Self>) {
        // One backend batch for the whole Ready's entries (reads here see them at once).
        self.kv.defer_commits();
        for entry in msg.entries {
            self.apply(entry);
        }
        if let Err(e) = self.kv.flush() {
            fatal(&e.to_string());
        }
        self.publish_progress();
        self.maybe_take_point();
        self.serve_parked();
    }
}

/// Stream the store image of snapshot point `meta` (the leader sending InstallSnapshot): the
/// chunks go to `chunks` from a thread of their own, an `Err` last if reading fails. Answers
/// at once with an error when the store holds no view of `meta.index` — and then takes a
/// point at its applied index now, so the leader's Raft retries with a point that has an
/// image (without it, a leader whose core offers a point the store has no view of would wait
/// `--snapshot-count` more writes: found by the simulator, seeds 12 and 353).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct ExportImage {
    /// The snapshot point the Raft core sent.
    pub meta: SnapshotMeta,
    /// Where the image's chunks go, in order.
    pub chunks: tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
}

impl Handler<ExportImage> for StoreActor {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: ExportImage, _: &mut Context<Self>) -> Self::Result {
        let applied = self.kv.applied_index();
        let Some(s) = &mut self.snapshots else {
            return Err("this store takes no snapshots".into());
        };
        let Some((_, view)) = s.view.as_ref().filter(|(i, _)| *i == msg.meta.index) else {
            s.view = Some((applied, s.db.snapshot()));
            s.last_index = applied;
            if let Some(raft) = &self.links.points {
                raft.do_send(StorePoint { index: applied });
            }
            return Err(format!(
                "no view of snapshot point {}; a new point at {applied} is taken",
                msg.meta.index
            ));
        };
        let (db, view, meta, chunks) = (s.db.clone(), view.clone(), msg.meta, msg.chunks);
        std::thread::Builder::new()
            .name("snapshot-send".into())
            .spawn(move || {
                let sent = image::write_image(&db, &view, &meta, |chunk| {
                    chunks.blocking_send(Ok(chunk)).is_ok()
                });
                if let Err(e) = sent {
                    let _ = chunks.blocking_send(Err(e.to_string()));
                }
            })
            .map_err(|e| format!("cannot start the image writer: {e}"))?;
        Ok(())
    }
}

/// Replace the store with a leader's verified image (a follower receiving InstallSnapshot),
/// before its Raft message is stepped. `Ok(false)`: the store already applied through the
/// image's index, so nothing changed (installing would move it back). `Err`: the store could
/// not be written; the member stops, as for any apply failure.
#[derive(Message)]
#[rtype(result = "Result<bool, String>")]
pub struct InstallImage(pub StoreImage);

impl Handler<InstallImage> for StoreActor {
    type Result = Result<bool, String>;

    fn handle(&mut self, InstallImage(image): InstallImage, _: &mut Context<Self>) -> Self::Result {
        if image.meta.index <= self.kv.applied_index() {
            return Ok(false);
        }
        let Some(s) = &mut self.snapshots else {
            return Err("this store takes no snapshots".into());
        };
        let db = s.db.clone();
        let old_leases = self.kv.leases().list();
        image::install(&db, &image, |batch| {
            crate::log::stage_image(&db, batch, &image.meta)
        })
        .map_err(|e| e.to_string())?;
        crate::crashpoint::hit(crate::crashpoint::SNAPSHOT_IMAGE_INSTALLED);
        let kv = crate::mvcc::FjallBackend::open(&db)
            .and_then(Kv::open)
            .unwrap_or_else(|e| fatal(&format!("reopening the store after an image: {e}")));
        if kv.applied_index() != image.meta.index {
            fatal(&format!(
                "the image of index {} holds applied index {}",
                image.meta.index,
                kv.applied_index()
            ));
        }
        self.kv = kv;
        if let Err(e) = self.members.reload(&db) {
            fatal(&e.to_string());
        }
        s.view = Some((image.meta.index, db.snapshot()));
        s.last_index = image.meta.index;
        tracing::info!(
            index = image.meta.index,
            term = image.meta.term,
            revision = self.kv.current_revision(),
            records = image.records(),
            "installed a snapshot image from the leader"
        );
        // The lease clock follows the table: leases the image lacks are gone, new ones granted.
        // Compared as (id, TTL): a lease revoked and granted again under the image with another
        // TTL must not keep its old one on the clock (the simulator, seed 340, saw it expire
        // early once this member led).
        if let Some(reaper) = &self.links.leases {
            let new_leases = self.kv.leases().list();
            for old in &old_leases {
                if !new_leases.contains(old) {
                    reaper.do_send(LeaseApplied::Revoked {
                        id: old.0,
                        keys_deleted: 0,
                    });
                }
            }
            for (id, ttl_secs) in new_leases {
                if !old_leases.contains(&(id, ttl_secs)) {
                    reaper.do_send(LeaseApplied::Granted { id, ttl_secs });
                }
            }
        }
        if let Some(hub) = &self.links.restored {
            hub.do_send(StoreRestored {
                revision: self.kv.current_revision(),
            });
        }
        self.publish_progress();
        self.serve_parked();
        Ok(true)
    }
}

impl Handler<RegisterWait> for StoreActor {
    type Result = ();

    fn handle(&mut self, msg: RegisterWait, _: &mut Context<Self>) {
        self.waiters.insert(msg.id, msg.reply);
    }
}

impl Handler<CancelWait> for StoreActor {
    type Result = ();

    fn handle(&mut self, msg: CancelWait, _: &mut Context<Self>) {
        self.waiters.remove(&msg.id);
    }
}

/// A Range served locally once `applied_index ≥ min_applied_index` (0 = at once: a
/// serializable read).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LocalRange {
    /// The request, already validated.
    pub request: RangeRequest,
    /// Read index to wait for.
    pub min_applied_index: u64,
    /// Where the answer goes.
    pub reply: RangeReply,
}

impl Handler<LocalRange> for StoreActor {
    type Result = ();

    fn handle(&mut self, msg: LocalRange, _: &mut Context<Self>) {
        if msg.min_applied_index <= self.kv.applied_index() {
            let _ = msg.reply.send(self.kv.range(&msg.request));
        } else {
            self.parked
                .entry(msg.min_applied_index)
                .or_default()
                .push(Parked::Read(msg.request, msg.reply));
        }
    }
}

/// Store facts for `Maintenance.Status` and `Cluster.MemberList`.
#[derive(Clone, Debug)]
pub struct StoreStatus {
    /// Current store revision.
    pub revision: i64,
    /// Index of the last applied entry.
    pub applied_index: u64,
    /// Members, ordered by id.
    pub members: Vec<Member>,
    /// Active alarms as `(member id, etcd AlarmType)`.
    pub alarms: Vec<(u64, i32)>,
}

/// Ask for a [`StoreStatus`].
#[derive(Message)]
#[rtype(result = "StoreStatus")]
pub struct GetStatus;

impl Handler<GetStatus> for StoreActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(StoreStatus {
            revision: self.kv.current_revision(),
            applied_index: self.kv.applied_index(),
            members: self.members.list(),
            alarms: self.kv.alarms().iter().copied().collect(),
        })
    }
}

/// `Maintenance.HashKV`: [`Kv::hash_kv`] at `revision` (0 = current), between batches.
#[derive(Message)]
#[rtype(result = "Result<crate::mvcc::KvHash, MvccError>")]
pub struct HashKv(pub i64);

impl Handler<HashKv> for StoreActor {
    type Result = Result<crate::mvcc::KvHash, MvccError>;

    fn handle(&mut self, HashKv(revision): HashKv, _: &mut Context<Self>) -> Self::Result {
        self.kv.hash_kv(revision)
    }
}

/// `Maintenance.Hash`: [`Kv::hash`] and the current revision, between batches.
#[derive(Message)]
#[rtype(result = "Result<(u32, i64), MvccError>")]
pub struct HashAll;

impl Handler<HashAll> for StoreActor {
    type Result = Result<(u32, i64), MvccError>;

    fn handle(&mut self, _: HashAll, _: &mut Context<Self>) -> Self::Result {
        Ok((self.kv.hash()?, self.kv.current_revision()))
    }
}

impl Handler<FetchHistory> for StoreActor {
    type Result = ();

    fn handle(&mut self, FetchHistory(f): FetchHistory, _: &mut Context<Self>) {
        let Some(hub) = &self.links.history else {
            return;
        };
        let history = match self.kv.history(&f.key, &f.range_end, f.from_rev, f.prev_kv) {
            Ok(events) => History::Events {
                revision: self.kv.current_revision(),
                events,
            },
            Err(MvccError::Compacted) => History::Compacted {
                compact_revision: self.kv.compact_revision(),
            },
            Err(e) => fatal(&e.to_string()),
        };
        hub.do_send(HistoryFetched {
            stream: f.stream,
            watch_id: f.watch_id,
            generation: f.generation,
            history,
        });
    }
}

/// What this member's applied state says about one lease (etcd `LeaseTimeToLive` minus the
/// clock): its granted TTL, seconds, and its attached keys in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Granted TTL, seconds.
    pub ttl: i64,
    /// Attached keys, in key order.
    pub keys: Vec<Vec<u8>>,
}

/// Look up one lease in the applied state; `None` if it is not granted.
#[derive(Message)]
#[rtype(result = "Option<LeaseInfo>")]
pub struct GetLease(pub i64);

impl Handler<GetLease> for StoreActor {
    type Result = MessageResult<GetLease>;

    fn handle(&mut self, GetLease(id): GetLease, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.kv.leases().get(id).map(|l| LeaseInfo {
            ttl: l.ttl,
            keys: l.keys.iter().cloned().collect(),
        }))
    }
}

/// Every granted lease as `(id, ttl seconds)`, in id order (Lease.LeaseLeases).
#[derive(Message)]
#[rtype(result = "Vec<(i64, i64)>")]
pub struct ListLeases;

impl Handler<ListLeases> for StoreActor {
    type Result = MessageResult<ListLeases>;

    fn handle(&mut self, _: ListLeases, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.kv.leases().list())
    }
}

/// Answers once this member has applied through `index` (etcd `waitAppliedIndex`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WaitApplied {
    /// Raft index to reach.
    pub index: u64,
    /// Fired when `applied_index ≥ index`.
    pub reply: oneshot::Sender<()>,
}

impl Handler<WaitApplied> for StoreActor {
    type Result = ();

    fn handle(&mut self, msg: WaitApplied, _: &mut Context<Self>) {
        if msg.index <= self.kv.applied_index() {
            let _ = msg.reply.send(());
        } else {
            self.parked
                .entry(msg.index)
                .or_default()
                .push(Parked::Wait(msg.reply));
        }
    }
}

/// `Maintenance.Snapshot`: a consistent view of the whole store for an etcd-format file
/// ([`crate::snapshot::etcd_file`]). Taken here, between two applied batches, so the view
/// holds exactly the entries through the applied index and agrees with the member table
/// copied with it; the file is then written from the view on another thread, without this
/// actor. Errors when this store keeps no database (stores built for tests).
#[derive(Message)]
#[rtype(result = "Result<crate::snapshot::etcd_file::StoreView, String>")]
pub struct ExportEtcdSnapshot;

impl Handler<ExportEtcdSnapshot> for StoreActor {
    type Result = Result<crate::snapshot::etcd_file::StoreView, String>;

    fn handle(&mut self, _: ExportEtcdSnapshot, _: &mut Context<Self>) -> Self::Result {
        let Some(s) = &self.snapshots else {
            return Err("this store keeps no database to snapshot".into());
        };
        Ok(crate::snapshot::etcd_file::StoreView {
            db: s.db.clone(),
            view: s.db.snapshot(),
            members: self.members.list(),
        })
    }
}
