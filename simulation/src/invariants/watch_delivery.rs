//! **Watch delivery** (etcd's watch guarantees, API reference "Watch streams": *ordered* —
//! events by revision; *unique* — an event never appears twice; *reliable* — a sequence of
//! events is never dropped with a gap; and `mvcc.watchableStore`: a watch whose start was
//! compacted is canceled with `compact_revision`).
//!
//! The oracle is the committed sequence replayed through [`KvModel`]: the events every
//! revision produced, independent of any node's store or hub. Each watch's client keeps
//! `through`, the revision up to which it holds every matching event. A response with events
//! and `header.revision = H` must carry *exactly* the model's matching events of revisions
//! `(through, H]`, in order, with `prev_kv` as asked — which rules out a duplicate, a revision
//! out of order, a gap, and one revision's events split over two responses — and then
//! `through = H`. A progress response at `P` claims every watch of its stream is complete
//! through `P`: the model must have no matching event in `(through, P]`. At the end, with
//! every watcher synced, nothing may remain undelivered up to the node's revision.
//!
//! History reads are checked where they happen: `Kv::history` answers `Compacted` exactly
//! when the start lies below the model's compacted revision at the node's applied index, and
//! the store's compacted revision is the model's. Compaction keeps etcd's edge: a history
//! read from the compacted revision itself lacks a DELETE at that revision (its tombstone was
//! compacted away) and the `prev_kv` of a change at it (reading one revision earlier fails).

use ferrokv::pb::etcdserverpb::WatchResponse;
use ferrokv::pb::etcdserverpb::watch_create_request::FilterType;
use ferrokv::pb::mvccpb::{Event, event::EventType};
use ferrokv::pb::peerpb::InternalRequest;
use ferrokv::raft::NodeId;
use ferrokv::watch::StreamId;
use prost::Message as _;
use std::collections::BTreeMap;

use super::{Check, History, Violation, violated};
use crate::oracle::{KvModel, watch_covers};
use crate::watch::WatchRecord;

const NAME: &str = "watch delivery (etcd watch guarantees)";

/// A response that came from a history read rather than live: where the read started and the
/// store's compacted revision when it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRead {
    /// First revision read (`Fetch::from_rev`).
    pub from_rev: i64,
    /// The store's compacted revision at the read.
    pub compact_revision: i64,
}

/// The committed sequence's events, replayed through the model as far as nodes applied.
#[derive(Debug)]
struct Oracle {
    model: KvModel,
    /// Committed entries replayed so far.
    replayed: usize,
    /// Every event, in revision (then change) order.
    events: Vec<Event>,
    /// `compact_at[i]`: the compacted revision after index `i` (index 0: none, -1).
    compact_at: Vec<i64>,
}

impl Default for Oracle {
    fn default() -> Self {
        Oracle {
            model: KvModel::default(),
            replayed: 0,
            events: Vec::new(),
            compact_at: vec![-1],
        }
    }
}

