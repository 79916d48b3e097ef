//! etcd's KV requests applied to the store: Range, Put, DeleteRange, Txn, Compaction
//! (etcd 3.4 `etcdserver/apply.go`, `applierV3backend`; checked against a running etcd 3.4.23).
//!
//! Each raft entry is applied in one [`WriteTxn`] and committed in one atomic batch together with
//! its raft index, so a restart replays exactly the entries after [`Kv::applied_index`].

use std::cmp::Ordering;

use super::error::{MvccError, Result};
use super::kv::{Kv, RangeOptions, RangeResult, WriteTxn};
use super::lease::MAX_LEASE_TTL_SECS;
use crate::pb::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, CompactionRequest, CompactionResponse,
    Compare, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
    alarm_request::AlarmAction,
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op, response_op,
};
use crate::pb::mvccpb::{Event, KeyValue};
use crate::pb::peerpb::internal_request;

/// A KV request carried by a raft entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// KV.Range through the log.
    Range(RangeRequest),
    /// KV.Put.
    Put(PutRequest),
    /// KV.DeleteRange.
    DeleteRange(DeleteRangeRequest),
    /// KV.Txn.
    Txn(TxnRequest),
    /// KV.Compact.
    Compaction(CompactionRequest),
    /// Lease.LeaseGrant, with `id` chosen (≠ 0) and `ttl` clamped by the proposer.
    LeaseGrant(LeaseGrantRequest),
    /// Lease.LeaseRevoke, or the leader revoking an expired lease.
    LeaseRevoke(LeaseRevokeRequest),
    /// Maintenance.Alarm: GET, ACTIVATE or DEACTIVATE (etcd `applierV3backend.Alarm`).
    Alarm(AlarmRequest),
}

impl Request {
    /// The store request a log entry's `InternalRequest` carries, or `Err` handing back the
    /// requests other layers own (member attributes).
    pub fn from_internal(
        request: internal_request::Request,
    ) -> std::result::Result<Request, internal_request::Request> {
        use internal_request::Request as Internal;
        Ok(match request {
            Internal::Put(r) => Request::Put(r),
            Internal::DeleteRange(r) => Request::DeleteRange(r),
            Internal::Txn(r) => Request::Txn(r),
            Internal::Compaction(r) => Request::Compaction(r),
            Internal::Range(r) => Request::Range(r),
            Internal::LeaseGrant(r) => Request::LeaseGrant(r),
            Internal::LeaseRevoke(r) => Request::LeaseRevoke(r),
            Internal::Alarm(r) => Request::Alarm(r),
            other @ Internal::MemberAttributes(_) => return Err(other),
        })
    }
}

/// The answer to a [`Request`], of the matching variant.
///
/// `header` is set with only `revision` filled (the store revision after the request); the API
/// layer fills `cluster_id`, `member_id` and `raft_term`.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// Answer to [`Request::Range`].
    Range(RangeResponse),
    /// Answer to [`Request::Put`].
    Put(PutResponse),
    /// Answer to [`Request::DeleteRange`].
    DeleteRange(DeleteRangeResponse),
    /// Answer to [`Request::Txn`].
    Txn(TxnResponse),
    /// Answer to [`Request::Compaction`].
    Compaction(CompactionResponse),
    /// Answer to [`Request::LeaseGrant`].
    LeaseGrant(LeaseGrantResponse),
    /// Answer to [`Request::LeaseRevoke`].
    LeaseRevoke(LeaseRevokeResponse),
    /// Answer to [`Request::Alarm`].
    Alarm(AlarmResponse),
}

