//! A naive model of etcd's KV semantics (etcd 3.4 `applierV3backend`, `mvcc/kvstore_txn.go`):
//! a `BTreeMap` from key to its live value with `create_revision`, `mod_revision` and
//! `version`, plus the store revision. The simulator replays the committed log through it and
//! compares every node's final key space and per-entry revision with the model's.
//!
//! It covers what the workload sends: Put (with or without a lease), DeleteRange (one key or
//! `[key, range_end)`), Txn with single-key compares on Value/Version/Create/Mod and
//! Put/DeleteRange operations, Compaction, and LeaseGrant/LeaseRevoke (etcd `lessor`: the
//! lease table, a put with an ungranted lease refused, a revoke deleting the lease's keys). Anything else makes [`KvModel::apply`] return an error, so a gap in the model
//! shows up as a failure rather than a silent pass.
//!
//! [`KvModel::apply_events`] also yields the watch events each request produces (etcd
//! `mvcc.watchableStore` events: a PUT with the new key-value, a DELETE with the key and the
//! delete's revision, `prev_kv` = the key-value the change replaced), which the watch checker
//! compares every delivered event with.

use std::collections::BTreeMap;

use ferrokv::pb::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest,
    compare::{CompareResult, CompareTarget, TargetUnion},
    request_op,
};
use ferrokv::pb::mvccpb::{Event, KeyValue, event::EventType};
use ferrokv::pb::peerpb::{InternalRequest, internal_request::Request};

/// A live key in the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelValue {
    /// Current value.
    pub value: Vec<u8>,
    /// Revision of the Put that created this generation of the key.
    pub create_revision: i64,
    /// Revision of the last Put.
    pub mod_revision: i64,
    /// Puts since creation, starting at 1.
    pub version: i64,
    /// The lease the last Put attached (0 = none).
    pub lease: i64,
}

/// The model store.
///
/// Invariant: `revision` starts at 1 and rises by exactly one per request that changed a key;
/// `compact_revision` only rises and never exceeds `revision`.
#[derive(Clone, Debug)]
pub struct KvModel {
    /// Current store revision.
    pub revision: i64,
    /// Revision of the last successful compaction (-1 = never; etcd `compactMainRev`).
    pub compact_revision: i64,
    /// Live keys.
    pub keys: BTreeMap<Vec<u8>, ModelValue>,
    /// Granted leases: id → TTL, seconds (etcd `lessor.leaseMap`).
    pub leases: BTreeMap<i64, i64>,
}

impl Default for KvModel {
    fn default() -> Self {
        KvModel {
            revision: 1,
            compact_revision: -1,
            keys: BTreeMap::new(),
            leases: BTreeMap::new(),
        }
    }
}

impl KvModel {
    /// Applies one request; returns the store revision after it.
    ///
    /// Errors: a request kind the model does not cover.
    pub fn apply(&mut self, request: &InternalRequest) -> Result<i64, String> {
        self.apply_events(request)?;
        Ok(self.revision)
    }

    /// Applies one request; returns the watch events it produced, in change order (all at
    /// the new revision; none when nothing changed).
    ///
    /// Errors: a request kind the model does not cover.
    pub fn apply_events(&mut self, request: &InternalRequest) -> Result<Vec<Event>, String> {
        let next = self.revision + 1;
        let mut events = Vec::new();
        match &request.request {
            // etcd `checkRequestPut`: a put with a lease that is not granted changes nothing.
            Some(Request::Put(p)) if p.lease != 0 && !self.leases.contains_key(&p.lease) => {}
            Some(Request::Put(p)) => self.put(p, next, &mut events),
            Some(Request::DeleteRange(d)) => self.delete_range(d, next, &mut events),
            Some(Request::Txn(t)) => {
                let succeeded = t.compare.iter().all(|c| self.compare(c));
                let ops = if succeeded { &t.success } else { &t.failure };
                for op in ops {
                    match &op.request {
                        Some(request_op::Request::RequestPut(p)) => self.put(p, next, &mut events),
                        Some(request_op::Request::RequestDeleteRange(d)) => {
                            self.delete_range(d, next, &mut events)
                        }
                        other => return Err(format!("model does not cover txn op {other:?}")),
                    }
                }
            }
            // etcd `store.Compact`: ErrCompacted at or below the compacted revision,
            // ErrFutureRev above the current one; either way no revision changes.
            Some(Request::Compaction(c)) => {
                if c.revision > self.compact_revision && c.revision <= self.revision {
                    self.compact_revision = c.revision;
                }
            }
            // etcd `lessor.Grant`: an existing id is refused; a grant changes no revision.
            Some(Request::LeaseGrant(g)) => {
                self.leases.entry(g.id).or_insert(g.ttl);
            }
            // etcd `lessor.Revoke`: deletes every key whose latest version carries the lease,
            // in key order, all at one revision (none if it holds no key); unknown id refused.
            Some(Request::LeaseRevoke(r)) => {
                if self.leases.remove(&r.id).is_some() {
                    let held: Vec<Vec<u8>> = self
                        .keys
                        .iter()
                        .filter(|(_, v)| v.lease == r.id)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in held {
                        self.delete_key(k, next, &mut events);
                    }
                }
            }
            other => return Err(format!("model does not cover request {other:?}")),
        }
        if !events.is_empty() {
            self.revision = next;
        }
        Ok(events)
    }

