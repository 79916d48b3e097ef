//! [`Hub`]: the pure watch core (etcd `mvcc.watchableStore`'s bookkeeping without its
//! goroutines).
//!
//! Each watcher is in one of three states:
//!
//! ```text
//!   create(start ≤ current)          park (queue full)
//!        │                         ┌──────────────┐
//!        ▼          fetches()      │              │
//!   Unsynced ─────────────────► Fetching ──history(C)──► Synced ──apply(rev)──► deliveries
//!      ▲                           │   C < current              ▲
//!      └───────────────────────────┘                            │
//!   create(start = 0 or > current) ─────────────────────────────┘
//! ```
//!
//! *Synced* watchers get the events of each applied revision as it arrives ([`Hub::apply`]).
//! *Unsynced* watchers are behind: a new watch with an old `start_revision`, or one whose
//! stream queue was full (etcd's "victims"). They catch up from the store's history
//! ([`Hub::fetches`] asks, [`Hub::history`] answers), skipping live events meanwhile.
//!
//! **The seam rule**: a watcher moves to synced only when the history it received ends at
//! the revision the hub has last seen applied (`C == current_revision`). The actor guarantees
//! that the store's history answer (through revision `C`) reaches the hub *after* the live
//! events of revisions ≤ `C` (both come from the `StoreActor`, through one FIFO mailbox), so
//! every revision is delivered exactly once: ≤ `C` from history, > `C` live. Should the hub
//! ever have seen revisions > `C` (impossible with one FIFO mailbox; kept so the core does
//! not depend on it), the watcher stays unsynced and fetches again.
//!
//! **Cost per revision** (STYLE: index what fans out): synced watchers sit in a
//! [`WatcherGroup`] by key and range, so [`Hub::apply`] visits only the watchers an event's
//! key concerns — one lookup for single-key watchers, a stabbing query for ranges, prefixes
//! and from-key watchers (etcd `watcherGroup.watcherSetByKey`). A synced watcher's next
//! revision is implicit, `current_revision + 1`, so the ones a revision does not concern are
//! not touched at all; it is written back into [`Watcher::next_rev`] when the watcher leaves
//! synced (`Groups::set`). Unsynced watchers and those with `progress_notify` have sets of
//! their own, so [`Hub::fetches`] and [`Hub::progress_tick`] visit only them.

use super::watcher::Watcher;
use super::watcher_group::WatcherGroup;
use crate::mvcc::index::KeyRange;
use crate::pb::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchResponse};
use crate::pb::mvccpb::Event;
use std::collections::{BTreeMap, BTreeSet};

/// Identifies one gRPC Watch stream within a member.
pub type StreamId = u64;

/// A watcher within the hub: its stream and watch id. Ordered by stream, then id — the order
/// of every list the hub hands out.
type WatcherKey = (StreamId, i64);

/// etcd `mvcc.ErrWatcherDuplicateID` text, sent as `cancel_reason`.
pub const DUPLICATE_WATCH_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";
/// etcd `mvcc.ErrEmptyWatcherRange` text, sent as `cancel_reason`.
pub const EMPTY_WATCHER_RANGE: &str = "mvcc: watcher range is empty";
/// The watch id etcd answers a failed create with (clientv3 `InvalidWatchID`).
pub const INVALID_WATCH_ID: i64 = -1;
/// Most store revisions one history response covers (etcd `watchBatchMaxRevs`): a watcher
/// further behind gets its history in several responses, fetching again after each.
pub const HISTORY_BATCH_REVISIONS_MAX: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncState {
    Synced,
    Unsynced,
    /// Unsynced with a history request outstanding.
    Fetching,
}

/// A response for one watcher's events, to be queued on its stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The stream to queue it on.
    pub stream: StreamId,
    /// The watcher it is for.
    pub watch_id: i64,
    /// The response (header holds only the revision; the API layer fills the rest).
    pub response: WatchResponse,
    /// If the stream cannot take it, the watcher goes back to unsynced at this revision
    /// ([`Hub::park`]).
    pub resume_rev: i64,
    /// The watcher asked for large responses in fragments ([`super::fragment`]).
    pub fragment: bool,
}

/// A request for the history of one watcher: every event of its range with revision in
/// `[from_rev, current]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The watcher's stream.
    pub stream: StreamId,
    /// The watcher.
    pub watch_id: i64,
    /// Range start.
    pub key: Vec<u8>,
    /// Range end (etcd's rules).
    pub range_end: Vec<u8>,
    /// First revision wanted.
    pub from_rev: i64,
    /// Whether events must carry `prev_kv`.
    pub prev_kv: bool,
    /// The watcher's generation; hand it back with the answer ([`Hub::history`]).
    pub generation: u64,
}

/// The store's answer to a [`Fetch`].
#[derive(Clone, Debug, PartialEq)]
pub enum History {
    /// The events of revisions `[from_rev, revision]`, in revision order; `revision` is the
    /// store's current revision when it read them.
    Events {
        /// The store revision the history ends at.
        revision: i64,
        /// The events.
        events: Vec<Event>,
    },
    /// `from_rev` is below the compacted revision (etcd: `minRev < compactRev`).
    Compacted {
        /// The store's compacted revision.
        compact_revision: i64,
    },
}

#[derive(Debug)]
struct Entry {
    watcher: Watcher,
    state: SyncState,
    /// Which creation this is: a watch id cancelled and created again gets a new one, so a
    /// history answer read for the old watcher is recognised as stale.
    generation: u64,
    /// A response with events went out since the last progress tick.
    sent_since_tick: bool,
}

impl Entry {
    /// The next store revision this watcher must receive, with the hub at `current_revision`:
    /// implicit while synced (see [`Watcher::next_rev`]), stored otherwise.
    fn next_rev(&self, current_revision: i64) -> i64 {
        match self.state {
            SyncState::Synced => self.watcher.next_rev.max(current_revision + 1),
            SyncState::Unsynced | SyncState::Fetching => self.watcher.next_rev,
        }
    }
}