/// What applying one raft entry produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyOutcome {
    /// The client's answer.
    pub response: Response,
    /// The changes in revision order (all sharing one main revision), for the watch hub. Each
    /// event's `prev_kv` is set when the key existed before; the hub strips it for watchers
    /// that did not ask for it.
    pub events: Vec<Event>,
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl Kv {
    /// Applies the request of raft entry `raft_index`.
    ///
    /// Returns:
    /// - `Ok(None)` when `raft_index ≤ applied_index()`: the entry was applied before (a
    ///   replay after restart); nothing changes.
    /// - `Ok(Some(outcome))`: applied; its writes and `raft_index` are committed atomically.
    /// - `Err(e)` with `!e.is_fatal()` (compacted, future revision, key not found, value/lease
    ///   provided): the request failed *and the entry is consumed* — nothing in the key space
    ///   changed, the applied index advanced to `raft_index`; answer the client with `e`.
    /// - `Err(e)` with `e.is_fatal()` (storage, corrupt): stop the member.
    pub fn apply(&mut self, raft_index: u64, req: &Request) -> Result<Option<ApplyOutcome>> {
        let Some(mut txn) = self.write(raft_index) else {
            return Ok(None);
        };
        if let Some(refused) = refused_by_alarm(&txn, req) {
            drop(txn);
            self.mark_applied(raft_index)?;
            return Err(refused);
        }
        match execute(&mut txn, req) {
            Ok(response) => {
                let events = txn.commit()?;
                Ok(Some(ApplyOutcome { response, events }))
            }
            Err(e) if e.is_fatal() => Err(e),
            Err(e) => {
                drop(txn); // undoes any change the request made before failing
                self.mark_applied(raft_index)?;
                Err(e)
            }
        }
    }

    /// Serves a Range without the log (serializable reads, and linearizable reads after
    /// ReadIndex). Writes nothing. Same semantics as a Range applied through [`Kv::apply`].
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        range(self, req)
    }
}

/// Reads at a revision: the committed store, or a write transaction's view.
trait Reader {
    fn read(&self, key: &[u8], range_end: &[u8], opts: &RangeOptions) -> Result<RangeResult>;
}

impl Reader for Kv {
    fn read(&self, key: &[u8], range_end: &[u8], opts: &RangeOptions) -> Result<RangeResult> {
        self.range_keys(key, range_end, opts)
    }
}

impl Reader for WriteTxn<'_> {
    fn read(&self, key: &[u8], range_end: &[u8], opts: &RangeOptions) -> Result<RangeResult> {
        self.range_keys(key, range_end, opts)
    }
}

fn execute(txn: &mut WriteTxn<'_>, req: &Request) -> Result<Response> {
    Ok(match req {
        Request::Range(r) => Response::Range(range(txn, r)?),
        Request::Put(p) => {
            check_put(txn, p)?;
            Response::Put(put(txn, p)?)
        }
        Request::DeleteRange(d) => Response::DeleteRange(delete_range(txn, d)?),
        Request::Txn(t) => Response::Txn(self::txn(txn, t)?),
        Request::Compaction(c) => {
            txn.compact(c.revision)?;
            // The compaction itself changes no revision (etcd answers with the current one).
            Response::Compaction(CompactionResponse {
                header: header(txn.revision()),
            })
        }
        Request::LeaseGrant(g) => {
            if g.ttl > MAX_LEASE_TTL_SECS {
                return Err(MvccError::LeaseTtlTooLarge);
            }
            txn.grant_lease(g.id, g.ttl)?;
            Response::LeaseGrant(LeaseGrantResponse {
                header: header(txn.revision()),
                id: g.id,
                ttl: g.ttl,
                error: String::new(),
            })
        }
        Request::Alarm(a) => Response::Alarm(alarm(txn, a)),
        Request::LeaseRevoke(r) => {
            txn.revoke_lease(r.id)?;
            Response::LeaseRevoke(LeaseRevokeResponse {
                header: header(txn.revision()),
            })
        }
    })
}

// ---- Alarms ---------------------------------------------------------------------------------

/// etcd's capped and corrupt appliers: with CORRUPT active every request but Alarm is refused
/// (`applierV3Corrupt`); with NOSPACE active, Put, LeaseGrant and a Txn that puts anywhere in
/// its branches are (`applierV3Capped`); reads, deletes, compactions and revokes go on.
fn refused_by_alarm(txn: &WriteTxn<'_>, req: &Request) -> Option<MvccError> {
    if matches!(req, Request::Alarm(_)) {
        return None;
    }
    if txn.alarm_type_active(AlarmType::Corrupt as i32) {
        return Some(MvccError::CorruptCluster);
    }
    let adds_data = match req {
        Request::Put(_) | Request::LeaseGrant(_) => true,
        Request::Txn(t) => txn_puts(t),
        _ => false,
    };
    (adds_data && txn.alarm_type_active(AlarmType::Nospace as i32)).then_some(MvccError::NoSpace)
}

