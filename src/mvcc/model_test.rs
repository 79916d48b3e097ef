//! Seeded model test: random Put / DeleteRange / Txn / Range / Compaction / LeaseGrant /
//! LeaseRevoke sequences applied to
//! [`Kv`] and to a naive model — a `BTreeMap<(key, revision), value-or-delete>` that never
//! forgets — and every answer, event, revision, version and create_revision compared.
//!
//! [`model_random_sequences`] runs on fjall and reopens the database now and then;
//! [`model_random_crashes_lose_only_the_unsynced_tail`] runs on [`MemBackend`], crashes it at
//! random points and replays the lost tail from a simulated raft log.
//!
//! A failure prints its seed and step; rerun one seed with `MVCC_SEED=<seed>`.

use std::collections::{BTreeMap, BTreeSet};

use fjall::Database;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::apply::{ApplyOutcome, Request, Response};
use super::error::MvccError;
use super::fjall_backend::FjallBackend;
use super::kv::Kv;
use super::mem_backend::MemBackend;
use super::revision::Revision;
use crate::pb::etcdserverpb::{
    CompactionRequest, CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest,
    TxnResponse, compare::TargetUnion, request_op, response_op,
};
use crate::pb::mvccpb::{Event, KeyValue, event::EventType};

const KEYS: [&[u8]; 7] = [b"a", b"b", b"ba", b"bb", b"c", b"d\xff", b"e"];
const VALUES: [&[u8]; 4] = [b"", b"x", b"y", b"z"];

/// A stored `(value, lease)`.
type Stored = (Vec<u8>, i64);

/// The naive model: the full history, never compacted, read by linear scans.
#[derive(Clone, Debug)]
struct Model {
    /// `None` marks a delete.
    history: BTreeMap<(Vec<u8>, Revision), Option<Stored>>,
    current: i64,
    compacted: i64,
    /// Granted leases: id → TTL.
    leases: BTreeMap<i64, i64>,
}