/// The watchers by state, indexed for the paths that run often (etcd `watchableStore.synced`
/// and `.unsynced`).
///
/// Invariant: `synced` holds exactly the watchers in state `Synced`, under their ranges;
/// `unsynced` exactly those in state `Unsynced` (a `Fetching` watcher is in neither);
/// `progress_notify` exactly those that asked for it.
#[derive(Debug, Default)]
struct Groups {
    synced: WatcherGroup<WatcherKey>,
    unsynced: BTreeSet<WatcherKey>,
    progress_notify: BTreeSet<WatcherKey>,
}

impl Groups {
    /// Files a new watcher under its state.
    fn add(&mut self, key: WatcherKey, e: &Entry) {
        match e.state {
            SyncState::Synced => self.synced.insert(key, e.watcher.range()),
            SyncState::Unsynced => {
                self.unsynced.insert(key);
            }
            SyncState::Fetching => {}
        }
        if e.watcher.progress_notify {
            self.progress_notify.insert(key);
        }
    }

    /// Forgets a watcher that is gone.
    fn forget(&mut self, key: WatcherKey, e: &Entry) {
        match e.state {
            SyncState::Synced => {
                self.synced.remove(key, e.watcher.range());
            }
            SyncState::Unsynced => {
                self.unsynced.remove(&key);
            }
            SyncState::Fetching => {}
        }
        self.progress_notify.remove(&key);
    }

    /// Moves watcher `key` to state `to`, keeping the groups in step. A watcher leaving
    /// synced gets its implicit next revision (at `current_revision`) written back.
    fn set(&mut self, key: WatcherKey, e: &mut Entry, to: SyncState, current_revision: i64) {
        if e.state == to {
            return;
        }
        let progress_notify = e.watcher.progress_notify;
        e.watcher.next_rev = e.next_rev(current_revision);
        self.forget(key, e);
        e.state = to;
        self.add(key, e);
        debug_assert_eq!(self.progress_notify.contains(&key), progress_notify);
    }
}

/// The watch core; see the module docs.
///
/// Invariant: every watcher belongs to an open stream; `current_revision` only rises.
#[derive(Debug)]
pub struct Hub {
    current_revision: i64,
    /// Most revisions one history response covers.
    history_batch_revisions_max: usize,
    /// Stream → next automatic watch id (etcd `watchStream.nextID`).
    streams: BTreeMap<StreamId, i64>,
    watchers: BTreeMap<WatcherKey, Entry>,
    /// The watchers by state; only `groups.synced` is consulted per revision.
    groups: Groups,
    /// Generation of the next watcher created.
    next_generation: u64,
    /// Watchers [`Hub::apply`] has looked at since the hub was made.
    watchers_examined: u64,
}

