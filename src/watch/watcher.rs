//! One watch of a stream (etcd `mvcc.watcher`).

use crate::mvcc::index::KeyRange;
use crate::pb::etcdserverpb::WatchCreateRequest;
use crate::pb::etcdserverpb::watch_create_request::FilterType;
use crate::pb::mvccpb::{Event, event::EventType};

/// A watch on `[key, range_end)` (etcd's range rules: empty `range_end` = the one key, `"\0"`
/// = every key ≥ `key`).
///
/// Invariant: every event with `mod_revision <` its next revision that matches the watch has
/// been handed to the stream (or the watch was created after it); none at or above it has.
/// Its next revision is `next_rev`, except while the hub holds it synced (see the field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watcher {
    /// The client-visible id, unique within its stream (etcd `WatchID`).
    pub watch_id: i64,
    /// First key watched.
    pub key: Vec<u8>,
    /// End of the range (see the type docs).
    pub range_end: Vec<u8>,
    /// Keep each event's `prev_kv` (etcd `WatchCreateRequest.prev_kv`); stripped otherwise.
    pub prev_kv: bool,
    /// Leave out PUT events (filter NOPUT).
    pub no_put: bool,
    /// Leave out DELETE events (filter NODELETE).
    pub no_delete: bool,
    /// The next store revision whose events this watch must receive — while the watch is
    /// unsynced. While synced it is only a floor: the next revision is
    /// `max(next_rev, hub's current revision + 1)` (above the current revision only for a
    /// future `start_revision`), so applying a revision touches the watchers it concerns and
    /// no others. The hub writes the real value back when the watch leaves synced (parked,
    /// or unsynced by a history answer past the hub's revision; see [`super::hub`]).
    pub next_rev: i64,
    /// Send periodic empty responses while idle (etcd `WatchCreateRequest.progress_notify`).
    pub progress_notify: bool,
    /// Split responses above the size limit into fragments (etcd
    /// `WatchCreateRequest.fragment`; see [`super::fragment`]).
    pub fragment: bool,
}

impl Watcher {
    /// A watcher for `req` with id `watch_id`, expecting events from revision `next_rev` on.
    pub fn new(watch_id: i64, req: &WatchCreateRequest, next_rev: i64) -> Self {
        let has = |f: FilterType| req.filters.contains(&(f as i32));
        Watcher {
            watch_id,
            key: req.key.clone(),
            range_end: req.range_end.clone(),
            prev_kv: req.prev_kv,
            no_put: has(FilterType::Noput),
            no_delete: has(FilterType::Nodelete),
            next_rev,
            progress_notify: req.progress_notify,
            fragment: req.fragment,
        }
    }

    /// The key range as etcd reads it.
    pub fn range(&self) -> KeyRange<'_> {
        KeyRange::new(&self.key, &self.range_end)
    }

    /// True when `event` concerns a key of this watch and passes its filters.
    pub fn matches(&self, event: &Event) -> bool {
        let Some(kv) = &event.kv else { return false };
        let filtered = if event.r#type == EventType::Put as i32 {
            self.no_put
        } else {
            self.no_delete
        };
        !filtered && self.range().contains(&kv.key)
    }

    /// The events of `events` this watch receives, in order, with `prev_kv` stripped unless
    /// the watch asked for it.
    pub fn select<'a>(&self, events: impl IntoIterator<Item = &'a Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|e| self.matches(e))
            .map(|e| {
                let mut e = e.clone();
                if !self.prev_kv {
                    e.prev_kv = None;
                }
                e
            })
            .collect()
    }
}
