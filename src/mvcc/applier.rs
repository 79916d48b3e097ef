//! Apply once: [`apply_entry`] turns one committed raft entry into its effect on the store and
//! a description, as data, of everything the caller must route — the waiter's answer, the watch
//! events, the lease change, the member attributes.
//!
//! Written once for every driver of the store: the `StoreActor` carries the description out
//! with actor messages, the simulator checks it against its invariants (`STYLE.md`: "simulate the
//! replica itself" — two copies of this decision would let the simulator prove the copy).
//!
//! ```text
//!   entry ─┬─ index ≤ applied_index ─────────────► Ok(None)          (replayed at restart)
//!          ├─ ConfChange ────────── mark applied ─► skipped: ConfChange (Raft applies it)
//!          ├─ Normal, empty ─────── mark applied ─► skipped: NoOp       (a new leader's no-op)
//!          ├─ undecodable ───────── mark applied ─► skipped: Undecodable
//!          ├─ no known request ──── mark applied ─► skipped: UnknownRequest
//!          ├─ MemberAttributes ──── mark applied ─► member: attributes to publish
//!          └─ KV / lease request ── Kv::apply ────► result, events, lease change
//!                                    fatal error ─► Err(e)              (stop the member)
//! ```
//!
//! Every entry above the applied index is consumed — its index is committed to the store — so
//! a restart replays exactly the entries the store has not seen (`docs/mvcc.md`).

use prost::Message as _;

use super::apply::{ApplyOutcome, Request};
use super::error::MvccError;
use super::kv::Kv;
use crate::pb::mvccpb::Event;
use crate::pb::peerpb::{InternalRequest, MemberAttributes, internal_request};
use crate::raft::{Entry, EntryKind};

/// The answer a proposer waits for: the KV response (its `events` moved to
/// [`Applied::events`], so empty), `None` for entries with no KV response (member attributes,
/// an unknown request), or the request's error (a non-fatal [`MvccError`]: an answer, not a
/// failure).
pub type ApplyResult = Result<Option<ApplyOutcome>, MvccError>;

/// A lease change applied to the store, in apply order: what the leader's lease clock
/// (`LeaseReaper`, the simulator's lease model) must follow. Only successful grants and revokes
/// produce one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseApplied {
    /// Lease `id` granted (etcd `lessor.Grant`).
    Granted {
        /// Lease id (≠ 0).
        id: i64,
        /// Granted TTL, seconds.
        ttl_secs: i64,
    },
    /// Lease `id` revoked, by a client or by expiry (etcd `lessor.Revoke`).
    Revoked {
        /// Lease id.
        id: i64,
        /// Number of keys the revoke deleted (its delete events).
        keys_deleted: usize,
    },
}

/// Why an entry changed nothing but the applied index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// A membership change: the Raft node driver applies it to Raft itself; the store only
    /// records its index. Its data is never decoded as a request.
    ConfChange,
    /// An empty normal entry: a new leader's no-op (Raft §5.4.2, §8).
    NoOp,
    /// The data is not an `InternalRequest`. A bug or corruption upstream of the log: the
    /// server logs it as an error, the simulator treats it as a violation.
    Undecodable {
        /// The decoder's message.
        reason: String,
    },
    /// An `InternalRequest` carrying no request this version knows (an empty `oneof`, or a
    /// variant a newer member wrote). The waiter, if any, gets `Ok(None)`.
    UnknownRequest,
}

