//! gRPC statuses with etcd's exact codes and texts (etcd `api/v3rpc/rpctypes/error.go`);
//! clients match on the text, so it must not drift.

use crate::mvcc::MvccError;
use crate::node::ProposeError;
use tonic::Status;

/// `InvalidArgument` "etcdserver: key is not provided".
pub fn empty_key() -> Status {
    Status::invalid_argument("etcdserver: key is not provided")
}

/// `ResourceExhausted` "etcdserver: too many requests" (etcd `ErrGRPCRequestTooManyRequests`):
/// this member is too far behind in applying committed entries to take more.
pub fn too_many_requests() -> Status {
    Status::resource_exhausted("etcdserver: too many requests")
}

/// `InvalidArgument` "etcdserver: too many operations in txn request".
pub fn too_many_ops() -> Status {
    Status::invalid_argument("etcdserver: too many operations in txn request")
}

/// `InvalidArgument` "etcdserver: duplicate key given in txn request".
pub fn duplicate_key() -> Status {
    Status::invalid_argument("etcdserver: duplicate key given in txn request")
}

/// `InvalidArgument` "etcdserver: invalid sort option".
pub fn invalid_sort_option() -> Status {
    Status::invalid_argument("etcdserver: invalid sort option")
}

/// `InvalidArgument` "etcdserver: request is too large".
pub fn request_too_large() -> Status {
    Status::invalid_argument("etcdserver: request is too large")
}

/// `Unavailable` "etcdserver: request timed out".
pub fn timed_out() -> Status {
    Status::unavailable("etcdserver: request timed out")
}

/// `Unavailable` "etcdserver: server stopped" (an actor went away).
pub fn stopped() -> Status {
    Status::unavailable("etcdserver: server stopped")
}

/// Maps a Raft-side refusal to etcd's `Unavailable` errors.
pub fn propose(e: ProposeError) -> Status {
    Status::unavailable(e.to_string())
}

/// Maps an MVCC error to etcd's code; the text is the error's Display, which is etcd's.
pub fn mvcc(e: MvccError) -> Status {
    let text = e.to_string();
    match e {
        MvccError::Compacted | MvccError::FutureRevision | MvccError::LeaseTtlTooLarge => {
            Status::out_of_range(text)
        }
        MvccError::LeaseNotFound => Status::not_found(text),
        MvccError::LeaseExists => Status::failed_precondition(text),
        MvccError::KeyNotFound | MvccError::ValueProvided | MvccError::LeaseProvided => {
            Status::invalid_argument(text)
        }
        MvccError::Corrupt(_) | MvccError::CorruptCluster => Status::data_loss(text),
        MvccError::NoSpace => Status::resource_exhausted(text),
        _ => Status::internal(text),
    }
}
