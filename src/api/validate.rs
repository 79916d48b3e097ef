//! Request checks made before anything is proposed, with etcd's exact errors
//! (etcd `v3rpc/key.go`: checkRangeRequest, checkPutRequest, checkTxnRequest, checkIntervals).
//! A request that fails here never reaches the log, so nothing is half-applied.

use super::error::{duplicate_key, empty_key, invalid_sort_option, too_many_ops};
use crate::pb::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, request_op,
};
use std::collections::BTreeSet;
use tonic::Status;

/// Range: key given; sort order and target are known values.
pub fn range(r: &RangeRequest) -> Result<(), Status> {
    if r.key.is_empty() {
        return Err(empty_key());
    }
    let order_ok = (0..=2).contains(&r.sort_order);
    let target_ok = (0..=4).contains(&r.sort_target);
    if !order_ok || !target_ok {
        return Err(invalid_sort_option());
    }
    Ok(())
}

/// Put: key given; `ignore_value`/`ignore_lease` come without a value/lease.
pub fn put(r: &PutRequest) -> Result<(), Status> {
    if r.key.is_empty() {
        return Err(empty_key());
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(Status::invalid_argument("etcdserver: value is provided"));
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(Status::invalid_argument("etcdserver: lease is provided"));
    }
    Ok(())
}

/// DeleteRange: key given.
pub fn delete_range(r: &DeleteRangeRequest) -> Result<(), Status> {
    if r.key.is_empty() {
        return Err(empty_key());
    }
    Ok(())
}

/// Txn: at most `max_txn_ops` compares and ops per branch (nested txns checked the same way),
/// every op valid, and no key written twice in one branch (etcd checkIntervals).
pub fn txn(r: &TxnRequest, max_txn_ops: usize) -> Result<(), Status> {
    check_txn_shape(r, max_txn_ops)?;
    for branch in [&r.success, &r.failure] {
        check_intervals(branch)?;
    }
    Ok(())
}

fn check_txn_shape(r: &TxnRequest, max_txn_ops: usize) -> Result<(), Status> {
    if r.compare.len() > max_txn_ops
        || r.success.len() > max_txn_ops
        || r.failure.len() > max_txn_ops
    {
        return Err(too_many_ops());
    }
    if r.compare.iter().any(|c| c.key.is_empty()) {
        return Err(empty_key());
    }
    for op in r.success.iter().chain(&r.failure) {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) => range(r)?,
            Some(request_op::Request::RequestPut(r)) => put(r)?,
            Some(request_op::Request::RequestDeleteRange(r)) => delete_range(r)?,
            Some(request_op::Request::RequestTxn(r)) => check_txn_shape(r, max_txn_ops)?,
            None => return Err(Status::invalid_argument("etcdserver: key is not provided")),
        }
    }
    Ok(())
}

/// Keys one branch writes: puts (must be distinct) and delete ranges `[key, range_end)`.
#[derive(Default)]
struct Writes {
    puts: BTreeSet<Vec<u8>>,
    deletes: Vec<(Vec<u8>, Vec<u8>)>,
}

fn in_range(key: &[u8], (start, end): &(Vec<u8>, Vec<u8>)) -> bool {
    match end.as_slice() {
        [] => key == start.as_slice(),
        [0] => key >= start.as_slice(),
        end => key >= start.as_slice() && key < end,
    }
}

fn check_intervals(ops: &[RequestOp]) -> Result<Writes, Status> {
    let mut writes = Writes::default();
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestPut(p)) => {
                let first_put_of_key = writes.puts.insert(p.key.clone());
                first_put_of_key.then_some(()).ok_or_else(duplicate_key)?;
            }
            Some(request_op::Request::RequestDeleteRange(d)) => {
                writes.deletes.push((d.key.clone(), d.range_end.clone()));
            }
            Some(request_op::Request::RequestTxn(t)) => {
                // Only one nested branch runs, so its two branches may write the same key,
                // but neither may collide with this branch.
                let success = check_intervals(&t.success)?;
                let failure = check_intervals(&t.failure)?;
                let nested: BTreeSet<Vec<u8>> =
                    success.puts.union(&failure.puts).cloned().collect();
                if nested.iter().any(|k| writes.puts.contains(k)) {
                    return Err(duplicate_key());
                }
                writes.puts.extend(nested);
                writes.deletes.extend(success.deletes);
                writes.deletes.extend(failure.deletes);
            }
            _ => {}
        }
    }
    if writes
        .puts
        .iter()
        .any(|k| writes.deletes.iter().any(|d| in_range(k, d)))
    {
        return Err(duplicate_key());
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_op(key: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.into(),
                ..Default::default()
            })),
        }
    }

    fn del_op(key: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: key.into(),
                    range_end: end.into(),
                    ..Default::default()
                },
            )),
        }
    }

    fn txn_of(success: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            success,
            ..Default::default()
        }
    }

    #[test]
    fn duplicate_put_in_one_branch_is_rejected_with_etcds_text() {
        let err = txn(&txn_of(vec![put_op("a"), put_op("a")]), 128).unwrap_err();
        assert_eq!(
            err.message(),
            "etcdserver: duplicate key given in txn request"
        );
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn put_inside_a_deleted_range_is_a_duplicate_but_distinct_keys_are_fine() {
        assert!(txn(&txn_of(vec![del_op("a", "c"), put_op("b")]), 128).is_err());
        assert!(txn(&txn_of(vec![del_op("a", "b"), put_op("b")]), 128).is_ok());
        assert!(txn(&txn_of(vec![put_op("a"), put_op("b")]), 128).is_ok());
    }

    #[test]
    fn nested_branches_may_repeat_a_key_but_not_the_outer_branch() {
        let nested = TxnRequest {
            success: vec![put_op("k")],
            failure: vec![put_op("k")],
            ..Default::default()
        };
        let op = RequestOp {
            request: Some(request_op::Request::RequestTxn(nested)),
        };
        assert!(txn(&txn_of(vec![op.clone()]), 128).is_ok());
        assert!(txn(&txn_of(vec![op, put_op("k")]), 128).is_err());
    }

    #[test]
    fn too_many_ops_and_empty_keys() {
        let ops: Vec<_> = (0..3).map(|i| put_op(&format!("k{i}"))).collect();
        let err = txn(&txn_of(ops), 2).unwrap_err();
        assert_eq!(
            err.message(),
            "etcdserver: too many operations in txn request"
        );
        let err = put(&PutRequest::default()).unwrap_err();
        assert_eq!(err.message(), "etcdserver: key is not provided");
    }
}