/// What applying one committed entry did, for the caller to route.
#[derive(Debug)]
pub struct Applied {
    /// The entry's raft index; now the store's applied index.
    pub index: u64,
    /// `InternalRequest.id` of the entry, the key its waiter registered under; 0 = nobody
    /// waits (leader no-ops, conf changes, undecodable entries, the lease reaper's revokes).
    pub request_id: u64,
    /// The waiter's answer. A request error (`Err` with `!is_fatal()`) is the client's answer,
    /// not a failure: the entry was consumed all the same.
    pub result: ApplyResult,
    /// The changes the entry made, in revision order, moved out of the outcome for the watch
    /// hub (each `prev_kv` set when the key existed before). Empty when nothing changed.
    pub events: Vec<Event>,
    /// The store revision after the entry; every event's `kv.mod_revision` equals it.
    pub revision: i64,
    /// The lease granted or revoked, if the entry did that successfully.
    pub lease: Option<LeaseApplied>,
    /// A member's published name and client URLs, for the caller's member table (the
    /// `StoreActor` publishes them to `Members`).
    pub member: Option<MemberAttributes>,
    /// The member-table change a configuration-change entry carries, for the caller's
    /// member table.
    pub member_change: Option<crate::cluster::MemberChange>,
    /// Set when the entry was skipped; `result` is then `Ok(None)`.
    pub skipped: Option<Skipped>,
}

/// Applies committed entry `entry` to `kv`; see the module docs for the cases.
///
/// Returns `Ok(None)` when `entry.index ≤ kv.applied_index()` (already applied: a replay after
/// restart), else `Ok(Some(applied))` with the store's applied index at `entry.index`.
///
/// Errors: a fatal [`MvccError`] (`Storage`, `Corrupt`; [`MvccError::is_fatal`]) when the
/// store cannot be written or read; the caller must stop applying (the server exits, the
/// simulator reports a violation). The entry is then not applied.
pub fn apply_entry(kv: &mut Kv, entry: &Entry) -> Result<Option<Applied>, MvccError> {
    if entry.index <= kv.applied_index() {
        return Ok(None);
    }
    let mut applied = Applied {
        index: entry.index,
        request_id: 0,
        result: Ok(None),
        events: Vec::new(),
        revision: kv.current_revision(),
        lease: None,
        member: None,
        member_change: None,
        skipped: None,
    };
    if let Some(ctx) = crate::cluster::ChangeContext::of_entry(entry) {
        applied.request_id = ctx.request_id;
        applied.member_change = Some(ctx.change);
    }
    match classify(entry) {
        Err(skipped) => {
            kv.mark_applied(entry.index)?;
            applied.skipped = Some(skipped);
        }
        Ok(request) => {
            applied.request_id = request.id;
            apply_request(kv, entry.index, request.request, &mut applied)?;
        }
    }
    applied.revision = kv.current_revision();
    Ok(Some(applied))
}

/// The entry's request, or why it has none.
fn classify(entry: &Entry) -> Result<InternalRequest, Skipped> {
    match entry.kind {
        EntryKind::ConfChange => Err(Skipped::ConfChange),
        EntryKind::Normal if entry.data.is_empty() => Err(Skipped::NoOp),
        EntryKind::Normal => {
            InternalRequest::decode(entry.data.as_slice()).map_err(|e| Skipped::Undecodable {
                reason: e.to_string(),
            })
        }
    }
}