/// Which keys `(key, range_end)` selects, written independently of `index::KeyRange`.
fn selects(key: &[u8], range_end: &[u8], k: &[u8]) -> bool {
    if range_end.is_empty() {
        k == key
    } else if range_end == [0] {
        k >= key
    } else {
        k >= key && k < range_end
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// A write transaction on the model: changes go straight into the history at `main`.
struct ModelTxn<'m> {
    m: &'m mut Model,
    main: i64,
    events: Vec<Event>,
}

impl Model {
    fn new() -> Self {
        Model {
            history: BTreeMap::new(),
            current: 1,
            compacted: -1,
            leases: BTreeMap::new(),
        }
    }

    fn get(&self, key: &[u8], at: i64) -> Option<KeyValue> {
        let mut visible: Option<KeyValue> = None;
        for ((k, rev), change) in &self.history {
            if k != key || rev.main > at {
                continue;
            }
            visible = change.as_ref().map(|(value, lease)| {
                let (create_revision, version) = match &visible {
                    Some(prev) => (prev.create_revision, prev.version + 1),
                    None => (rev.main, 1),
                };
                KeyValue {
                    key: k.clone(),
                    create_revision,
                    mod_revision: rev.main,
                    version,
                    value: value.clone(),
                    lease: *lease,
                }
            });
        }
        visible
    }

    fn all(&self, key: &[u8], range_end: &[u8], at: i64) -> Vec<KeyValue> {
        let keys: BTreeSet<&Vec<u8>> = self.history.keys().map(|(k, _)| k).collect();
        keys.into_iter()
            .filter(|k| selects(key, range_end, k))
            .filter_map(|k| self.get(k, at))
            .collect()
    }
}

impl ModelTxn<'_> {
    fn revision(&self) -> i64 {
        if self.events.is_empty() {
            self.main - 1
        } else {
            self.main
        }
    }

    fn next(&self) -> Revision {
        Revision::new(self.main, self.events.len() as i64)
    }

    fn range(&self, r: &RangeRequest) -> Result<RangeResponse, MvccError> {
        let read_rev = self.revision();
        if r.revision > read_rev {
            return Err(MvccError::FutureRevision);
        }
        let at = if r.revision <= 0 {
            read_rev
        } else {
            r.revision
        };
        if at < self.m.compacted {
            return Err(MvccError::Compacted);
        }
        let all = self.m.all(&r.key, &r.range_end, at);
        let count = all.len() as i64;
        if r.count_only {
            return Ok(RangeResponse {
                header: header(read_rev),
                kvs: vec![],
                more: false,
                count,
            });
        }
        let filters = [
            r.min_mod_revision,
            r.max_mod_revision,
            r.min_create_revision,
            r.max_create_revision,
        ];
        let sorted_or_filtered = r.sort_order != 0 || filters.iter().any(|f| *f != 0);
        let mut kvs: Vec<KeyValue> = if !sorted_or_filtered && r.limit > 0 {
            all.into_iter().take(r.limit as usize + 1).collect()
        } else {
            all
        };
        kvs.retain(|kv| {
            !(r.min_mod_revision != 0 && kv.mod_revision < r.min_mod_revision
                || r.max_mod_revision != 0 && kv.mod_revision > r.max_mod_revision
                || r.min_create_revision != 0 && kv.create_revision < r.min_create_revision
                || r.max_create_revision != 0 && kv.create_revision > r.max_create_revision)
        });
        let order = if r.sort_order == 0 && r.sort_target != 0 {
            1
        } else {
            r.sort_order
        };
        if order != 0 {
            // Stable sort on the target; descending keeps ties in key order.
            let field = |kv: &KeyValue| -> (i64, Vec<u8>) {
                match r.sort_target {
                    0 => (0, kv.key.clone()),
                    1 => (kv.version, vec![]),
                    2 => (kv.create_revision, vec![]),
                    3 => (kv.mod_revision, vec![]),
                    _ => (0, kv.value.clone()),
                }
            };
            kvs.sort_by(|a, b| {
                if order == 2 {
                    field(b).cmp(&field(a))
                } else {
                    field(a).cmp(&field(b))
                }
            });
        }
        let more = r.limit > 0 && kvs.len() > r.limit as usize;
        if more {
            kvs.truncate(r.limit as usize);
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value = vec![]);
        }
        Ok(RangeResponse {
            header: header(read_rev),
            kvs,
            more,
            count,
        })
    }

    fn check_put(&self, p: &PutRequest) -> Result<(), MvccError> {
        if p.ignore_value && !p.value.is_empty() {
            return Err(MvccError::ValueProvided);
        }
        if p.ignore_lease && p.lease != 0 {
            return Err(MvccError::LeaseProvided);
        }
        if (p.ignore_value || p.ignore_lease) && self.m.get(&p.key, self.revision()).is_none() {
            return Err(MvccError::KeyNotFound);
        }
        if p.lease != 0 && !self.m.leases.contains_key(&p.lease) {
            return Err(MvccError::LeaseNotFound);
        }
        Ok(())
    }

    fn put(&mut self, p: &PutRequest) -> Result<PutResponse, MvccError> {
        self.check_put(p)?;
        let prev = self.m.get(&p.key, self.main);
        let value = if p.ignore_value {
            prev.clone().unwrap().value
        } else {
            p.value.clone()
        };
        let lease = if p.ignore_lease {
            prev.clone().unwrap().lease
        } else {
            p.lease
        };
        let rev = self.next();
        self.m
            .history
            .insert((p.key.clone(), rev), Some((value, lease)));
        let kv = self.m.get(&p.key, self.main);
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv,
            prev_kv: prev.clone(),
        });
        Ok(PutResponse {
            header: header(self.main),
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn delete(&mut self, d: &DeleteRangeRequest) -> DeleteRangeResponse {
        let victims = self.m.all(&d.key, &d.range_end, self.main);
        for prev in &victims {
            let rev = self.next();
            self.m.history.insert((prev.key.clone(), rev), None);
            let kv = KeyValue {
                key: prev.key.clone(),
                mod_revision: self.main,
                ..Default::default()
            };
            self.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(kv),
                prev_kv: Some(prev.clone()),
            });
        }
        DeleteRangeResponse {
            header: header(self.revision()),
            deleted: victims.len() as i64,
            prev_kvs: if d.prev_kv { victims } else { vec![] },
        }
    }

    fn compare(&self, c: &Compare) -> bool {
        let kvs = self.m.all(&c.key, &c.range_end, self.main - 1);
        if kvs.is_empty() && c.target == 3 {
            return false;
        }
        let kvs = if kvs.is_empty() {
            vec![KeyValue::default()]
        } else {
            kvs
        };
        kvs.iter().all(|kv| {
            let (have, want): (Vec<u8>, Vec<u8>) = match (c.target, &c.target_union) {
                (3, Some(TargetUnion::Value(v))) => (kv.value.clone(), v.clone()),
                (3, _) => (kv.value.clone(), vec![]),
                (t, u) => {
                    let have =
                        [kv.version, kv.create_revision, kv.mod_revision, 0, kv.lease][t as usize];
                    let want = match (t, u) {
                        (0, Some(TargetUnion::Version(v)))
                        | (1, Some(TargetUnion::CreateRevision(v)))
                        | (2, Some(TargetUnion::ModRevision(v)))
                        | (4, Some(TargetUnion::Lease(v))) => *v,
                        _ => 0,
                    };
                    // Order-preserving bytes for i64.
                    (
                        ((have as u64) ^ (1 << 63)).to_be_bytes().to_vec(),
                        ((want as u64) ^ (1 << 63)).to_be_bytes().to_vec(),
                    )
                }
            };
            match c.result {
                0 => have == want,
                1 => have > want,
                2 => have < want,
                _ => have != want,
            }
        })
    }

    /// The taken branches' static checks on the state before the transaction.
    fn check_txn(&self, t: &TxnRequest) -> Result<(), MvccError> {
        let ops = if t.compare.iter().all(|c| self.compare(c)) {
            &t.success
        } else {
            &t.failure
        };
        for op in ops {
            match &op.request {
                Some(request_op::Request::RequestPut(p)) => self.check_put(p)?,
                Some(request_op::Request::RequestRange(r)) => {
                    if r.revision > self.revision() {
                        return Err(MvccError::FutureRevision);
                    }
                    if r.revision != 0 && r.revision < self.m.compacted {
                        return Err(MvccError::Compacted);
                    }
                }
                Some(request_op::Request::RequestTxn(inner)) => self.check_txn(inner)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Decides every branch first (compares see the state before the transaction).
    fn decide(&self, t: &TxnRequest) -> Vec<bool> {
        let ok = t.compare.iter().all(|c| self.compare(c));
        let mut out = vec![ok];
        for op in if ok { &t.success } else { &t.failure } {
            if let Some(request_op::Request::RequestTxn(inner)) = &op.request {
                out.extend(self.decide(inner));
            }
        }
        out
    }

    fn run_txn(
        &mut self,
        t: &TxnRequest,
        path: &mut std::vec::IntoIter<bool>,
    ) -> Result<TxnResponse, MvccError> {
        let ok = path.next().unwrap();
        let mut responses = vec![];
        for op in if ok { &t.success } else { &t.failure } {
            let response = match &op.request {
                Some(request_op::Request::RequestRange(r)) => {
                    response_op::Response::ResponseRange(self.range(r)?)
                }
                Some(request_op::Request::RequestPut(p)) => {
                    response_op::Response::ResponsePut(self.put(p)?)
                }
                Some(request_op::Request::RequestDeleteRange(d)) => {
                    response_op::Response::ResponseDeleteRange(self.delete(d))
                }
                Some(request_op::Request::RequestTxn(inner)) => {
                    let mut r = self.run_txn(inner, path)?;
                    r.header = Some(ResponseHeader::default());
                    response_op::Response::ResponseTxn(r)
                }
                None => unreachable!(),
            };
            responses.push(ResponseOp {
                response: Some(response),
            });
        }
        Ok(TxnResponse {
            header: None,
            succeeded: ok,
            responses,
        })
    }

    fn apply(&mut self, req: &Request) -> Result<Response, MvccError> {
        Ok(match req {
            Request::Alarm(_) => unreachable!("the model's workload proposes no alarms"),
            Request::Range(r) => Response::Range(self.range(r)?),
            Request::Put(p) => Response::Put(self.put(p)?),
            Request::DeleteRange(d) => Response::DeleteRange(self.delete(d)),
            Request::Txn(t) => {
                self.check_txn(t)?;
                let mut path = self.decide(t).into_iter();
                let mut r = self.run_txn(t, &mut path)?;
                r.header = header(self.revision());
                Response::Txn(r)
            }
            Request::LeaseGrant(g) => {
                if g.ttl > super::lease::MAX_LEASE_TTL_SECS {
                    return Err(MvccError::LeaseTtlTooLarge);
                }
                if self.m.leases.contains_key(&g.id) {
                    return Err(MvccError::LeaseExists);
                }
                self.m.leases.insert(g.id, g.ttl);
                Response::LeaseGrant(LeaseGrantResponse {
                    header: header(self.revision()),
                    id: g.id,
                    ttl: g.ttl,
                    error: String::new(),
                })
            }
            Request::LeaseRevoke(r) => {
                if self.m.leases.remove(&r.id).is_none() {
                    return Err(MvccError::LeaseNotFound);
                }
                let held: Vec<Vec<u8>> = self
                    .m
                    .all(b"\0", b"\0", self.revision())
                    .into_iter()
                    .filter(|kv| kv.lease == r.id)
                    .map(|kv| kv.key)
                    .collect();
                for key in held {
                    self.delete(&DeleteRangeRequest {
                        key,
                        ..Default::default()
                    });
                }
                Response::LeaseRevoke(LeaseRevokeResponse {
                    header: header(self.revision()),
                })
            }
            Request::Compaction(c) => {
                if c.revision <= self.m.compacted {
                    return Err(MvccError::Compacted);
                }
                if c.revision > self.m.current {
                    return Err(MvccError::FutureRevision);
                }
                self.m.compacted = c.revision;
                Response::Compaction(CompactionResponse {
                    header: header(self.m.current),
                })
            }
        })
    }
}

impl Model {
    /// Applies `req`; on a request error the model is left unchanged.
    fn apply(&mut self, req: &Request) -> Result<ApplyOutcome, MvccError> {
        let before = self.clone();
        let main = self.current + 1;
        let mut txn = ModelTxn {
            m: self,
            main,
            events: vec![],
        };
        match txn.apply(req) {
            Ok(response) => {
                let events = std::mem::take(&mut txn.events);
                if !events.is_empty() {
                    self.current = main;
                }
                Ok(ApplyOutcome { response, events })
            }
            Err(e) => {
                *self = before;
                Err(e)
            }
        }
    }
}

// ---- random requests ----------------------------------------------------------------------

struct Gen {
    rng: ChaCha8Rng,
}

impl Gen {
    fn key(&mut self) -> Vec<u8> {
        KEYS[self.rng.random_range(0..KEYS.len())].to_vec()
    }

    fn range_end(&mut self, key: &[u8]) -> Vec<u8> {
        match self.rng.random_range(0..5) {
            0 | 1 => vec![],
            2 => vec![0],
            3 => super::index::prefix_range_end(key),
            _ => self.key(), // may be reversed or equal: must match nothing
        }
    }

    fn revision(&mut self, m: &Model) -> i64 {
        if self.rng.random_bool(0.5) {
            0
        } else {
            self.rng.random_range(m.compacted - 1..=m.current + 1)
        }
    }

    fn range(&mut self, m: &Model) -> RangeRequest {
        let key = if self.rng.random_bool(0.1) {
            vec![0]
        } else {
            self.key()
        };
        let range_end = self.range_end(&key);
        let filter = |rng: &mut ChaCha8Rng| {
            if rng.random_bool(0.15) {
                rng.random_range(1..=m.current + 1)
            } else {
                0
            }
        };
        RangeRequest {
            range_end,
            key,
            limit: if self.rng.random_bool(0.5) {
                0
            } else {
                self.rng.random_range(1..4)
            },
            revision: self.revision(m),
            sort_order: self.rng.random_range(0..3),
            sort_target: self.rng.random_range(0..5),
            serializable: self.rng.random_bool(0.5),
            keys_only: self.rng.random_bool(0.2),
            count_only: self.rng.random_bool(0.1),
            min_mod_revision: filter(&mut self.rng),
            max_mod_revision: filter(&mut self.rng),
            min_create_revision: filter(&mut self.rng),
            max_create_revision: filter(&mut self.rng),
        }
    }

    fn put(&mut self) -> PutRequest {
        let ignore_value = self.rng.random_bool(0.1);
        let ignore_lease = self.rng.random_bool(0.1);
        let value = VALUES[self.rng.random_range(0..VALUES.len())].to_vec();
        PutRequest {
            key: self.key(),
            value: if ignore_value && self.rng.random_bool(0.7) {
                vec![]
            } else {
                value
            },
            lease: if ignore_lease && self.rng.random_bool(0.7) {
                0
            } else {
                self.rng.random_range(0..3)
            },
            prev_kv: self.rng.random_bool(0.5),
            ignore_value,
            ignore_lease,
        }
    }

    fn delete(&mut self) -> DeleteRangeRequest {
        let key = self.key();
        DeleteRangeRequest {
            range_end: self.range_end(&key),
            key,
            prev_kv: self.rng.random_bool(0.5),
        }
    }

    fn compare(&mut self, m: &Model) -> Compare {
        let key = self.key();
        let target = self.rng.random_range(0..5);
        let n = self.rng.random_range(0..=m.current + 1);
        let union = match self.rng.random_range(0..6) {
            0 => TargetUnion::Version(self.rng.random_range(0..4)),
            1 => TargetUnion::CreateRevision(n),
            2 => TargetUnion::ModRevision(n),
            3 => TargetUnion::Value(VALUES[self.rng.random_range(0..VALUES.len())].to_vec()),
            4 => TargetUnion::Lease(self.rng.random_range(0..3)),
            // Mostly the union matching the target.
            _ => match target {
                0 => TargetUnion::Version(self.rng.random_range(0..4)),
                1 => TargetUnion::CreateRevision(n),
                2 => TargetUnion::ModRevision(n),
                3 => TargetUnion::Value(VALUES[self.rng.random_range(0..VALUES.len())].to_vec()),
                _ => TargetUnion::Lease(self.rng.random_range(0..3)),
            },
        };
        Compare {
            result: self.rng.random_range(0..4),
            target,
            range_end: if self.rng.random_bool(0.7) {
                vec![]
            } else {
                self.range_end(&key)
            },
            key,
            target_union: Some(union),
        }
    }

    fn ops(&mut self, m: &Model, depth: u32) -> Vec<RequestOp> {
        (0..self.rng.random_range(0..4))
            .map(|_| {
                let request = match self.rng.random_range(0..if depth < 2 { 4 } else { 3 }) {
                    0 => request_op::Request::RequestRange(self.range(m)),
                    1 => request_op::Request::RequestPut(self.put()),
                    2 => request_op::Request::RequestDeleteRange(self.delete()),
                    _ => request_op::Request::RequestTxn(self.txn(m, depth + 1)),
                };
                RequestOp {
                    request: Some(request),
                }
            })
            .collect()
    }

    fn txn(&mut self, m: &Model, depth: u32) -> TxnRequest {
        TxnRequest {
            compare: (0..self.rng.random_range(0..3))
                .map(|_| self.compare(m))
                .collect(),
            success: self.ops(m, depth),
            failure: self.ops(m, depth),
        }
    }

    fn request(&mut self, m: &Model) -> Request {
        match self.rng.random_range(0..100) {
            0..35 => Request::Put(self.put()),
            35..50 => Request::DeleteRange(self.delete()),
            50..70 => Request::Txn(self.txn(m, 0)),
            70..86 => Request::Range(self.range(m)),
            86..90 => Request::LeaseGrant(LeaseGrantRequest {
                id: self.rng.random_range(1..3),
                ttl: if self.rng.random_bool(0.1) {
                    super::lease::MAX_LEASE_TTL_SECS + 1
                } else {
                    self.rng.random_range(1..100)
                },
            }),
            90..93 => Request::LeaseRevoke(LeaseRevokeRequest {
                id: self.rng.random_range(0..3),
            }),
            _ => Request::Compaction(CompactionRequest {
                revision: self.rng.random_range(m.compacted - 1..=m.current + 1),
                physical: self.rng.random_bool(0.5),
            }),
        }
    }
}

/// The lease table agrees with the model: the same leases and TTLs, and each lease holds
/// exactly the live keys whose latest version names it.
fn check_leases(kv: &Kv, m: &Model, ctx: &str) {
    let want: Vec<(i64, i64)> = m.leases.iter().map(|(id, ttl)| (*id, *ttl)).collect();
    assert_eq!(kv.leases().list(), want, "{ctx}: leases");
    for id in m.leases.keys() {
        let held: BTreeSet<Vec<u8>> = m
            .all(b"\0", b"\0", m.current)
            .into_iter()
            .filter(|kv| kv.lease == *id)
            .map(|kv| kv.key)
            .collect();
        assert_eq!(
            kv.leases().get(*id).unwrap().keys,
            held,
            "{ctx}: keys of lease {id}"
        );
    }
}

/// Every key at every readable revision agrees with the model.
fn check_full_history(kv: &Kv, m: &Model, ctx: &str) {
    check_leases(kv, m, ctx);
    for at in m.compacted.max(1)..=m.current {
        let all = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision: at,
            ..Default::default()
        };
        let got = kv
            .range(&all)
            .unwrap_or_else(|e| panic!("{ctx}: read at {at}: {e}"));
        assert_eq!(
            got.kvs,
            m.all(b"\0", b"\0", at),
            "{ctx}: history at revision {at}"
        );
    }
}

/// Applies `req` as raft entry `raft_index` to the store and to the model and compares the
/// answers, the applied index and the revisions.
fn step(kv: &mut Kv, model: &mut Model, raft_index: u64, req: &Request, ctx: &str) {
    let got = kv.apply(raft_index, req);
    let want = model.apply(req);
    match (got, want) {
        (Ok(Some(got)), Ok(want)) => assert_eq!(got, want, "{ctx}: {req:?}"),
        (Err(got), Err(want)) => {
            assert_eq!(got.to_string(), want.to_string(), "{ctx}: {req:?}")
        }
        (got, want) => panic!("{ctx}: {req:?}\n got {got:?}\nwant {want:?}"),
    }
    assert_eq!(
        kv.applied_index(),
        raft_index,
        "{ctx}: a failed request still consumes its entry"
    );
    assert_eq!(
        (kv.current_revision(), kv.compact_revision()),
        (model.current, model.compacted),
        "{ctx}"
    );
}

fn open_fjall(db: &Database) -> Kv {
    Kv::open(FjallBackend::open(db).unwrap()).unwrap()
}

/// The model test on the server's backend, reopening the fjall database every 97 steps.
fn run_seed(seed: u64, steps: u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let mut kv = open_fjall(&db);
    let mut model = Model::new();
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
    };
    for n in 1..=steps {
        let ctx = format!("seed {seed} step {n}");
        let req = g.request(&model);
        let raft_index = n * 2; // gaps: indices of entries other layers own
        step(&mut kv, &mut model, raft_index, &req, &ctx);
        if g.rng.random_bool(0.05) {
            let old = g.rng.random_range(1..=raft_index);
            assert!(
                kv.apply(old, &req).unwrap().is_none(),
                "{ctx}: replay of index {old}"
            );
        }
        if n % 40 == 0 {
            check_full_history(&kv, &model, &ctx);
        }
        if n % 97 == 0 {
            drop(kv);
            kv = open_fjall(&db);
            assert_eq!(kv.applied_index(), raft_index, "{ctx}: reopen");
            check_full_history(&kv, &model, &format!("{ctx} after reopen"));
        }
    }
}

