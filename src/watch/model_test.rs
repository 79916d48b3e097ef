//! Property test (issue 3): for random Put / DeleteRange / Txn sequences applied to a real
//! [`Kv`], the events every watch receives equal the store's history of its range.
//!
//! A [`Hub`] is driven the way the actors drive it: one FIFO mailbox carrying `Applied` and
//! history answers; the store answering fetches at random points; streams turning full and
//! parking watchers; history in small batches (so a watcher catches up over several fetches);
//! watchers created at random start revisions with random filters and `prev_kv`. After the
//! random phase, a liveness phase drains everything.
//!
//! The oracle is independent of the watch code: every event the store's write transactions
//! produced (`WriteTxn::commit`), filtered by a naive reading of etcd's range rules. Checks,
//! per watch: each matching event from its start revision delivered exactly once, in order,
//! with no gap (history/live seam, parking, batching); NOPUT / NODELETE honoured; `prev_kv`
//! only when asked; the events of one revision in one response.
//!
//! `PROPTEST_CASES` sets the number of cases (default 64); a failure is shrunk to a short
//! action list and printed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::hub::{Delivery, Fetch, History, Hub, StreamId};
use crate::mvcc::{Kv, MemBackend};
use crate::pb::etcdserverpb::WatchCreateRequest;
use crate::pb::etcdserverpb::watch_create_request::FilterType;
use crate::pb::mvccpb::{Event, event::EventType};

const KEYS: [&[u8]; 5] = [b"a", b"b", b"ba", b"c", b"d"];
/// `(key, range_end)` choices: one key, a prefix, from-key, everything.
const RANGES: [(&[u8], &[u8]); 5] = [
    (b"a", b""),
    (b"b", b"c"),
    (b"ba", b""),
    (b"b", b"\0"),
    (b"\0", b"\0"),
];
const STREAMS: StreamId = 3;
/// Write transactions per case at most (each one store revision, or none if it deletes
/// nothing).
const WRITES_MAX: usize = 60;
const WATCHES_MAX: usize = 12;

#[derive(Clone, Debug)]
enum Action {
    /// Put `KEYS[key % len]`.
    Put { key: usize, value: u8 },
    /// DeleteRange `RANGES[range % len]`.
    Delete { range: usize },
    /// One txn putting each key whose bit is set in `keys`: one revision, several events.
    Txn { keys: u8, value: u8 },
    /// The store answers the oldest outstanding fetch (into the mailbox).
    AnswerFetch,
    /// The hub takes the next message of its mailbox.
    Deliver,
    /// A watch on stream `1 + stream % STREAMS`; `start` picks a start revision in
    /// `0 ..= current + 2`.
    Create {
        stream: StreamId,
        range: usize,
        start: u16,
        prev_kv: bool,
        no_put: bool,
        no_delete: bool,
    },
    /// Cancel the `pick % len`-th watch not cancelled yet: it must get nothing after.
    Cancel { pick: usize },
    /// A stream's client stops / resumes reading.
    ToggleFull { stream: StreamId },
    /// The hub's periodic resync: fetches for unsynced watchers of streams with room.
    Resync,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(key, value)| Action::Put { key, value }),
        1 => any::<usize>().prop_map(|range| Action::Delete { range }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(keys, value)| Action::Txn { keys, value }),
        3 => Just(Action::AnswerFetch),
        3 => Just(Action::Deliver),
        2 => (any::<StreamId>(), any::<usize>(), any::<u16>(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(stream, range, start, prev_kv, no_put, no_delete)| Action::Create {
                stream, range, start, prev_kv, no_put, no_delete,
            }),
        1 => any::<usize>().prop_map(|pick| Action::Cancel { pick }),
        1 => any::<StreamId>().prop_map(|stream| Action::ToggleFull { stream }),
        3 => Just(Action::Resync),
    ]
}

enum Mail {
    Applied(i64, Vec<Event>),
    History(StreamId, i64, u64, History),
}

struct Watch {
    request: WatchCreateRequest,
    /// First revision it must see.
    start: i64,
    /// The events of each response, in order.
    responses: Vec<Vec<Event>>,
    /// Cancelled: what it got must be a prefix of what it was due, and nothing may follow.
    cancelled: bool,
}