fn apply_request(
    kv: &mut Kv,
    index: u64,
    request: Option<internal_request::Request>,
    applied: &mut Applied,
) -> Result<(), MvccError> {
    let op = match request.map(Request::from_internal) {
        Some(Ok(op)) => op,
        Some(Err(internal_request::Request::MemberAttributes(a))) => {
            kv.mark_applied(index)?;
            applied.member = Some(a);
            return Ok(());
        }
        Some(Err(_)) | None => {
            kv.mark_applied(index)?;
            applied.skipped = Some(Skipped::UnknownRequest);
            return Ok(());
        }
    };
    applied.result = match kv.apply(index, &op) {
        Err(e) if e.is_fatal() => return Err(e),
        // `Ok(None)` (already applied) cannot happen: `apply_entry` checked the index and
        // nothing applied since.
        Ok(Some(mut outcome)) => {
            applied.events = std::mem::take(&mut outcome.events);
            applied.lease = match &op {
                Request::LeaseGrant(g) => Some(LeaseApplied::Granted {
                    id: g.id,
                    ttl_secs: g.ttl,
                }),
                Request::LeaseRevoke(r) => Some(LeaseApplied::Revoked {
                    id: r.id,
                    keys_deleted: applied.events.len(),
                }),
                _ => None,
            };
            Ok(Some(outcome))
        }
        // A request error still consumed the entry (`Kv::apply`); it is the client's answer.
        other => other,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::MemBackend;
    use crate::mvcc::apply::Response;
    use crate::pb::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, PutRequest};
    use crate::pb::mvccpb::event::EventType;

    fn store() -> (MemBackend, Kv) {
        let disk = MemBackend::new();
        let kv = Kv::open(disk.clone()).unwrap();
        (disk, kv)
    }

    fn entry(index: u64, id: u64, request: internal_request::Request) -> Entry {
        Entry {
            term: 1,
            index,
            kind: EntryKind::Normal,
            data: InternalRequest {
                id,
                request: Some(request),
            }
            .encode_to_vec(),
        }
    }

    fn put(key: &str, lease: i64) -> internal_request::Request {
        internal_request::Request::Put(PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            lease,
            ..Default::default()
        })
    }

    /// A leader no-op at `index`.
    fn noop(index: u64) -> Entry {
        Entry {
            term: 1,
            index,
            ..Default::default()
        }
    }

    fn apply(kv: &mut Kv, e: &Entry) -> Applied {
        apply_entry(kv, e).unwrap().expect("not applied before")
    }

    #[test]
    fn put_moves_its_events_out_and_reports_the_revision() {
        let (_, mut kv) = store();
        let a = apply(&mut kv, &entry(1, 42, put("a", 0)));
        assert_eq!((a.index, a.request_id, a.revision), (1, 42, 2));
        assert_eq!(a.events.len(), 1);
        assert_eq!(a.events[0].r#type, EventType::Put as i32);
        assert_eq!(a.events[0].kv.as_ref().unwrap().mod_revision, a.revision);
        let outcome = a.result.unwrap().unwrap();
        assert!(outcome.events.is_empty(), "events moved, not cloned");
        assert!(matches!(outcome.response, Response::Put(_)));
        assert_eq!((a.lease, a.member, a.skipped), (None, None, None));
        assert_eq!(kv.applied_index(), 1);
    }

    #[test]
    fn conf_change_entry_is_not_decoded() {
        let (_, mut kv) = store();
        // Data that *would* decode as a put: it must not be applied as one.
        let mut e = entry(1, 7, put("a", 0));
        e.kind = EntryKind::ConfChange;
        let a = apply(&mut kv, &e);
        assert_eq!(a.skipped, Some(Skipped::ConfChange));
        assert_eq!(a.request_id, 0, "nobody waits for a conf change");
        assert!(matches!(a.result, Ok(None)));
        assert!(a.events.is_empty());
        assert_eq!((kv.applied_index(), kv.current_revision()), (1, 1));
    }

    #[test]
    fn leader_no_op_marks_applied() {
        let (_, mut kv) = store();
        let a = apply(&mut kv, &noop(3));
        assert_eq!(a.skipped, Some(Skipped::NoOp));
        assert_eq!(
            (kv.applied_index(), kv.current_revision(), a.revision),
            (3, 1, 1)
        );
    }

    #[test]
    fn replay_returns_none_and_changes_nothing() {
        let (_, mut kv) = store();
        apply(&mut kv, &entry(1, 1, put("a", 0)));
        apply(&mut kv, &entry(2, 2, put("b", 0)));
        for index in [1, 2] {
            assert!(
                apply_entry(&mut kv, &entry(index, 9, put("c", 0)))
                    .unwrap()
                    .is_none()
            );
        }
        assert_eq!((kv.applied_index(), kv.current_revision()), (2, 3));
    }

    #[test]
    fn lease_grant_and_revoke_are_reported() {
        let (_, mut kv) = store();
        let grant = internal_request::Request::LeaseGrant(LeaseGrantRequest { id: 5, ttl: 30 });
        let a = apply(&mut kv, &entry(1, 1, grant.clone()));
        assert_eq!(
            a.lease,
            Some(LeaseApplied::Granted {
                id: 5,
                ttl_secs: 30
            })
        );
        apply(&mut kv, &entry(2, 2, put("a", 5)));
        apply(&mut kv, &entry(3, 3, put("b", 5)));
        let a = apply(&mut kv, &entry(4, 0, grant));
        assert!(matches!(a.result, Err(MvccError::LeaseExists)));
        assert_eq!(a.lease, None, "a failed grant changes no lease");
        let revoke = internal_request::Request::LeaseRevoke(LeaseRevokeRequest { id: 5 });
        let a = apply(&mut kv, &entry(5, 0, revoke));
        assert_eq!(
            a.lease,
            Some(LeaseApplied::Revoked {
                id: 5,
                keys_deleted: 2
            })
        );
        assert_eq!(a.events.len(), 2);
        assert!(
            a.events
                .iter()
                .all(|e| e.r#type == EventType::Delete as i32)
        );
        assert_eq!(a.revision, 4, "both deletes share one revision");
    }

    #[test]
    fn undecodable_entry_is_reported_and_consumed() {
        let (_, mut kv) = store();
        let e = Entry {
            term: 1,
            index: 1,
            kind: EntryKind::Normal,
            data: vec![0xff, 0xff, 0xff],
        };
        let a = apply(&mut kv, &e);
        assert!(
            matches!(a.skipped, Some(Skipped::Undecodable { .. })),
            "{a:?}"
        );
        assert_eq!((a.request_id, kv.applied_index()), (0, 1));
    }

    #[test]
    fn request_error_still_advances_the_applied_index() {
        let (_, mut kv) = store();
        let missing = internal_request::Request::Put(PutRequest {
            key: b"x".to_vec(),
            ignore_value: true,
            ..Default::default()
        });
        let a = apply(&mut kv, &entry(4, 11, missing));
        assert!(matches!(a.result, Err(MvccError::KeyNotFound)));
        assert_eq!(a.request_id, 11, "the waiter gets the error");
        assert_eq!((kv.applied_index(), kv.current_revision()), (4, 1));
        assert_eq!(a.skipped, None);
    }

    #[test]
    fn member_attributes_are_handed_back() {
        let (_, mut kv) = store();
        let attrs = MemberAttributes {
            member_id: 3,
            name: "n3".into(),
            client_urls: vec!["http://n3:2379".into()],
        };
        let e = entry(
            1,
            8,
            internal_request::Request::MemberAttributes(attrs.clone()),
        );
        let a = apply(&mut kv, &e);
        assert_eq!(a.member, Some(attrs));
        assert_eq!(a.request_id, 8);
        assert!(matches!(a.result, Ok(None)));
        assert_eq!(kv.applied_index(), 1);
    }

    #[test]
    fn unknown_request_is_skipped() {
        let (_, mut kv) = store();
        let e = Entry {
            term: 1,
            index: 1,
            kind: EntryKind::Normal,
            data: InternalRequest {
                id: 4,
                request: None,
            }
            .encode_to_vec(),
        };
        // An `InternalRequest` with only `id = 4` encodes to 2 bytes: not empty, decodable.
        assert!(!e.data.is_empty());
        let a = apply(&mut kv, &e);
        assert_eq!(a.skipped, Some(Skipped::UnknownRequest));
        assert_eq!((a.request_id, kv.applied_index()), (4, 1));
    }

    #[test]
    fn storage_failure_is_fatal_and_applies_nothing() {
        let (disk, mut kv) = store();
        disk.fail_commits(true);
        for e in [entry(1, 1, put("a", 0)), noop(1)] {
            let err = apply_entry(&mut kv, &e).unwrap_err();
            assert!(err.is_fatal(), "{err}");
        }
        assert_eq!((kv.applied_index(), kv.current_revision()), (0, 1));
    }
}