    /// The live keys as etcd would return them from a Range over everything.
    pub fn key_values(&self) -> Vec<KeyValue> {
        self.keys.iter().map(|(k, v)| key_value(k, v)).collect()
    }

    fn put(&mut self, p: &PutRequest, revision: i64, events: &mut Vec<Event>) {
        let prev = self.keys.get(&p.key).map(|v| key_value(&p.key, v));
        let entry = self.keys.entry(p.key.clone()).or_insert(ModelValue {
            value: Vec::new(),
            create_revision: revision,
            mod_revision: revision,
            version: 0,
            lease: 0,
        });
        entry.value = p.value.clone();
        entry.mod_revision = revision;
        entry.version += 1;
        entry.lease = p.lease;
        events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(key_value(&p.key, entry)),
            prev_kv: prev,
        });
    }

    /// Deletes `[key, range_end)` (just `key` when `range_end` is empty), in key order; one
    /// DELETE event per live key.
    fn delete_range(&mut self, d: &DeleteRangeRequest, revision: i64, events: &mut Vec<Event>) {
        let doomed: Vec<Vec<u8>> = if d.range_end.is_empty() {
            self.keys
                .contains_key(&d.key)
                .then(|| d.key.clone())
                .into_iter()
                .collect()
        } else if d.range_end <= d.key {
            Vec::new() // an empty or reversed range (BTreeMap::range would panic)
        } else {
            self.keys
                .range(d.key.clone()..d.range_end.clone())
                .map(|(k, _)| k.clone())
                .collect()
        };
        for k in doomed {
            self.delete_key(k, revision, events);
        }
    }

    /// Deletes live key `k` at `revision`: one DELETE event.
    fn delete_key(&mut self, k: Vec<u8>, revision: i64, events: &mut Vec<Event>) {
        let old = self.keys.remove(&k).expect("deleting a live key");
        events.push(Event {
            r#type: EventType::Delete as i32,
            prev_kv: Some(key_value(&k, &old)),
            kv: Some(KeyValue {
                key: k,
                mod_revision: revision,
                ..Default::default()
            }),
        });
    }

    /// etcd `applyCompare` for a single key: a missing key compares as zero, except that a
    /// Value compare on a missing key fails.
    fn compare(&self, c: &Compare) -> bool {
        let target = CompareTarget::try_from(c.target).ok();
        let Some(v) = self.keys.get(&c.key) else {
            if target == Some(CompareTarget::Value) {
                return false;
            }
            return self.ordering_ok(c, 0i64.cmp(&Self::int(c)));
        };
        let ordering = match target {
            Some(CompareTarget::Value) => {
                let want: &[u8] = match &c.target_union {
                    Some(TargetUnion::Value(w)) => w,
                    _ => &[],
                };
                v.value.as_slice().cmp(want)
            }
            Some(CompareTarget::Version) => v.version.cmp(&Self::int(c)),
            Some(CompareTarget::Create) => v.create_revision.cmp(&Self::int(c)),
            Some(CompareTarget::Mod) => v.mod_revision.cmp(&Self::int(c)),
            _ => 0i64.cmp(&Self::int(c)),
        };
        self.ordering_ok(c, ordering)
    }

    fn int(c: &Compare) -> i64 {
        match c.target_union {
            Some(TargetUnion::Version(v))
            | Some(TargetUnion::CreateRevision(v))
            | Some(TargetUnion::ModRevision(v))
            | Some(TargetUnion::Lease(v)) => v,
            _ => 0,
        }
    }

    fn ordering_ok(&self, c: &Compare, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match CompareResult::try_from(c.result) {
            Ok(CompareResult::Equal) => ordering == Equal,
            Ok(CompareResult::NotEqual) => ordering != Equal,
            Ok(CompareResult::Greater) => ordering == Greater,
            Ok(CompareResult::Less) => ordering == Less,
            Err(_) => true,
        }
    }
}