#[test]
fn model_random_sequences() {
    if let Some(seed) = std::env::var("MVCC_SEED").ok().and_then(|s| s.parse().ok()) {
        return run_seed(seed, 400);
    }
    for seed in 0..24 {
        run_seed(seed, 300);
    }
}

/// The model test on [`MemBackend`] with crashes: the store may lose its unsynced tail, and
/// the raft log replays it.
///
/// Entry `n` of a simulated raft log (index `2n`) carries the `n`-th generated request. The disk
/// syncs at random times (`sync_all`, as a raft log fsync does in the server); at random crash
/// points the disk keeps the synced batches plus a random prefix of the unsynced ones
/// (`crash_keeping`). After each crash and reopen the store must equal the model rewound to the
/// surviving applied index — which must be a batch boundary no older than the last sync — and
/// then the driver replays the log from there, every answer again equal to the model's.
fn run_crash_seed(seed: u64, entries: usize) -> (u64, u64) {
    let mut disk = MemBackend::new();
    let mut kv = Kv::open(disk.clone()).unwrap();
    let mut model = Model::new();
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0xc4a5),
    };
    let mut log: Vec<Request> = Vec::new();
    // `(applied index, model)` as of the last sync, then after each later entry: what a crash
    // may leave, oldest first.
    let mut since_sync: Vec<(u64, Model)> = vec![(0, Model::new())];
    let mut applied = 0; // entries of `log` in the store
    let mut crashes = 0;
    while applied < entries {
        let ctx = format!("crash seed {seed} entry {}", applied + 1);
        if applied == log.len() {
            log.push(g.request(&model));
        }
        let raft_index = 2 * (applied as u64 + 1);
        step(&mut kv, &mut model, raft_index, &log[applied], &ctx);
        applied += 1;
        since_sync.push((raft_index, model.clone()));
        assert_eq!(
            disk.unsynced_batches(),
            since_sync.len() - 1,
            "{ctx}: one batch per entry"
        );
        if g.rng.random_bool(0.1) {
            disk.sync_all();
            since_sync.drain(..since_sync.len() - 1);
        }
        if g.rng.random_bool(0.04) {
            let unsynced = since_sync.len() - 1;
            let keep = if g.rng.random_bool(0.5) {
                0
            } else {
                g.rng.random_range(0..=unsynced)
            };
            assert_eq!(disk.crash_keeping(keep), unsynced - keep, "{ctx}: lost");
            crashes += 1;
            drop(kv);
            kv = Kv::open(disk.clone()).unwrap();
            let (index, survivor) = since_sync.swap_remove(keep);
            let ctx = format!("{ctx}, crash {crashes} keeping {keep} of {unsynced}");
            assert_eq!(kv.applied_index(), index, "{ctx}: surviving applied index");
            model = survivor;
            check_full_history(&kv, &model, &ctx);
            since_sync = vec![(index, model.clone())];
            applied = (index / 2) as usize; // the log replays the rest
        }
    }
    check_full_history(&kv, &model, &format!("crash seed {seed} end"));
    (crashes, disk.lost_batches())
}

#[test]
fn model_random_crashes_lose_only_the_unsynced_tail() {
    if let Some(seed) = std::env::var("MVCC_SEED").ok().and_then(|s| s.parse().ok()) {
        run_crash_seed(seed, 400);
        return;
    }
    let (mut crashes, mut lost) = (0, 0);
    for seed in 0..24 {
        let (c, l) = run_crash_seed(seed, 300);
        crashes += c;
        lost += l;
    }
    assert!(
        crashes > 100 && lost > 100,
        "crashes {crashes}, lost batches {lost}"
    );
}
