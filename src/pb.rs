//! Generated protobuf and gRPC code for `proto/`: one module per proto package, because the
//! generated code refers to sibling packages through `super::`.
#![allow(clippy::all, missing_docs)]

/// etcd's MVCC record types (`proto/mvccpb/kv.proto`).
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}