fn key_value(key: &[u8], v: &ModelValue) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        value: v.value.clone(),
        create_revision: v.create_revision,
        mod_revision: v.mod_revision,
        version: v.version,
        lease: v.lease,
    }
}

/// Whether a watch on `(key, range_end)` covers `k`, by etcd's range rules: an empty
/// `range_end` is the one key, `"\0"` every key ≥ `key`, otherwise `[key, range_end)`.
pub fn watch_covers(key: &[u8], range_end: &[u8], k: &[u8]) -> bool {
    match range_end {
        [] => k == key,
        [0] => k >= key,
        end => key <= k && k < end,
    }
}

/// The keys a request may write: `(key, range_end)` pairs, `range_end` empty for one key.
/// Both branches of a Txn count (conservative: "may be overwritten").
pub fn keys_written(request: &InternalRequest) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut op = |r: Option<&request_op::Request>| match r {
        Some(request_op::Request::RequestPut(p)) => out.push((p.key.clone(), Vec::new())),
        Some(request_op::Request::RequestDeleteRange(d)) => {
            out.push((d.key.clone(), d.range_end.clone()))
        }
        _ => {}
    };
    match &request.request {
        Some(Request::Put(p)) => op(Some(&request_op::Request::RequestPut(p.clone()))),
        Some(Request::DeleteRange(d)) => {
            op(Some(&request_op::Request::RequestDeleteRange(d.clone())))
        }
        Some(Request::Txn(t)) => {
            for o in t.success.iter().chain(&t.failure) {
                op(o.request.as_ref());
            }
        }
        _ => {}
    }
    out
}