/// The harness: a real store, the hub core, and the actors' plumbing as plain queues.
struct Model {
    kv: Kv,
    hub: Hub,
    /// Every event the store's writes produced, in order.
    truth: Vec<Event>,
    mailbox: VecDeque<Mail>,
    fetches: VecDeque<Fetch>,
    full: BTreeSet<StreamId>,
    watches: BTreeMap<(StreamId, i64), Watch>,
    raft_index: u64,
}

impl Model {
    fn new(history_batch_revisions_max: usize) -> Self {
        let kv = Kv::open(MemBackend::new()).unwrap();
        let mut hub = Hub::new(kv.current_revision())
            .with_history_batch_revisions_max(history_batch_revisions_max);
        for s in 1..=STREAMS {
            hub.open_stream(s);
        }
        Model {
            kv,
            hub,
            truth: Vec::new(),
            mailbox: VecDeque::new(),
            fetches: VecDeque::new(),
            full: BTreeSet::new(),
            watches: BTreeMap::new(),
            raft_index: 0,
        }
    }

    /// One write transaction; its events go to the truth and (as `Applied`) to the mailbox.
    fn write(&mut self, action: &Action) {
        if self.raft_index as usize >= WRITES_MAX {
            return;
        }
        self.raft_index += 1;
        let mut txn = self.kv.write(self.raft_index).unwrap();
        match *action {
            Action::Put { key, value } => {
                txn.put(KEYS[key % KEYS.len()], vec![value], 0).unwrap();
            }
            Action::Delete { range } => {
                let (k, e) = RANGES[range % RANGES.len()];
                txn.delete_range(k, e).unwrap();
            }
            Action::Txn { keys, value } => {
                for (i, k) in KEYS.iter().enumerate() {
                    if keys & (1 << i) != 0 {
                        txn.put(k, vec![value, i as u8], 0).unwrap();
                    }
                }
            }
            _ => unreachable!("not a write"),
        }
        let events = txn.commit().unwrap();
        if !events.is_empty() {
            self.truth.extend(events.iter().cloned());
            let revision = self.kv.current_revision();
            self.mailbox.push_back(Mail::Applied(revision, events));
        }
    }

    /// Queues `d` unless its stream is full, in which case the watcher is parked (as the
    /// actor does).
    fn deliver(&mut self, d: Delivery) {
        if self.full.contains(&d.stream) {
            self.hub.park(d.stream, d.watch_id, d.resume_rev);
        } else {
            let w = self.watches.get_mut(&(d.stream, d.watch_id)).unwrap();
            assert!(
                !w.cancelled,
                "a delivery for cancelled watch {}/{}",
                d.stream, d.watch_id
            );
            w.responses.push(d.response.events);
        }
    }

    fn answer_fetch(&mut self) {
        if let Some(f) = self.fetches.pop_front() {
            let events = self.kv.history(&f.key, &f.range_end, f.from_rev, f.prev_kv);
            let h = History::Events {
                revision: self.kv.current_revision(),
                events: events.unwrap(),
            };
            self.mailbox
                .push_back(Mail::History(f.stream, f.watch_id, f.generation, h));
        }
    }

    /// The hub takes one message; false when the mailbox was empty.
    fn take_mail(&mut self) -> bool {
        match self.mailbox.pop_front() {
            Some(Mail::Applied(rev, events)) => {
                for d in self.hub.apply(rev, &events) {
                    self.deliver(d);
                }
            }
            Some(Mail::History(s, id, g, h)) => {
                if let Some(d) = self.hub.history(s, id, g, h) {
                    self.deliver(d);
                }
            }
            None => return false,
        }
        true
    }

    fn resync(&mut self) {
        let full = &self.full;
        self.fetches
            .extend(self.hub.fetches(|s| !full.contains(&s)));
    }

    fn create(&mut self, action: &Action) {
        let Action::Create {
            stream,
            range,
            start,
            prev_kv,
            no_put,
            no_delete,
        } = *action
        else {
            unreachable!("not a create")
        };
        if self.watches.len() >= WATCHES_MAX {
            return;
        }
        let stream = 1 + stream % STREAMS;
        let (key, range_end) = RANGES[range % RANGES.len()];
        let current = self.hub.current_revision();
        let mut filters = Vec::new();
        if no_put {
            filters.push(FilterType::Noput as i32);
        }
        if no_delete {
            filters.push(FilterType::Nodelete as i32);
        }
        let request = WatchCreateRequest {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            start_revision: i64::from(start) % (current + 3),
            prev_kv,
            filters,
            ..Default::default()
        };
        let created = self.hub.create(stream, &request);
        assert!(created.created && !created.canceled);
        let start = if request.start_revision == 0 {
            current + 1
        } else {
            request.start_revision
        };
        let watch = Watch {
            request,
            start,
            responses: Vec::new(),
            cancelled: false,
        };
        self.watches.insert((stream, created.watch_id), watch);
    }