/// A response carrying `events` at `revision` for one watcher.
fn events_delivery(
    (stream, watch_id): (StreamId, i64),
    revision: i64,
    events: Vec<Event>,
    resume_rev: i64,
    fragment: bool,
) -> Delivery {
    Delivery {
        stream,
        watch_id,
        response: WatchResponse {
            header: header(revision),
            watch_id,
            events,
            ..Default::default()
        },
        resume_rev,
        fragment,
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl Hub {
    /// A hub for a store at `current_revision`.
    pub fn new(current_revision: i64) -> Self {
        Hub {
            current_revision,
            history_batch_revisions_max: HISTORY_BATCH_REVISIONS_MAX,
            streams: BTreeMap::new(),
            watchers: BTreeMap::new(),
            groups: Groups::default(),
            next_generation: 0,
            watchers_examined: 0,
        }
    }

    /// The same hub with history responses of at most `revisions_max` (≥ 1) revisions
    /// instead of [`HISTORY_BATCH_REVISIONS_MAX`] (tests use small batches).
    pub fn with_history_batch_revisions_max(mut self, revisions_max: usize) -> Self {
        self.history_batch_revisions_max = revisions_max.max(1);
        self
    }

    /// The last store revision seen applied.
    pub fn current_revision(&self) -> i64 {
        self.current_revision
    }

    /// Number of watchers over all streams.
    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }

    /// Number of open streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// How many watchers [`Hub::apply`] has looked at since the hub was made: the candidates
    /// its index returned, so a revision costs what it concerns (tests check it stays there).
    pub fn watchers_examined(&self) -> u64 {
        self.watchers_examined
    }

    /// Registers a new stream (no-op if known).
    pub fn open_stream(&mut self, stream: StreamId) {
        self.streams.entry(stream).or_insert(0);
    }

    /// Forgets a stream and every watcher on it; returns how many watchers it held.
    pub fn close_stream(&mut self, stream: StreamId) -> usize {
        self.streams.remove(&stream);
        let ids: Vec<_> = self
            .watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in &ids {
            let e = self.watchers.remove(k).expect("listed above");
            self.groups.forget(*k, &e);
        }
        ids.len()
    }

    /// Creates a watch (etcd `watchStream.Watch` + v3rpc `recvLoop`) and returns the
    /// response to send at once: `created` with the watch id and `header.revision` = current
    /// revision; or, for a duplicate client-chosen id or an empty range, `created` +
    /// `canceled` with watch id -1 and etcd's `cancel_reason`.
    ///
    /// A `start_revision` of 0 (or one above the current revision) makes a synced watcher;
    /// one at or below the current revision an unsynced one that [`Hub::fetches`] catches up.
    pub fn create(&mut self, stream: StreamId, req: &WatchCreateRequest) -> WatchResponse {
        let refuse = |reason: &str| WatchResponse {
            header: header(self.current_revision),
            watch_id: INVALID_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason.to_string(),
            ..Default::default()
        };
        if matches!(KeyRange::new(&req.key, &req.range_end), KeyRange::Empty) {
            return refuse(EMPTY_WATCHER_RANGE);
        }
        let Some(next_id) = self.streams.get_mut(&stream) else {
            return refuse("watch stream closed");
        };
        let watch_id = if req.watch_id == 0 {
            // Automatic ids skip the ones a client chose (etcd watchStream.Watch).
            while self.watchers.contains_key(&(stream, *next_id)) {
                *next_id += 1;
            }
            *next_id += 1;
            *next_id - 1
        } else if self.watchers.contains_key(&(stream, req.watch_id)) {
            return refuse(DUPLICATE_WATCH_ID);
        } else {
            req.watch_id
        };
        let (next_rev, state) =
            if req.start_revision <= 0 || req.start_revision > self.current_revision {
                let start = if req.start_revision <= 0 {
                    self.current_revision + 1
                } else {
                    req.start_revision
                };
                (start, SyncState::Synced)
            } else {
                (req.start_revision, SyncState::Unsynced)
            };
        self.next_generation += 1;
        let entry = Entry {
            watcher: Watcher::new(watch_id, req, next_rev),
            state,
            generation: self.next_generation,
            sent_since_tick: false,
        };
        self.groups.add((stream, watch_id), &entry);
        self.watchers.insert((stream, watch_id), entry);
        WatchResponse {
            header: header(self.current_revision),
            watch_id,
            created: true,
            ..Default::default()
        }
    }

    /// Cancels a watch; the `canceled` response, or `None` if the stream has no such watch
    /// (etcd sends nothing then).
    pub fn cancel(&mut self, stream: StreamId, watch_id: i64) -> Option<WatchResponse> {
        let e = self.watchers.remove(&(stream, watch_id))?;
        self.groups.forget((stream, watch_id), &e);
        Some(WatchResponse {
            header: header(self.current_revision),
            watch_id,
            canceled: true,
            ..Default::default()
        })
    }

    /// A progress request (etcd `RequestProgressAll`): a response with watch id -1 and the
    /// current revision, if every watcher of the stream is synced (else `None`: the client
    /// would learn a revision some watcher has not reached).
    pub fn progress(&self, stream: StreamId) -> Option<WatchResponse> {
        let all_synced = self
            .watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .all(|(_, e)| e.state == SyncState::Synced);
        all_synced.then(|| WatchResponse {
            header: header(self.current_revision),
            watch_id: INVALID_WATCH_ID,
            ..Default::default()
        })
    }

    /// The events of store revision `revision` were applied: one delivery per synced watcher
    /// with matching events, in (stream, watch id) order. Unsynced watchers skip them (they
    /// read them from history later).
    ///
    /// Costs the watchers whose key or range holds an event's key (found in `groups.synced`),
    /// not all of them: the others' next revision moves with `current_revision`.
    pub fn apply(&mut self, revision: i64, events: &[Event]) -> Vec<Delivery> {
        if revision <= self.current_revision {
            return Vec::new(); // a revision is applied once; nothing new
        }
        // A synced watcher's next revision before this one (`Entry::next_rev`).
        let next_rev_floor = self.current_revision + 1;
        self.current_revision = revision;
        // Each candidate with the events whose key it watches, in event order; the map's
        // order is the deliveries' order.
        let mut candidates: BTreeMap<WatcherKey, Vec<&Event>> = BTreeMap::new();
        for event in events {
            if let Some(kv) = &event.kv {
                self.groups.synced.matching(&kv.key, |w| {
                    candidates.entry(w).or_default().push(event);
                });
            }
        }
        self.watchers_examined += candidates.len() as u64;
        let mut out = Vec::new();
        for ((stream, watch_id), events) in candidates {
            let e = self
                .watchers
                .get_mut(&(stream, watch_id))
                .expect("the synced group holds live watchers only");
            if e.watcher.next_rev > revision {
                continue; // a future start_revision, not reached yet
            }
            let selected = e.watcher.select(events);
            if selected.is_empty() {
                continue; // filtered (NOPUT / NODELETE)
            }
            e.sent_since_tick = true;
            out.push(events_delivery(
                (stream, watch_id),
                revision,
                selected,
                e.watcher.next_rev.max(next_rev_floor),
                e.watcher.fragment,
            ));
        }
        out
    }

    /// The progress-notify interval passed (etcd `watchableStore.progressAll`, every
    /// `--experimental-watch-progress-notify-interval`, 10 min by default): an empty
    /// response with `header.revision` = current revision for each synced watcher that asked
    /// for `progress_notify` and got no events since the last tick, in (stream, watch id)
    /// order. The client learns it is up to date through that revision.
    pub fn progress_tick(&mut self) -> Vec<Delivery> {
        let mut out = Vec::new();
        for &(stream, watch_id) in &self.groups.progress_notify {
            let e = self
                .watchers
                .get_mut(&(stream, watch_id))
                .expect("the progress_notify set holds live watchers only");
            let idle = !std::mem::take(&mut e.sent_since_tick);
            if idle && e.state == SyncState::Synced {
                out.push(Delivery {
                    stream,
                    watch_id,
                    response: WatchResponse {
                        header: header(self.current_revision),
                        watch_id,
                        ..Default::default()
                    },
                    resume_rev: e.next_rev(self.current_revision),
                    fragment: false,
                });
            }
        }
        out
    }

    /// A delivery could not be queued (the stream is full): the watcher becomes unsynced
    /// from `resume_rev` and catches up from history once the stream has room.
    pub fn park(&mut self, stream: StreamId, watch_id: i64, resume_rev: i64) {
        let key = (stream, watch_id);
        if let Some(e) = self.watchers.get_mut(&key) {
            self.groups
                .set(key, e, SyncState::Unsynced, self.current_revision);
            e.watcher.next_rev = resume_rev;
        }
    }

    /// History requests for unsynced watchers whose stream `has_room`, in (stream, watch id)
    /// order; they become `Fetching`. An unsynced watcher already past the current revision
    /// becomes synced instead.
    pub fn fetches(&mut self, has_room: impl Fn(StreamId) -> bool) -> Vec<Fetch> {
        let mut out = Vec::new();
        let unsynced: Vec<WatcherKey> = self.groups.unsynced.iter().copied().collect();
        for key @ (stream, watch_id) in unsynced {
            let e = self
                .watchers
                .get_mut(&key)
                .expect("the unsynced set holds live watchers only");
            if e.watcher.next_rev > self.current_revision {
                self.groups
                    .set(key, e, SyncState::Synced, self.current_revision);
                continue;
            }
            if !has_room(stream) {
                continue;
            }
            self.groups
                .set(key, e, SyncState::Fetching, self.current_revision);
            out.push(Fetch {
                stream,
                watch_id,
                key: e.watcher.key.clone(),
                range_end: e.watcher.range_end.clone(),
                from_rev: e.watcher.next_rev,
                prev_kv: e.watcher.prev_kv,
                generation: e.generation,
            });
        }
        out
    }

    /// The store answered a [`Fetch`]. Returns the response to queue, if any: the watcher's
    /// events of the history, or the compacted response (`compact_revision` set,
    /// `canceled`), after which the watcher is gone. See the seam rule in the module docs.
    ///
    /// `generation` is the [`Fetch::generation`] the answer was read for: an answer for a
    /// watcher that was cancelled (and perhaps created again under the same id, with another
    /// range) meanwhile is stale and ignored.
    pub fn history(
        &mut self,
        stream: StreamId,
        watch_id: i64,
        generation: u64,
        history: History,
    ) -> Option<Delivery> {
        let key = (stream, watch_id);
        let e = self.watchers.get(&key)?;
        if e.state != SyncState::Fetching || e.generation != generation {
            return None; // cancelled (and maybe re-created) meanwhile: a stale answer
        }
        match history {
            History::Compacted { compact_revision } => {
                let e = self.watchers.remove(&key).expect("checked above");
                self.groups.forget(key, &e);
                Some(Delivery {
                    stream,
                    watch_id,
                    response: WatchResponse {
                        header: header(self.current_revision),
                        watch_id,
                        canceled: true,
                        compact_revision,
                        ..Default::default()
                    },
                    resume_rev: 0,
                    fragment: false,
                })
            }
            History::Events { revision, events } => {
                // The store never runs ahead of the live events the hub saw (FIFO mailbox).
                if revision > self.current_revision {
                    self.unsync_all(); // but if it did, no synced watcher may skip a revision
                    self.current_revision = revision;
                }
                let e = self.watchers.get_mut(&key).expect("checked above");
                let resume_rev = e.watcher.next_rev;
                let range = e.watcher.range();
                let wanted: Vec<Event> = events
                    .into_iter()
                    .filter(|ev| {
                        ev.kv.as_ref().is_some_and(|kv| {
                            kv.mod_revision >= resume_rev && range.contains(&kv.key)
                        })
                    })
                    .collect();
                let (batch, more_rev) = first_revisions(wanted, self.history_batch_revisions_max);
                let selected = e.watcher.select(&batch);
                let to = if let Some(more_rev) = more_rev {
                    // Stays unsynced; the next fetch starts at the first revision left out.
                    e.watcher.next_rev = more_rev;
                    SyncState::Unsynced
                } else {
                    e.watcher.next_rev = revision + 1;
                    if revision == self.current_revision {
                        SyncState::Synced
                    } else {
                        SyncState::Unsynced
                    }
                };
                self.groups.set(key, e, to, self.current_revision);
                (!selected.is_empty()).then(|| {
                    let fragment = e.watcher.fragment;
                    events_delivery((stream, watch_id), revision, selected, resume_rev, fragment)
                })
            }
        }
    }
}

impl Hub {
    /// Panics unless the groups agree with the watchers' states (`Groups`' invariant). For
    /// tests: O(watchers).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut synced = 0;
        for (key, e) in &self.watchers {
            let in_synced = self.groups.synced.contains(*key, e.watcher.range());
            assert_eq!(
                in_synced,
                e.state == SyncState::Synced,
                "{key:?} {:?}",
                e.state
            );
            synced += usize::from(in_synced);
            let in_unsynced = self.groups.unsynced.contains(key);
            assert_eq!(
                in_unsynced,
                e.state == SyncState::Unsynced,
                "{key:?} {:?}",
                e.state
            );
            assert_eq!(
                self.groups.progress_notify.contains(key),
                e.watcher.progress_notify
            );
        }
        assert_eq!(
            self.groups.synced.len(),
            synced,
            "the synced group holds extras"
        );
        assert!(
            self.groups
                .unsynced
                .iter()
                .all(|k| self.watchers.contains_key(k))
        );
        assert!(
            self.groups
                .progress_notify
                .iter()
                .all(|k| self.watchers.contains_key(k))
        );
    }

    /// The store was replaced by a leader's image at `revision` (a snapshot install,
    /// docs/snapshots.md §2): the revisions between the hub's current one and `revision` were
    /// never applied here one by one, so every synced watcher becomes unsynced at its next
    /// revision and reads them from the new store's history (or is canceled with the compact
    /// revision if that history is gone, as etcd's watchers are after a restore). A revision
    /// at or below the current one changes nothing.
    pub fn restored(&mut self, revision: i64) {
        if revision <= self.current_revision {
            return;
        }
        self.unsync_all();
        self.current_revision = revision;
    }

    /// Every synced watcher becomes unsynced at its next revision, to read what follows from
    /// history. Only for a store answer that reports a revision the hub never saw applied
    /// (see [`Hub::history`]): then the implicit next revision of the synced watchers would
    /// jump past revisions they never got. O(watchers), on a path the FIFO mailbox rules out.
    fn unsync_all(&mut self) {
        for (key, e) in &mut self.watchers {
            if e.state == SyncState::Synced {
                self.groups
                    .set(*key, e, SyncState::Unsynced, self.current_revision);
            }
        }
    }
}