/// Whether a Txn puts in either branch, nested Txns included (etcd `isTxnReadonly` negated
/// for puts).
pub fn txn_puts(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(&t.failure)
        .any(|op| match &op.request {
            Some(request_op::Request::RequestPut(_)) => true,
            Some(request_op::Request::RequestTxn(inner)) => txn_puts(inner),
            _ => false,
        })
}

/// etcd `applierV3backend.Alarm`: GET lists the alarms of `alarm`'s type (all for NONE);
/// ACTIVATE raises it for `member_id` and answers it; DEACTIVATE clears it and answers it,
/// or answers nothing when it was not active.
fn alarm(txn: &mut WriteTxn<'_>, a: &AlarmRequest) -> AlarmResponse {
    let member = |m: u64, t: i32| AlarmMember {
        member_id: m,
        alarm: t,
    };
    let alarms = match a.action() {
        AlarmAction::Get => txn
            .alarm_list()
            .into_iter()
            .filter(|(_, t)| a.alarm == AlarmType::None as i32 || *t == a.alarm)
            .map(|(m, t)| member(m, t))
            .collect(),
        AlarmAction::Activate => {
            txn.raise_alarm(a.member_id, a.alarm);
            vec![member(a.member_id, a.alarm)]
        }
        AlarmAction::Deactivate => {
            if txn.clear_alarm(a.member_id, a.alarm) {
                vec![member(a.member_id, a.alarm)]
            } else {
                Vec::new()
            }
        }
    };
    AlarmResponse {
        header: header(txn.revision()),
        alarms,
    }
}

// ---- Range ----------------------------------------------------------------------------------

/// etcd `applierV3backend.Range`, including its quirks:
/// - with a sort order, or any min/max revision filter, every key of the range is fetched,
///   filtered, sorted, then cut to `limit`; otherwise only the first `limit + 1` keys (in key
///   order) are fetched, and then sorted — so `sort_order NONE` with a non-KEY target (which
///   etcd sorts ASCEND) orders only those;
/// - `count` is the number of keys in the range before the min/max filters;
/// - `more` is set when more than `limit` key-values remained after filtering;
/// - ties of a non-KEY sort stay in key order (etcd uses an unstable sort; for ≤ 12 results it
///   is insertion sort, which agrees).
fn range(reader: &impl Reader, r: &RangeRequest) -> Result<RangeResponse> {
    let order = SortOrder::try_from(r.sort_order).ok();
    let target = SortTarget::try_from(r.sort_target).ok();
    let filtered = r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    let fetch_all = order != Some(SortOrder::None) || filtered;
    let limit = match usize::try_from(r.limit) {
        Ok(n) if n > 0 && !fetch_all => n.saturating_add(1),
        _ => 0,
    };
    let opts = RangeOptions {
        revision: r.revision,
        limit,
        count_only: r.count_only,
    };
    let result = reader.read(&r.key, &r.range_end, &opts)?;
    let mut kvs = result.kvs;
    kvs.retain(|kv| {
        (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
            && (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
            && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
            && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
    });
    let order = match (order, target) {
        (Some(SortOrder::None), Some(t)) if t != SortTarget::Key => Some(SortOrder::Ascend),
        (order, _) => order,
    };
    if let (Some(order @ (SortOrder::Ascend | SortOrder::Descend)), Some(target)) = (order, target)
    {
        sort_kvs(&mut kvs, order, target);
    }
    let mut more = false;
    if let Ok(n) = usize::try_from(r.limit)
        && n > 0
        && kvs.len() > n
    {
        kvs.truncate(n);
        more = true;
    }
    if r.keys_only {
        kvs.iter_mut().for_each(|kv| kv.value.clear());
    }
    Ok(RangeResponse {
        header: header(result.revision),
        kvs,
        more,
        count: result.count as i64,
    })
}

fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let key = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::Descend => kvs.sort_by(|a, b| key(b, a)),
        _ => kvs.sort_by(key),
    }
}