fn revision_of(e: &Event) -> i64 {
    e.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

impl Oracle {
    fn catch_up(&mut self, history: &History) -> Check {
        for c in &history.committed[self.replayed..] {
            self.replayed += 1;
            if !c.data.is_empty() {
                let request =
                    InternalRequest::decode(c.data.as_slice()).map_err(|e| Violation {
                        invariant: NAME,
                        detail: format!("committed entry {} does not decode: {e}", self.replayed),
                    })?;
                let events = self.model.apply_events(&request).map_err(|e| Violation {
                    invariant: NAME,
                    detail: format!("index {}: {e}", self.replayed),
                })?;
                self.events.extend(events);
            }
            if self.model.revision != c.revision {
                return violated(
                    "MVCC state agrees with the etcd KV model",
                    format!(
                        "after index {} the nodes are at revision {}, the model at {}",
                        self.replayed, c.revision, self.model.revision
                    ),
                );
            }
            self.compact_at.push(self.model.compact_revision);
        }
        Ok(())
    }

    /// The events a watch for `w` must receive for revisions `(after, through]`, as the
    /// response carries them; `read` is the history read the response comes from, `edges`
    /// the watch's history reads that started at or below the compacted revision.
    fn expected(
        &self,
        w: &WatchRecord,
        (after, through): (i64, i64),
        read: Option<HistoryRead>,
        edges: &[HistoryRead],
    ) -> Result<Vec<Event>, Violation> {
        if through > self.model.revision {
            return violated(
                NAME,
                format!(
                    "watch {} was told revision {through}, beyond every applied revision ({})",
                    w.client_id, self.model.revision
                ),
            )
            .map(|()| Vec::new());
        }
        let r = &w.request;
        let no_put = r.filters.contains(&(FilterType::Noput as i32));
        let no_delete = r.filters.contains(&(FilterType::Nodelete as i32));
        let lo = self.events.partition_point(|e| revision_of(e) <= after);
        let hi = self.events.partition_point(|e| revision_of(e) <= through);
        let mut out = Vec::new();
        for e in &self.events[lo.min(hi)..hi] {
            let kv = e.kv.as_ref().expect("model events carry kv");
            let is_put = e.r#type == EventType::Put as i32;
            if !watch_covers(&r.key, &r.range_end, &kv.key) || (is_put && no_put) {
                continue;
            }
            if !is_put && no_delete {
                continue;
            }
            // Compaction's edge for reads from the compacted revision itself (see the docs):
            // the tombstone is gone for every such read of this watch, whether or not it
            // produced a response; `prev_kv` only for the read this response comes from.
            let rev = kv.mod_revision;
            let below = |h: &HistoryRead| rev >= h.from_rev && rev <= h.compact_revision;
            if !is_put && edges.iter().any(below) {
                continue;
            }
            let mut e = e.clone();
            if !r.prev_kv || read.is_some_and(|h| below(&h)) {
                e.prev_kv = None;
            }
            out.push(e);
        }
        Ok(out)
    }
}

/// Checks what watch clients receive; see the module docs.
#[derive(Debug, Default)]
pub struct WatchDelivery {
    oracle: Oracle,
    /// Per watch `(stream, watch_id)`: its history reads from at or below the compacted
    /// revision, which miss the tombstones there.
    edges: BTreeMap<(StreamId, i64), Vec<HistoryRead>>,
}

fn describe(w: &WatchRecord) -> String {
    let r = &w.request;
    format!(
        "watch {} (n{} stream {} id {} on {:?}..{:?} start {} prev_kv {} filters {:?}, through {})",
        w.client_id,
        w.node,
        w.stream,
        w.watch_id,
        String::from_utf8_lossy(&r.key),
        String::from_utf8_lossy(&r.range_end),
        r.start_revision,
        r.prev_kv,
        r.filters,
        w.through
    )
}

fn summary(events: &[Event]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|e| {
            let kv = e.kv.as_ref();
            format!(
                "{}{}@{}",
                if e.r#type == EventType::Put as i32 {
                    "put "
                } else {
                    "del "
                },
                String::from_utf8_lossy(kv.map_or(&[][..], |kv| &kv.key)),
                revision_of(e)
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

impl WatchDelivery {
    /// A node read the history of watch `(stream, watch_id)` from `read.from_rev` at its
    /// applied index `applied_index`; the store was compacted at `read.compact_revision` and
    /// answered `Compacted` iff `compacted`.
    pub fn on_history_read(
        &mut self,
        history: &History,
        node: NodeId,
        applied_index: u64,
        watch: (StreamId, i64),
        read: HistoryRead,
        compacted: bool,
    ) -> Check {
        let HistoryRead {
            from_rev,
            compact_revision: kv_compact_revision,
        } = read;
        self.oracle.catch_up(history)?;
        let Some(&model) = self.oracle.compact_at.get(applied_index as usize) else {
            return violated(
                NAME,
                format!("n{node} applied {applied_index}, beyond the committed sequence"),
            );
        };
        if kv_compact_revision != model {
            return violated(
                "MVCC state agrees with the etcd KV model",
                format!(
                    "n{node} at applied index {applied_index} is compacted at {kv_compact_revision}, \
                     the model at {model}"
                ),
            );
        }
        if compacted != (from_rev < model) {
            return violated(
                NAME,
                format!(
                    "n{node}: a history read from revision {from_rev} with the store compacted at \
                     {model} answered compacted={compacted}"
                ),
            );
        }
        if !compacted && from_rev <= model {
            self.edges.entry(watch).or_default().push(read);
        }
        Ok(())
    }

    fn edges(&self, w: &WatchRecord) -> &[HistoryRead] {
        self.edges
            .get(&(w.stream, w.watch_id))
            .map_or(&[], Vec::as_slice)
    }

    /// A client read `response` for watch `w` (`read` says whether the node built it from a
    /// history read). Returns whether the watch ended (canceled).
    pub fn on_response(
        &mut self,
        history: &History,
        w: &mut WatchRecord,
        response: &WatchResponse,
        read: Option<HistoryRead>,
    ) -> Result<bool, Violation> {
        self.oracle.catch_up(history)?;
        let fail = |what: String| violated(NAME, format!("{}: {what}", describe(w)));
        if response.created {
            if w.created_seen || response.canceled || response.watch_id != w.watch_id {
                fail(format!("unexpected created response {response:?}"))?;
            }
            w.created_seen = true;
            return Ok(false);
        }
        if !w.created_seen {
            fail("a response before the created response".into())?;
        }
        if response.canceled {
            if response.compact_revision != 0 {
                let ok = read.is_some_and(|h| h.compact_revision == response.compact_revision)
                    && w.through + 1 < response.compact_revision;
                if !ok {
                    fail(format!(
                        "canceled as compacted at {} (history read {read:?}), though it still \
                         needed revision {} only",
                        response.compact_revision,
                        w.through + 1
                    ))?;
                }
            } else if !w.cancel_sent {
                fail("canceled without the client asking".into())?;
            }
            return Ok(true);
        }
        let header = response.header.as_ref().map_or(0, |h| h.revision);
        if response.events.is_empty() {
            fail(format!("an empty response at revision {header}"))?;
        }
        let expected = self
            .oracle
            .expected(w, (w.through, header), read, self.edges(w))?;
        if response.events != expected {
            let first_diff = response
                .events
                .iter()
                .zip(&expected)
                .find(|(g, e)| g != e)
                .map(|(g, e)| format!("; first difference: got {g:?}, expected {e:?}"))
                .unwrap_or_default();
            fail(format!(
                "response at revision {header} ({}) carries {}, but the committed history of its \
                 range in ({}, {header}] is {}{first_diff}",
                if read.is_some() {
                    "from history"
                } else {
                    "live"
                },
                summary(&response.events),
                w.through,
                summary(&expected)
            ))?;
        }
        w.through = header;
        Ok(false)
    }

    /// A progress response at `revision` on a stream: every watch of it (`watches`) is
    /// complete through `revision`.
    pub fn on_progress<'a>(
        &mut self,
        history: &History,
        watches: impl Iterator<Item = &'a mut WatchRecord>,
        revision: i64,
    ) -> Check {
        self.oracle.catch_up(history)?;
        for w in watches.filter(|w| w.created_seen) {
            self.complete_through(w, revision, "a progress response")?;
            w.through = w.through.max(revision);
        }
        Ok(())
    }

    /// The end of the run: every watcher synced and read, so `w` holds every matching event up
    /// to its node's `current_revision`.
    pub fn on_final(&mut self, history: &History, w: &WatchRecord, current_revision: i64) -> Check {
        self.oracle.catch_up(history)?;
        self.complete_through(w, current_revision, "the end of the run")
    }

    fn complete_through(&self, w: &WatchRecord, revision: i64, when: &str) -> Check {
        if !w.created_seen || w.through >= revision {
            return Ok(());
        }
        let missing = self
            .oracle
            .expected(w, (w.through, revision), None, self.edges(w))?;
        if !missing.is_empty() {
            return violated(
                NAME,
                format!(
                    "{}: at {when} (revision {revision}) it never received {}",
                    describe(w),
                    summary(&missing)
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::CommittedEntry;
    use ferrokv::pb::etcdserverpb::{
        DeleteRangeRequest, PutRequest, ResponseHeader, WatchCreateRequest,
    };
    use ferrokv::pb::peerpb::internal_request::Request;

    fn commit(history: &mut History, model: &mut KvModel, request: Request) {
        let r = InternalRequest {
            id: 1,
            request: Some(request),
        };
        let revision = model.apply(&r).unwrap();
        history.committed.push(CommittedEntry {
            term: 1,
            data: r.encode_to_vec(),
            revision,
        });
    }

    fn put(k: &str) -> Request {
        Request::Put(PutRequest {
            key: k.into(),
            value: b"v".to_vec(),
            ..Default::default()
        })
    }

    /// Revisions 2 (put a), 3 (put b), 4 (put a), 5 (delete a).
    fn setup() -> (History, WatchRecord) {
        let mut history = History::default();
        let mut model = KvModel::default();
        for r in [put("a"), put("b"), put("a")] {
            commit(&mut history, &mut model, r);
        }
        let del = Request::DeleteRange(DeleteRangeRequest {
            key: b"a".to_vec(),
            ..Default::default()
        });
        commit(&mut history, &mut model, del);
        let w = WatchRecord {
            client_id: 1,
            node: 1,
            stream: 1,
            watch_id: 0,
            request: WatchCreateRequest {
                key: b"a".to_vec(),
                start_revision: 2,
                ..Default::default()
            },
            through: 1,
            created_seen: true,
            cancel_sent: false,
        };
        (history, w)
    }

    fn response(history: &History, after: i64, through: i64, w: &WatchRecord) -> WatchResponse {
        let checker = {
            let mut c = WatchDelivery::default();
            c.oracle.catch_up(history).unwrap();
            c
        };
        WatchResponse {
            header: Some(ResponseHeader {
                revision: through,
                ..Default::default()
            }),
            watch_id: w.watch_id,
            events: checker
                .oracle
                .expected(w, (after, through), None, &[])
                .unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn in_order_responses_pass_and_a_gap_or_duplicate_is_caught() {
        let (history, mut w) = setup();
        let mut c = WatchDelivery::default();
        let first = response(&history, 1, 2, &w);
        assert_eq!(first.events.len(), 1);
        assert_eq!(c.on_response(&history, &mut w, &first, None), Ok(false));
        assert_eq!(w.through, 2);
        assert!(
            c.on_response(&history, &mut w.clone(), &first, None)
                .is_err(),
            "duplicate"
        );
        let skipping = response(&history, 4, 5, &w);
        assert!(
            c.on_response(&history, &mut w.clone(), &skipping, None)
                .is_err(),
            "gap: 4"
        );
        let rest = response(&history, 2, 5, &w);
        assert_eq!(rest.events.len(), 2, "put a@4, del a@5");
        assert_eq!(c.on_response(&history, &mut w, &rest, None), Ok(false));
        assert!(c.on_final(&history, &w, 5).is_ok());
    }

    #[test]
    fn a_lost_tail_and_a_false_progress_are_caught() {
        let (history, mut w) = setup();
        let mut c = WatchDelivery::default();
        assert!(c.on_final(&history, &w, 5).is_err());
        assert!(c.on_progress(&history, std::iter::once(&mut w), 3).is_err());
        w.request.key = b"b".to_vec();
        w.through = 3;
        assert!(c.on_progress(&history, std::iter::once(&mut w), 5).is_ok());
        assert_eq!(w.through, 5);
    }

    /// `setup` plus a compaction at `revision` (index 5).
    fn compacted_at(revision: i64) -> (History, WatchRecord) {
        let (mut history, w) = setup();
        let mut model = KvModel::default();
        for c in &history.committed {
            model
                .apply(&InternalRequest::decode(c.data.as_slice()).unwrap())
                .unwrap();
        }
        let compact = Request::Compaction(ferrokv::pb::etcdserverpb::CompactionRequest {
            revision,
            ..Default::default()
        });
        commit(&mut history, &mut model, compact);
        (history, w)
    }

    fn read(from_rev: i64, compact_revision: i64) -> HistoryRead {
        HistoryRead {
            from_rev,
            compact_revision,
        }
    }

    #[test]
    fn compaction_answers_are_checked_both_ways() {
        let (history, _) = compacted_at(4);
        let mut c = WatchDelivery::default();
        let w = (1, 0);
        assert!(
            c.on_history_read(&history, 1, 5, w, read(3, 4), true)
                .is_ok()
        );
        assert!(
            c.on_history_read(&history, 1, 5, w, read(4, 4), false)
                .is_ok()
        );
        let must_be_compacted = c.on_history_read(&history, 1, 5, w, read(3, 4), false);
        assert!(must_be_compacted.is_err());
        let four_is_readable = c.on_history_read(&history, 1, 5, w, read(4, 4), true);
        assert!(four_is_readable.is_err());
        let store_ahead_of_model = c.on_history_read(&history, 1, 4, w, read(4, 4), false);
        assert!(store_ahead_of_model.is_err());
    }

    #[test]
    fn a_read_from_the_compacted_revision_misses_its_tombstone_and_only_then() {
        let (history, mut w) = compacted_at(5); // revision 5 deleted "a"
        w.through = 4;
        let mut c = WatchDelivery::default();
        assert!(c.on_final(&history, &w, 5).is_err(), "del a@5 is owed");
        let key = (w.stream, w.watch_id);
        c.on_history_read(&history, 1, 5, key, read(5, 5), false)
            .unwrap();
        assert!(c.on_final(&history, &w, 5).is_ok(), "its tombstone is gone");
    }
}