/// Splits revision-ordered `events` after their first `revisions_max` distinct revisions:
/// the events kept, and the revision of the first one left out (etcd `eventBatch.add`, which
/// counts the revisions of a watcher's range before its NOPUT / NODELETE filters).
fn first_revisions(mut events: Vec<Event>, revisions_max: usize) -> (Vec<Event>, Option<i64>) {
    let rev = |e: &Event| e.kv.as_ref().map_or(0, |kv| kv.mod_revision);
    let mut revisions = 0;
    let mut last = None;
    for (i, e) in events.iter().enumerate() {
        if last != Some(rev(e)) {
            revisions += 1;
            last = Some(rev(e));
            if revisions > revisions_max {
                let more_rev = rev(e);
                events.truncate(i);
                return (events, Some(more_rev));
            }
        }
    }
    (events, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::etcdserverpb::watch_create_request::FilterType;
    use crate::pb::mvccpb::{KeyValue, event::EventType};

    fn put(key: &str, rev: i64, prev: Option<i64>) -> Event {
        Event {
            r#type: EventType::Put as i32,
            kv: Some(KeyValue {
                key: key.into(),
                mod_revision: rev,
                create_revision: prev.map_or(rev, |_| 2),
                version: 1,
                value: b"v".to_vec(),
                lease: 0,
            }),
            prev_kv: prev.map(|p| KeyValue {
                key: key.into(),
                mod_revision: p,
                ..Default::default()
            }),
        }
    }

    fn del(key: &str, rev: i64) -> Event {
        Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                key: key.into(),
                mod_revision: rev,
                ..Default::default()
            }),
            prev_kv: Some(KeyValue {
                key: key.into(),
                ..Default::default()
            }),
        }
    }

    fn create(key: &str, range_end: &str, start_revision: i64) -> WatchCreateRequest {
        WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            start_revision,
            ..Default::default()
        }
    }

    fn revs(d: &Delivery) -> Vec<i64> {
        d.response
            .events
            .iter()
            .map(|e| e.kv.as_ref().unwrap().mod_revision)
            .collect()
    }

    #[test]
    fn created_response_carries_current_revision_and_auto_ids_skip_chosen_ones() {
        let mut hub = Hub::new(5);
        hub.open_stream(1);
        let mut chosen = create("a", "", 0);
        chosen.watch_id = 1;
        let r = hub.create(1, &chosen);
        assert_eq!((r.watch_id, r.created, r.canceled), (1, true, false));
        assert_eq!(r.header.unwrap().revision, 5);
        assert_eq!(hub.create(1, &create("a", "", 0)).watch_id, 0);
        assert_eq!(
            hub.create(1, &create("a", "", 0)).watch_id,
            2,
            "skips the client's 1"
        );
        let dup = hub.create(1, &chosen);
        assert_eq!(
            (
                dup.watch_id,
                dup.created,
                dup.canceled,
                dup.cancel_reason.as_str()
            ),
            (-1, true, true, DUPLICATE_WATCH_ID)
        );
        let empty = hub.create(1, &create("b", "a", 0));
        assert_eq!(empty.cancel_reason, EMPTY_WATCHER_RANGE);
        assert_eq!(hub.watcher_count(), 3);
    }

    #[test]
    fn live_events_match_range_filters_and_strip_prev_kv() {
        let mut hub = Hub::new(1);
        hub.open_stream(7);
        hub.create(7, &create("a", "", 0)); // id 0: one key
        let mut prefix = create("p/", "p0", 0); // id 1: prefix with prev_kv
        prefix.prev_kv = true;
        hub.create(7, &prefix);
        let mut no_put = create("\0", "\0", 0); // id 2: every key, deletes only
        no_put.filters = vec![FilterType::Noput as i32];
        hub.create(7, &no_put);
        let out = hub.apply(
            2,
            &[put("a", 2, Some(1)), put("p/x", 2, Some(1)), del("q", 2)],
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].watch_id, 0);
        assert_eq!(out[0].response.events.len(), 1);
        assert_eq!(out[0].response.events[0].prev_kv, None, "not asked for");
        assert_eq!(out[0].response.header.as_ref().unwrap().revision, 2);
        assert!(out[1].response.events[0].prev_kv.is_some());
        assert_eq!(out[1].response.events[0].kv.as_ref().unwrap().key, b"p/x");
        assert_eq!(out[2].response.events.len(), 1);
        assert_eq!(out[2].response.events[0].r#type, EventType::Delete as i32);
        assert!(hub.apply(2, &[put("a", 2, None)]).is_empty(), "no replays");
    }

    #[test]
    fn cancel_and_close_stream_free_watchers() {
        let mut hub = Hub::new(1);
        hub.open_stream(1);
        hub.open_stream(2);
        hub.create(1, &create("a", "", 0));
        hub.create(1, &create("b", "", 0));
        hub.create(2, &create("a", "", 0));
        let r = hub.cancel(1, 0).unwrap();
        assert!(r.canceled);
        assert_eq!(hub.cancel(1, 0), None);
        assert_eq!(hub.close_stream(1), 1);
        assert_eq!(hub.watcher_count(), 1);
        assert_eq!(hub.apply(2, &[put("a", 2, None)])[0].stream, 2);
    }

    #[test]
    fn history_then_live_has_no_gap_and_no_duplicate_at_the_seam() {
        let mut hub = Hub::new(4);
        hub.open_stream(1);
        hub.create(1, &create("a", "", 2)); // unsynced from 2
        let f = hub.fetches(|_| true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].from_rev, 2);
        assert!(hub.fetches(|_| true).is_empty(), "one fetch outstanding");
        // Revision 5 is applied before the store's history answer (which ended at 4).
        assert!(
            hub.apply(5, &[put("a", 5, None)]).is_empty(),
            "skipped while fetching"
        );
        let d = hub
            .history(
                1,
                0,
                f[0].generation,
                History::Events {
                    revision: 4,
                    events: vec![put("a", 2, None), put("a", 4, None)],
                },
            )
            .unwrap();
        assert_eq!(revs(&d), vec![2, 4]);
        let f = hub.fetches(|_| true);
        assert_eq!(f[0].from_rev, 5, "fetches again: the hub saw revision 5");
        let d = hub
            .history(
                1,
                0,
                f[0].generation,
                History::Events {
                    revision: 5,
                    events: vec![put("a", 5, None)],
                },
            )
            .unwrap();
        assert_eq!(revs(&d), vec![5]);
        let live = hub.apply(6, &[put("a", 6, None)]);
        assert_eq!(revs(&live[0]), vec![6], "synced now");
    }

    #[test]
    fn history_comes_in_batches_of_at_most_1000_revisions() {
        let n = HISTORY_BATCH_REVISIONS_MAX as i64 + 10;
        let mut hub = Hub::new(n + 1);
        hub.open_stream(1);
        let mut req = create("a", "", 2);
        req.filters = vec![FilterType::Noput as i32];
        hub.create(1, &req);
        // Revisions 2..=n+1 put "a"; one more key out of range at each of the first ten.
        let history: Vec<Event> = (2..=n + 1)
            .flat_map(|r| {
                let mut evs = vec![if r == n + 1 {
                    del("a", r)
                } else {
                    put("a", r, None)
                }];
                if r < 12 {
                    evs.push(put("b", r, None));
                }
                evs
            })
            .collect();
        let f = hub.fetches(|_| true);
        let events = History::Events {
            revision: n + 1,
            events: history.clone(),
        };
        // NOPUT filters every event of the first batch, yet its revisions count (etcd).
        assert_eq!(hub.history(1, 0, f[0].generation, events), None);
        let f2 = hub.fetches(|_| true);
        assert_eq!(
            (f[0].from_rev, f2[0].from_rev),
            (2, 2 + HISTORY_BATCH_REVISIONS_MAX as i64)
        );
        let rest = history
            .into_iter()
            .filter(|e| e.kv.as_ref().unwrap().mod_revision >= f2[0].from_rev)
            .collect();
        let d = hub
            .history(
                1,
                0,
                f2[0].generation,
                History::Events {
                    revision: n + 1,
                    events: rest,
                },
            )
            .unwrap();
        assert_eq!(revs(&d), vec![n + 1], "the delete, last");
        assert!(hub.fetches(|_| true).is_empty(), "synced");
    }

    #[test]
    fn stale_history_for_a_cancelled_and_recreated_watch_id_is_ignored() {
        let mut hub = Hub::new(4);
        hub.open_stream(1);
        let mut a = create("a", "", 2);
        a.watch_id = 5;
        hub.create(1, &a);
        let old = hub.fetches(|_| true);
        hub.cancel(1, 5);
        let mut b = create("b", "", 2);
        b.watch_id = 5;
        hub.create(1, &b);
        let new = hub.fetches(|_| true);
        // The answer read for the old watcher ("a") arrives first: it must not sync "b".
        let stale = History::Events {
            revision: 4,
            events: vec![put("a", 3, None)],
        };
        assert_eq!(hub.history(1, 5, old[0].generation, stale), None);
        assert!(hub.fetches(|_| true).is_empty(), "still fetching for b");
        let d = hub
            .history(
                1,
                5,
                new[0].generation,
                History::Events {
                    revision: 4,
                    events: vec![put("b", 2, None), put("b", 4, None)],
                },
            )
            .unwrap();
        assert_eq!(revs(&d), vec![2, 4]);
    }

    #[test]
    fn compacted_start_revision_cancels_with_compact_revision() {
        let mut hub = Hub::new(10);
        hub.open_stream(1);
        hub.create(1, &create("a", "", 2));
        let f = hub.fetches(|_| true);
        let d = hub
            .history(
                1,
                0,
                f[0].generation,
                History::Compacted {
                    compact_revision: 6,
                },
            )
            .unwrap();
        assert_eq!(
            (d.response.compact_revision, d.response.canceled),
            (6, true)
        );
        assert_eq!(hub.watcher_count(), 0);
    }

    #[test]
    fn parked_watcher_catches_up_only_when_its_stream_has_room() {
        let mut hub = Hub::new(1);
        hub.open_stream(1);
        hub.open_stream(2);
        hub.create(1, &create("a", "", 0));
        hub.create(2, &create("a", "", 0));
        let out = hub.apply(2, &[put("a", 2, None)]);
        hub.park(out[0].stream, out[0].watch_id, out[0].resume_rev);
        let out = hub.apply(3, &[put("a", 3, None)]);
        assert_eq!(out.len(), 1, "only the synced watcher of stream 2");
        assert_eq!(out[0].stream, 2);
        assert!(hub.fetches(|s| s != 1).is_empty(), "stream 1 still full");
        let f = hub.fetches(|_| true);
        assert_eq!((f[0].stream, f[0].from_rev), (1, 2));
    }

    #[test]
    fn future_start_revision_waits_synced() {
        let mut hub = Hub::new(3);
        hub.open_stream(1);
        hub.create(1, &create("a", "", 5));
        assert!(hub.fetches(|_| true).is_empty());
        assert!(hub.apply(4, &[put("a", 4, None)]).is_empty());
        assert_eq!(revs(&hub.apply(5, &[put("a", 5, None)])[0]), vec![5]);
    }

    #[test]
    fn progress_notify_goes_to_idle_synced_watchers_that_asked() {
        let mut hub = Hub::new(3);
        hub.open_stream(1);
        let mut req = create("a", "", 0);
        req.progress_notify = true;
        hub.create(1, &req); // 0: asked
        hub.create(1, &create("a", "", 0)); // 1: did not ask
        req.key = b"b".to_vec();
        hub.create(1, &req); // 2: asked, will be busy
        let ticks = hub.progress_tick();
        assert_eq!(
            ticks.iter().map(|d| d.watch_id).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert!(ticks[0].response.events.is_empty());
        assert_eq!(ticks[0].response.header.as_ref().unwrap().revision, 3);
        hub.apply(4, &[put("b", 4, None)]);
        let ticks = hub.progress_tick();
        assert_eq!(
            ticks.iter().map(|d| d.watch_id).collect::<Vec<_>>(),
            vec![0],
            "2 got events since the last tick"
        );
        assert_eq!(ticks[0].response.header.as_ref().unwrap().revision, 4);
    }

    #[test]
    fn progress_only_when_all_synced() {
        let mut hub = Hub::new(3);
        hub.open_stream(1);
        hub.create(1, &create("a", "", 0));
        assert_eq!(hub.progress(1).unwrap().header.unwrap().revision, 3);
        hub.create(1, &create("a", "", 1));
        assert_eq!(hub.progress(1), None);
    }

    /// What `apply` of one event on `key` delivers to: (stream, watch id) pairs, and how many
    /// watchers it looked at.
    fn hits(hub: &mut Hub, key: &str) -> (Vec<(StreamId, i64)>, u64) {
        let before = hub.watchers_examined();
        let rev = hub.current_revision() + 1;
        let out = hub.apply(rev, &[put(key, rev, None)]);
        let ids = out.iter().map(|d| (d.stream, d.watch_id)).collect();
        (ids, hub.watchers_examined() - before)
    }

    #[test]
    fn index_matches_key_prefix_from_key_and_range_watchers_by_their_keys_only() {
        let mut hub = Hub::new(1);
        hub.open_stream(1);
        hub.open_stream(2);
        hub.create(1, &create("a", "", 0)); // (1, 0): one key
        hub.create(1, &create("p/", "p0", 0)); // (1, 1): prefix p/
        hub.create(2, &create("m", "\0", 0)); // (2, 0): every key from m
        hub.create(2, &create("b", "d", 0)); // (2, 1): [b, d)
        hub.create(2, &create("a", "", 0)); // (2, 2): one key, like (1, 0)
        assert_eq!(hits(&mut hub, "a"), (vec![(1, 0), (2, 2)], 2));
        assert_eq!(
            hits(&mut hub, "a0"),
            (vec![], 0),
            "no prefix match for a key"
        );
        assert_eq!(hits(&mut hub, "c"), (vec![(2, 1)], 1));
        assert_eq!(hits(&mut hub, "d"), (vec![], 0), "range end excluded");
        assert_eq!(hits(&mut hub, "p/x"), (vec![(1, 1), (2, 0)], 2));
        assert_eq!(hits(&mut hub, "p0"), (vec![(2, 0)], 1), "past the prefix");
        assert_eq!(hits(&mut hub, "zz"), (vec![(2, 0)], 1));
        // One revision with events on several keys: one delivery per watcher, in
        // (stream, watch id) order, each with its own events in revision order.
        let out = hub.apply(
            9,
            &[put("p/y", 9, None), put("c", 9, None), put("a", 9, None)],
        );
        let got: Vec<_> = out
            .iter()
            .map(|d| (d.stream, d.watch_id, d.response.events.len()))
            .collect();
        assert_eq!(
            got,
            vec![(1, 0, 1), (1, 1, 1), (2, 0, 1), (2, 1, 1), (2, 2, 1)]
        );
    }

    #[test]
    fn cancelled_closed_and_parked_watchers_are_not_matched() {
        let mut hub = Hub::new(1);
        hub.open_stream(1);
        hub.open_stream(2);
        hub.create(1, &create("a", "", 0)); // (1, 0)
        hub.create(1, &create("a", "b", 0)); // (1, 1)
        hub.create(1, &create("a", "\0", 0)); // (1, 2)
        hub.create(2, &create("a", "", 0)); // (2, 0)
        assert_eq!(hits(&mut hub, "a").1, 4);
        hub.cancel(1, 1);
        assert_eq!(hits(&mut hub, "a"), (vec![(1, 0), (1, 2), (2, 0)], 3));
        hub.park(1, 2, 4);
        assert_eq!(hits(&mut hub, "a"), (vec![(1, 0), (2, 0)], 2));
        hub.close_stream(2);
        assert_eq!(hits(&mut hub, "a"), (vec![(1, 0)], 1));
        // The parked one resyncs from history and is matched again.
        let f = hub.fetches(|_| true);
        assert_eq!((f.len(), f[0].watch_id, f[0].from_rev), (1, 2, 4));
        let history = History::Events {
            revision: 5,
            events: vec![put("a", 4, None), put("a", 5, None)],
        };
        assert_eq!(
            revs(&hub.history(1, 2, f[0].generation, history).unwrap()),
            vec![4, 5]
        );
        assert_eq!(hits(&mut hub, "a"), (vec![(1, 0), (1, 2)], 2));
    }

    #[test]
    fn a_watcher_created_at_an_older_revision_is_matched_only_once_synced() {
        let mut hub = Hub::new(5);
        hub.open_stream(1);
        hub.create(1, &create("a", "", 3));
        assert_eq!(
            hits(&mut hub, "a"),
            (vec![], 0),
            "unsynced: not in the index"
        );
        let f = hub.fetches(|_| true);
        assert_eq!(
            hits(&mut hub, "a"),
            (vec![], 0),
            "fetching: not in the index"
        );
        let history = History::Events {
            revision: 7,
            events: vec![put("a", 3, None), put("a", 6, None), put("a", 7, None)],
        };
        assert_eq!(
            revs(&hub.history(1, 0, f[0].generation, history).unwrap()),
            vec![3, 6, 7]
        );
        assert_eq!(hits(&mut hub, "a"), (vec![(1, 0)], 1), "synced");
    }

    #[test]
    fn one_key_changed_among_10k_watchers_visits_only_its_watcher() {
        let mut hub = Hub::new(1);
        for s in 0..10 {
            hub.open_stream(s);
        }
        for i in 0..10_000 {
            hub.create(i % 10, &create(&format!("k{i}"), "", 0));
        }
        assert_eq!(hits(&mut hub, "k4242"), (vec![(2, 424)], 1));
        assert_eq!(hits(&mut hub, "other"), (vec![], 0));
        // Untouched watchers still get the next revision that concerns them, and one parked
        // after many revisions resumes at the revision it missed.
        let rev = hub.current_revision() + 1;
        let out = hub.apply(rev, &[put("k7", rev, None)]);
        assert_eq!(
            (out[0].watch_id, out[0].resume_rev, revs(&out[0])),
            (0, rev, vec![rev])
        );
        hub.park(out[0].stream, out[0].watch_id, out[0].resume_rev);
        assert_eq!(hub.fetches(|_| true)[0].from_rev, rev);
    }

    #[test]
    fn implicit_next_revision_is_written_back_when_a_watcher_leaves_synced() {
        let mut hub = Hub::new(1);
        hub.open_stream(1);
        let mut req = create("a", "", 0);
        req.progress_notify = true;
        hub.create(1, &req); // 0: next revision 2, then implicit
        hub.create(1, &create("f", "", 9)); // 1: a future start, synced, waits for 9
        for rev in 2..=5 {
            assert!(hub.apply(rev, &[put("b", rev, None)]).is_empty());
        }
        // A progress response that finds the stream full parks the watcher at current + 1:
        // it is back in sync at once, nothing to fetch.
        let tick = hub.progress_tick();
        assert_eq!((tick[0].watch_id, tick[0].resume_rev), (0, 6));
        hub.park(1, 0, tick[0].resume_rev);
        assert!(hub.fetches(|_| true).is_empty());
        assert_eq!(hits(&mut hub, "a"), (vec![(1, 0)], 1), "synced again");
        // The future watcher is indexed, skipped below its start, delivered from it on.
        for rev in 7..=8 {
            assert!(hub.apply(rev, &[put("f", rev, None)]).is_empty());
        }
        let out = hub.apply(9, &[put("f", 9, None)]);
        assert_eq!((out[0].watch_id, out[0].resume_rev), (1, 9));
        let out = hub.apply(12, &[put("f", 12, None)]);
        assert_eq!(
            out[0].resume_rev, 10,
            "its next revision since 9: current + 1"
        );
    }

    #[test]
    fn history_past_the_hub_revision_unsyncs_the_synced_watchers_instead_of_skipping() {
        // The FIFO mailbox rules this out; the core does not rely on it.
        let mut hub = Hub::new(4);
        hub.open_stream(1);
        hub.create(1, &create("a", "", 0)); // 0: synced, next revision 5
        hub.create(1, &create("b", "", 2)); // 1: unsynced
        let f = hub.fetches(|_| true);
        let history = History::Events {
            revision: 6,
            events: vec![put("b", 3, None)],
        };
        assert_eq!(
            revs(&hub.history(1, 1, f[0].generation, history).unwrap()),
            vec![3]
        );
        assert_eq!(hub.current_revision(), 6);
        let f = hub.fetches(|_| true);
        assert_eq!(
            (f.len(), f[0].watch_id, f[0].from_rev),
            (1, 0, 5),
            "reads 5 and 6"
        );
        assert_eq!(hits(&mut hub, "b"), (vec![(1, 1)], 1));
    }

    /// Timing by hand, never asserted (`cargo test --release -p ferrokv --lib watch::hub --
    /// --ignored --nocapture`): 1000 `apply` calls, one event each, with 10,000 synced
    /// watchers on distinct keys; the event hits one watched key, then a key nobody watches;
    /// then the same with 10,000 prefix watchers (the interval tree's share).
    #[test]
    #[ignore]
    fn bench_apply_with_10k_watchers_on_distinct_keys() {
        const WATCHERS: usize = 10_000;
        const APPLIES: i64 = 1000;
        let key = |i: usize| format!("key/{i:05}");
        let scenarios = [
            ("watched key", false, true),
            ("unwatched key", false, false),
            ("prefix watchers, watched key", true, true),
        ];
        for (label, prefixes, watched) in scenarios {
            let mut hub = Hub::new(1);
            for s in 0..10 {
                hub.open_stream(s);
            }
            for i in 0..WATCHERS {
                let req = if prefixes {
                    let prefix = format!("{}/", key(i));
                    let end = crate::mvcc::index::prefix_range_end(prefix.as_bytes());
                    create(&prefix, std::str::from_utf8(&end).unwrap(), 0)
                } else {
                    create(&key(i), "", 0)
                };
                hub.create((i % 10) as StreamId, &req);
            }
            let events: Vec<Vec<Event>> = (0..APPLIES)
                .map(|r| {
                    let k = match (watched, prefixes) {
                        (true, false) => key((r as usize * 7919) % WATCHERS),
                        (true, true) => format!("{}/x", key((r as usize * 7919) % WATCHERS)),
                        (false, _) => format!("other/{r}"),
                    };
                    vec![put(&k, r + 2, None)]
                })
                .collect();
            let started = std::time::Instant::now();
            let mut delivered = 0;
            for (r, evs) in (2..).zip(&events) {
                delivered += hub.apply(r, evs).len();
            }
            let elapsed = started.elapsed();
            println!(
                "{APPLIES} applies, {WATCHERS} watchers, {label}: {elapsed:?} \
                 ({:.1} µs per apply, {delivered} deliveries)",
                elapsed.as_secs_f64() * 1e6 / APPLIES as f64
            );
        }
    }
}