// ---- Put / DeleteRange ------------------------------------------------------------------------

/// The checks etcd makes before a put changes anything: `value is provided`, `lease is
/// provided` (etcd v3rpc `checkPutRequest`), and `key not found` for `ignore_value` /
/// `ignore_lease` on a missing key, then `requested lease not found` for a lease that is not
/// granted (etcd `checkRequestPut`).
fn check_put(reader: &WriteTxn<'_>, p: &PutRequest) -> Result<()> {
    if p.ignore_value && !p.value.is_empty() {
        return Err(MvccError::ValueProvided);
    }
    if p.ignore_lease && p.lease != 0 {
        return Err(MvccError::LeaseProvided);
    }
    if (p.ignore_value || p.ignore_lease) && current(reader, &p.key)?.is_none() {
        return Err(MvccError::KeyNotFound);
    }
    if p.lease != 0 && !reader.lease_exists(p.lease) {
        return Err(MvccError::LeaseNotFound);
    }
    Ok(())
}

fn current(reader: &impl Reader, key: &[u8]) -> Result<Option<KeyValue>> {
    Ok(reader.read(key, b"", &RangeOptions::default())?.kvs.pop())
}

/// etcd `applierV3backend.Put`: `ignore_value`/`ignore_lease` keep the previous value/lease.
fn put(txn: &mut WriteTxn<'_>, p: &PutRequest) -> Result<PutResponse> {
    let mut value = p.value.clone();
    let mut lease = p.lease;
    if p.ignore_value || p.ignore_lease {
        let prev = current(txn, &p.key)?.ok_or(MvccError::KeyNotFound)?;
        if p.ignore_value {
            value = prev.value;
        }
        if p.ignore_lease {
            lease = prev.lease;
        }
    }
    let prev = txn.put(&p.key, value, lease)?;
    Ok(PutResponse {
        header: header(txn.revision()),
        prev_kv: prev.filter(|_| p.prev_kv),
    })
}

/// etcd `applierV3backend.DeleteRange`.
fn delete_range(txn: &mut WriteTxn<'_>, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
    let deleted = txn.delete_range(&d.key, &d.range_end)?;
    Ok(DeleteRangeResponse {
        header: header(txn.revision()),
        deleted: deleted.len() as i64,
        prev_kvs: if d.prev_kv { deleted } else { Vec::new() },
    })
}

// ---- Txn --------------------------------------------------------------------------------------

/// The branch each (nested) transaction takes, decided before anything is written: etcd
/// evaluates every compare, nested ones included, against the state before the transaction
/// (`compareToPath`).
struct TxnPath {
    succeeded: bool,
    /// One entry per `RequestTxn` op of the taken branch, in order.
    nested: Vec<TxnPath>,
}

impl TxnPath {
    fn decide(reader: &impl Reader, t: &TxnRequest) -> Result<TxnPath> {
        let mut succeeded = true;
        for c in &t.compare {
            if !compare_holds(reader, c)? {
                succeeded = false;
                break;
            }
        }
        let mut nested = Vec::new();
        for op in branch(t, succeeded) {
            if let Some(request_op::Request::RequestTxn(inner)) = &op.request {
                nested.push(TxnPath::decide(reader, inner)?);
            }
        }
        Ok(TxnPath { succeeded, nested })
    }
}

fn branch(t: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded { &t.success } else { &t.failure }
}

/// etcd `applyCompare` (3.4): every key of the compare's range must satisfy it; a range with no
/// key compares against a zero KeyValue, except that a VALUE compare on a missing key always
/// fails.
fn compare_holds(reader: &impl Reader, c: &Compare) -> Result<bool> {
    let kvs = reader
        .read(&c.key, &c.range_end, &RangeOptions::default())?
        .kvs;
    let target = CompareTarget::try_from(c.target).ok();
    if kvs.is_empty() {
        return Ok(
            target != Some(CompareTarget::Value) && compare_kv(c, target, &KeyValue::default())
        );
    }
    Ok(kvs.iter().all(|kv| compare_kv(c, target, kv)))
}