    fn step(&mut self, action: &Action) {
        match action {
            Action::Put { .. } | Action::Delete { .. } | Action::Txn { .. } => self.write(action),
            Action::AnswerFetch => self.answer_fetch(),
            Action::Deliver => {
                self.take_mail();
            }
            Action::Create { .. } => self.create(action),
            Action::ToggleFull { stream } => {
                let s = 1 + stream % STREAMS;
                if !self.full.remove(&s) {
                    self.full.insert(s);
                }
            }
            Action::Resync => self.resync(),
            Action::Cancel { pick } => {
                let live: Vec<_> = self
                    .watches
                    .iter()
                    .filter(|(_, w)| !w.cancelled)
                    .map(|(k, _)| *k)
                    .collect();
                if !live.is_empty() {
                    let (stream, id) = live[pick % live.len()];
                    assert!(self.hub.cancel(stream, id).is_some());
                    self.watches.get_mut(&(stream, id)).unwrap().cancelled = true;
                }
            }
        }
        self.hub.check_invariants();
    }

    /// Liveness: streams drain, the store answers, the hub catches everyone up.
    fn drain(&mut self) {
        self.full.clear();
        loop {
            self.resync();
            self.answer_fetch();
            if !self.take_mail() && self.fetches.is_empty() {
                break;
            }
        }
    }
}

/// etcd's range rules, read naively: empty `range_end` = the one key, `"\0"` = every key ≥
/// `key`, otherwise `[key, range_end)`.
fn in_range(req: &WatchCreateRequest, key: &[u8]) -> bool {
    match req.range_end.as_slice() {
        [] => key == req.key.as_slice(),
        [0] => key >= req.key.as_slice(),
        end => key >= req.key.as_slice() && key < end,
    }
}

/// What a watch must receive: every event of its range from its start revision, filters
/// applied, `prev_kv` stripped unless asked for.
fn expected(truth: &[Event], w: &Watch) -> Vec<Event> {
    let has = |f: FilterType| w.request.filters.contains(&(f as i32));
    truth
        .iter()
        .filter(|e| {
            let kv = e.kv.as_ref().unwrap();
            let filtered = if e.r#type == EventType::Put as i32 {
                has(FilterType::Noput)
            } else {
                has(FilterType::Nodelete)
            };
            kv.mod_revision >= w.start && in_range(&w.request, &kv.key) && !filtered
        })
        .map(|e| {
            let mut e = e.clone();
            if !w.request.prev_kv {
                e.prev_kv = None;
            }
            e
        })
        .collect()
}

fn check(model: &Model) -> Result<(), TestCaseError> {
    for ((stream, id), w) in &model.watches {
        let got: Vec<Event> = w.responses.iter().flatten().cloned().collect();
        let mut want = expected(&model.truth, w);
        if w.cancelled {
            want.truncate(got.len());
        }
        prop_assert_eq!(got, want, "watch {}/{} {:?}", stream, id, w.request);
        let mut seen = BTreeSet::new();
        for r in &w.responses {
            prop_assert!(!r.is_empty(), "watch {}/{}: an empty response", stream, id);
            let revs: BTreeSet<i64> = r
                .iter()
                .map(|e| e.kv.as_ref().unwrap().mod_revision)
                .collect();
            prop_assert!(
                seen.is_disjoint(&revs),
                "watch {}/{}: a revision split across responses",
                stream,
                id
            );
            seen.extend(revs);
        }
    }
    Ok(())
}

proptest! {
    // 64 cases per run unless PROPTEST_CASES asks for more (or fewer).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn watch_events_equal_the_store_history_of_their_range(
        history_batch_revisions_max in prop_oneof![1usize..4, Just(super::hub::HISTORY_BATCH_REVISIONS_MAX)],
        actions in proptest::collection::vec(action(), 1..400),
    ) {
        let mut model = Model::new(history_batch_revisions_max);
        for a in &actions {
            model.step(a);
        }
        model.drain();
        check(&model)?;
    }
}