/// Whether `key` lies in `(start, range_end)` as [`keys_written`] reports it.
pub fn covers(start: &[u8], range_end: &[u8], key: &[u8]) -> bool {
    if range_end.is_empty() {
        start == key
    } else {
        start <= key && key < range_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::pb::etcdserverpb::{RequestOp, TxnRequest};

    fn req(request: Request) -> InternalRequest {
        InternalRequest {
            id: 1,
            request: Some(request),
        }
    }

    fn put(k: &str, v: &str) -> InternalRequest {
        req(Request::Put(PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        }))
    }

    #[test]
    fn puts_count_versions_and_deletes_of_nothing_keep_the_revision() {
        let mut m = KvModel::default();
        assert_eq!(m.apply(&put("a", "1")), Ok(2));
        assert_eq!(m.apply(&put("a", "2")), Ok(3));
        let del_b = req(Request::DeleteRange(DeleteRangeRequest {
            key: "b".into(),
            ..Default::default()
        }));
        assert_eq!(m.apply(&del_b), Ok(3));
        let a = &m.keys[b"a".as_slice()];
        assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 3, 2));
        let del_range = req(Request::DeleteRange(DeleteRangeRequest {
            key: "a".into(),
            range_end: "c".into(),
            ..Default::default()
        }));
        assert_eq!(m.apply(&del_range), Ok(4));
        assert!(m.keys.is_empty());
    }

    #[test]
    fn txn_takes_the_branch_its_compare_selects() {
        let mut m = KvModel::default();
        let create_if_absent = req(Request::Txn(TxnRequest {
            compare: vec![Compare {
                key: "a".into(),
                target: CompareTarget::Version as i32,
                result: CompareResult::Equal as i32,
                target_union: Some(TargetUnion::Version(0)),
                ..Default::default()
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: "a".into(),
                    value: "new".into(),
                    ..Default::default()
                })),
            }],
            failure: vec![],
        }));
        assert_eq!(m.apply(&create_if_absent), Ok(2));
        assert_eq!(m.apply(&create_if_absent), Ok(2), "failure branch is empty");
        assert_eq!(m.keys[b"a".as_slice()].value, b"new");
    }

    #[test]
    fn events_carry_prev_kv_and_compaction_changes_no_revision() {
        let mut m = KvModel::default();
        assert_eq!(m.apply_events(&put("a", "1")).unwrap()[0].prev_kv, None);
        let second = m.apply_events(&put("a", "2")).unwrap();
        assert_eq!(second[0].prev_kv.as_ref().unwrap().value, b"1");
        assert_eq!(second[0].kv.as_ref().unwrap().version, 2);
        m.apply(&put("b", "1")).unwrap();
        let del = req(Request::DeleteRange(DeleteRangeRequest {
            key: "a".into(),
            range_end: "c".into(),
            ..Default::default()
        }));
        let deleted = m.apply_events(&del).unwrap();
        let keys: Vec<&[u8]> = deleted
            .iter()
            .map(|e| e.kv.as_ref().unwrap().key.as_slice())
            .collect();
        assert_eq!(keys, [b"a", b"b"], "key order");
        assert_eq!(deleted[0].kv.as_ref().unwrap().mod_revision, 5);
        assert_eq!(deleted[0].r#type, EventType::Delete as i32);
        let compact = |revision| {
            req(Request::Compaction(
                ferrokv::pb::etcdserverpb::CompactionRequest {
                    revision,
                    ..Default::default()
                },
            ))
        };
        assert_eq!(m.apply(&compact(6)), Ok(5), "future: refused");
        assert_eq!(m.compact_revision, -1);
        assert_eq!(m.apply(&compact(4)), Ok(5));
        assert_eq!(m.compact_revision, 4);
        m.apply(&compact(3)).unwrap();
        assert_eq!(
            m.compact_revision, 4,
            "at or below the compacted revision: refused"
        );
    }

    #[test]
    fn a_revoke_deletes_the_keys_its_lease_holds_at_one_revision() {
        use ferrokv::pb::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest};
        let mut m = KvModel::default();
        let grant = req(Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 7 }));
        let revoke = req(Request::LeaseRevoke(LeaseRevokeRequest { id: 7 }));
        let leased = |k: &str| {
            req(Request::Put(PutRequest {
                key: k.into(),
                value: "x".into(),
                lease: 7,
                ..Default::default()
            }))
        };
        assert_eq!(m.apply(&leased("a")), Ok(1), "ungranted lease: refused");
        assert!(m.keys.is_empty());
        assert_eq!(m.apply(&grant), Ok(1), "a grant changes no revision");
        let again = req(Request::LeaseGrant(LeaseGrantRequest { ttl: 9, id: 7 }));
        assert_eq!(m.apply(&again), Ok(1));
        assert_eq!(m.leases[&7], 5, "an existing id is refused");
        m.apply(&leased("a")).unwrap();
        m.apply(&leased("b")).unwrap();
        m.apply(&put("b", "detached")).unwrap();
        m.apply(&leased("c")).unwrap();
        assert_eq!(m.key_values()[0].lease, 7);
        let deleted = m.apply_events(&revoke).unwrap();
        let keys: Vec<&[u8]> = deleted
            .iter()
            .map(|e| e.kv.as_ref().unwrap().key.as_slice())
            .collect();
        assert_eq!(keys, [b"a", b"c"], "only keys whose latest put carries it");
        assert_eq!(m.revision, 6);
        assert!(m.leases.is_empty());
        assert_eq!(m.apply(&revoke), Ok(6), "unknown lease: refused");
        assert_eq!(m.apply(&grant), Ok(6));
        assert_eq!(m.apply(&revoke), Ok(6), "a revoke deleting nothing");
    }

    #[test]
    fn keys_written_covers_both_txn_branches() {
        assert!(covers(b"k01", b"k05", b"k03"));
        assert!(!covers(b"k01", b"k05", b"k05"));
        assert!(covers(b"k01", b"", b"k01"));
        assert_eq!(keys_written(&put("a", "1")), vec![(b"a".to_vec(), vec![])]);
    }
}