fn compare_kv(c: &Compare, target: Option<CompareTarget>, kv: &KeyValue) -> bool {
    // A target_union of another kind than `target` compares against zero/empty, as in etcd.
    let int =
        |pick: fn(&TargetUnion) -> Option<i64>| c.target_union.as_ref().and_then(pick).unwrap_or(0);
    let ordering = match target {
        Some(CompareTarget::Value) => {
            let want: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(want)
        }
        Some(CompareTarget::Version) => kv.version.cmp(&int(|u| {
            if let TargetUnion::Version(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        Some(CompareTarget::Create) => kv.create_revision.cmp(&int(|u| {
            if let TargetUnion::CreateRevision(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        Some(CompareTarget::Mod) => kv.mod_revision.cmp(&int(|u| {
            if let TargetUnion::ModRevision(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        Some(CompareTarget::Lease) => kv.lease.cmp(&int(|u| {
            if let TargetUnion::Lease(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        None => Ordering::Equal,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ordering == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ordering != Ordering::Equal,
        Ok(CompareResult::Greater) => ordering == Ordering::Greater,
        Ok(CompareResult::Less) => ordering == Ordering::Less,
        Err(_) => true,
    }
}

/// etcd `checkRequests`: on the state before the transaction, puts of the taken branches
/// (nested included) pass [`check_put`] and ranges ask for no future/compacted revision.
fn check_txn(reader: &WriteTxn<'_>, t: &TxnRequest, path: &TxnPath) -> Result<()> {
    let mut nested = path.nested.iter();
    for op in branch(t, path.succeeded) {
        match &op.request {
            Some(request_op::Request::RequestPut(p)) => check_put(reader, p)?,
            Some(request_op::Request::RequestRange(r)) => {
                if r.revision > reader.revision() {
                    return Err(MvccError::FutureRevision);
                }
                if r.revision != 0 && r.revision < reader.compact_revision() {
                    return Err(MvccError::Compacted);
                }
            }
            Some(request_op::Request::RequestTxn(inner)) => check_txn(
                reader,
                inner,
                nested.next().expect("path has one entry per nested txn"),
            )?,
            Some(request_op::Request::RequestDeleteRange(_)) | None => {}
        }
    }
    Ok(())
}

/// etcd `applierV3backend.Txn`: decide the path, check it, then run the taken branch; reads see
/// the branch's earlier writes and every write shares one revision.
fn txn(txn: &mut WriteTxn<'_>, t: &TxnRequest) -> Result<TxnResponse> {
    let path = TxnPath::decide(txn, t)?;
    check_txn(txn, t, &path)?;
    let mut response = run_txn(txn, t, &path)?;
    response.header = header(txn.revision());
    Ok(response)
}

/// Runs the taken branch. Nested responses carry an empty header, as etcd's do.
fn run_txn(txn: &mut WriteTxn<'_>, t: &TxnRequest, path: &TxnPath) -> Result<TxnResponse> {
    let mut nested = path.nested.iter();
    let mut responses = Vec::new();
    for op in branch(t, path.succeeded) {
        let response = match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                Some(response_op::Response::ResponseRange(range(txn, r)?))
            }
            Some(request_op::Request::RequestPut(p)) => {
                Some(response_op::Response::ResponsePut(put(txn, p)?))
            }
            Some(request_op::Request::RequestDeleteRange(d)) => Some(
                response_op::Response::ResponseDeleteRange(delete_range(txn, d)?),
            ),
            Some(request_op::Request::RequestTxn(inner)) => {
                let inner_path = nested.next().expect("path has one entry per nested txn");
                let mut inner_response = run_txn(txn, inner, inner_path)?;
                inner_response.header = Some(ResponseHeader::default());
                Some(response_op::Response::ResponseTxn(inner_response))
            }
            None => None,
        };
        responses.push(ResponseOp { response });
    }
    Ok(TxnResponse {
        header: None,
        succeeded: path.succeeded,
        responses,
    })
}

#[cfg(test)]
mod alarm_tests {
    use super::*;
    use crate::mvcc::MemBackend;

    fn alarm_req(action: AlarmAction, alarm: AlarmType) -> Request {
        Request::Alarm(AlarmRequest {
            action: action as i32,
            member_id: 7,
            alarm: alarm as i32,
        })
    }

    fn put(key: &str) -> Request {
        Request::Put(PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            ..Default::default()
        })
    }

    fn txn(op: request_op::Request) -> Request {
        Request::Txn(TxnRequest {
            success: vec![RequestOp { request: Some(op) }],
            ..Default::default()
        })
    }

    fn alarms(response: Option<ApplyOutcome>) -> Vec<(u64, i32)> {
        match response.map(|o| o.response) {
            Some(Response::Alarm(r)) => r.alarms.iter().map(|a| (a.member_id, a.alarm)).collect(),
            other => panic!("not an alarm response: {other:?}"),
        }
    }

    #[test]
    fn nospace_caps_writes_that_add_data_and_corrupt_refuses_everything() {
        let disk = MemBackend::new();
        let mut kv = Kv::open(disk.reopen()).unwrap();
        let mut index = 0;
        let mut apply = |kv: &mut Kv, req: &Request| {
            index += 1;
            kv.apply(index, req)
        };
        apply(&mut kv, &put("a")).unwrap();
        let raised = apply(
            &mut kv,
            &alarm_req(AlarmAction::Activate, AlarmType::Nospace),
        );
        assert_eq!(alarms(raised.unwrap()), [(7, AlarmType::Nospace as i32)]);

        assert!(matches!(apply(&mut kv, &put("b")), Err(MvccError::NoSpace)));
        let nested_put = txn(request_op::Request::RequestTxn(TxnRequest {
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: b"c".to_vec(),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        }));
        assert!(matches!(
            apply(&mut kv, &nested_put),
            Err(MvccError::NoSpace)
        ));
        let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 9 });
        assert!(matches!(apply(&mut kv, &grant), Err(MvccError::NoSpace)));
        let delete_txn = txn(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: b"a".to_vec(),
                ..Default::default()
            },
        ));
        assert!(apply(&mut kv, &delete_txn).is_ok(), "deleting frees space");
        assert_eq!(
            kv.applied_index(),
            6,
            "a refused request still consumes its entry"
        );

        // The alarm is stored with the applied index: a restart keeps it.
        let mut kv = Kv::open(disk.reopen()).unwrap();
        assert_eq!(kv.alarms().len(), 1);
        let got = apply(&mut kv, &alarm_req(AlarmAction::Get, AlarmType::None));
        assert_eq!(alarms(got.unwrap()), [(7, AlarmType::Nospace as i32)]);
        let cleared = apply(
            &mut kv,
            &alarm_req(AlarmAction::Deactivate, AlarmType::Nospace),
        );
        assert_eq!(alarms(cleared.unwrap()), [(7, AlarmType::Nospace as i32)]);
        let again = apply(
            &mut kv,
            &alarm_req(AlarmAction::Deactivate, AlarmType::Nospace),
        );
        assert_eq!(alarms(again.unwrap()), [], "nothing to clear");
        assert!(apply(&mut kv, &put("b")).is_ok());

        apply(
            &mut kv,
            &alarm_req(AlarmAction::Activate, AlarmType::Corrupt),
        )
        .unwrap();
        let range = Request::Range(RangeRequest {
            key: b"b".to_vec(),
            ..Default::default()
        });
        assert!(matches!(
            apply(&mut kv, &range),
            Err(MvccError::CorruptCluster)
        ));
        assert!(matches!(
            apply(
                &mut kv,
                &Request::DeleteRange(DeleteRangeRequest::default())
            ),
            Err(MvccError::CorruptCluster)
        ));
        let listed = apply(&mut kv, &alarm_req(AlarmAction::Get, AlarmType::Corrupt));
        assert_eq!(alarms(listed.unwrap()), [(7, AlarmType::Corrupt as i32)]);
    }
}
