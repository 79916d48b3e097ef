//! Generated protobuf and gRPC code for `proto/`: one module per proto package, because the
//! generated code refers to sibling packages through `super::`.
//!
//! The `.proto` files carry etcd 3.5's exact package, service, RPC, message and field names and
//! field numbers, so etcdctl and etcd client libraries talk to ferrokv unchanged. Each module
//! has `<service>_server` (tonic server traits; RPCs not overridden answer `Unimplemented`) and
//! `<service>_client` submodules.
#![allow(clippy::all, missing_docs)]

/// etcd's MVCC record types (`proto/mvccpb/kv.proto`): `KeyValue`, `Event`.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// etcd's auth records (`proto/authpb/auth.proto`): `User`, `Role`, `Permission`.
pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// etcd's client API (`proto/etcdserverpb/rpc.proto`): services KV, Watch, Lease, Cluster,
/// Maintenance and Auth, and all their messages.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// etcd's lock service (`proto/v3lockpb/v3lock.proto`): service Lock.
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

/// etcd's election service (`proto/v3electionpb/v3election.proto`): service Election.
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

/// ferrokv's own member-to-member protocol (`proto/peerpb/raft.proto`): Raft messages and the
/// `InternalRequest` carried in log entries. Not part of etcd's contract.
pub mod peerpb {
    tonic::include_proto!("peerpb");
}

#[cfg(test)]
mod tests {
    //! Wire-contract checks: bytes produced by the generated code against protobuf encodings
    //! worked out by hand from etcd's field numbers, so a wrong field number fails here.
    //! Tag byte = (field_number << 3) | wire_type; wire types: 0 varint, 2 length-delimited.
    use super::etcdserverpb::{self as pb, range_request::SortOrder, range_request::SortTarget};
    use prost::Message;

    #[test]
    fn range_request_encodes_with_etcd_field_numbers() {
        let req = pb::RangeRequest {
            key: b"a".to_vec(),                    // field 1, bytes
            range_end: b"b".to_vec(),              // field 2, bytes
            limit: 5,                              // field 3, varint
            revision: 300,                         // field 4, varint (300 = 0xAC 0x02)
            sort_order: SortOrder::Descend as i32, // field 5, enum 2
            sort_target: SortTarget::Mod as i32,   // field 6, enum 3
            serializable: true,                    // field 7
            keys_only: true,                       // field 8
            count_only: true,                      // field 9
            min_mod_revision: 1,                   // field 10
            max_mod_revision: 2,                   // field 11
            min_create_revision: 3,                // field 12
            max_create_revision: 4,                // field 13
        };
        let expected: &[u8] = &[
            0x0A, 0x01, b'a', // 1 << 3 | 2
            0x12, 0x01, b'b', // 2 << 3 | 2
            0x18, 0x05, // 3 << 3 | 0
            0x20, 0xAC, 0x02, // 4 << 3 | 0
            0x28, 0x02, // 5 << 3 | 0
            0x30, 0x03, // 6 << 3 | 0
            0x38, 0x01, // 7 << 3 | 0
            0x40, 0x01, // 8 << 3 | 0
            0x48, 0x01, // 9 << 3 | 0
            0x50, 0x01, // 10 << 3 | 0
            0x58, 0x02, // 11 << 3 | 0
            0x60, 0x03, // 12 << 3 | 0
            0x68, 0x04, // 13 << 3 | 0
        ];
        assert_eq!(req.encode_to_vec(), expected);
        assert_eq!(pb::RangeRequest::decode(expected).unwrap(), req);
    }

    #[test]
    fn put_request_encodes_with_etcd_field_numbers() {
        let req = pb::PutRequest {
            key: b"foo".to_vec(),
            value: b"bar".to_vec(),
            lease: 0x1234,
            prev_kv: true,
            ignore_value: false,
            ignore_lease: true,
        };
        let expected: &[u8] = &[
            0x0A, 0x03, b'f', b'o', b'o', // key: field 1, bytes
            0x12, 0x03, b'b', b'a', b'r', // value: field 2, bytes
            0x18, 0xB4, 0x24, // lease: field 3, varint 0x1234 = 0b10_0100_0011_0100
            0x20, 0x01, // prev_kv: field 4
            // ignore_value (field 5) is false: proto3 leaves defaults out.
            0x30, 0x01, // ignore_lease: field 6
        ];
        assert_eq!(req.encode_to_vec(), expected);
    }

    #[test]
    fn compare_range_end_is_field_64_and_target_union_is_a_oneof() {
        let cmp = pb::Compare {
            result: pb::compare::CompareResult::NotEqual as i32,
            target: pb::compare::CompareTarget::Mod as i32,
            key: b"k".to_vec(),
            target_union: Some(pb::compare::TargetUnion::ModRevision(7)),
            range_end: b"z".to_vec(),
        };
        let expected: &[u8] = &[
            0x08, 0x03, // result: field 1 = NOT_EQUAL (3)
            0x10, 0x02, // target: field 2 = MOD (2)
            0x1A, 0x01, b'k', // key: field 3
            0x30, 0x07, // mod_revision: field 6
            0x82, 0x04, 0x01,
            b'z', // range_end: field 64 → tag 64 << 3 | 2 = 514 = 0x82 0x04
        ];
        assert_eq!(cmp.encode_to_vec(), expected);
    }

    #[test]
    fn watch_response_events_are_field_11() {
        let resp = pb::WatchResponse {
            watch_id: 1,
            events: vec![super::mvccpb::Event::default()],
            ..Default::default()
        };
        // watch_id: field 2 varint; events: field 11 (11 << 3 | 2 = 0x5A), empty Event.
        assert_eq!(resp.encode_to_vec(), [0x10, 0x01, 0x5A, 0x00]);
    }

    /// The `NAME` a generated server registers under; gRPC method paths are
    /// `"/" + NAME + "/" + Method`, e.g. `/etcdserverpb.KV/Range`.
    fn service_name<S: tonic::server::NamedService>() -> &'static str {
        S::NAME
    }

    #[test]
    fn service_names_are_etcds_fully_qualified_names() {
        use super::etcdserverpb::{
            auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
            lease_server::LeaseServer, maintenance_server::MaintenanceServer,
            watch_server::WatchServer,
        };
        use super::{
            v3electionpb::election_server::ElectionServer, v3lockpb::lock_server::LockServer,
        };
        let names = [
            service_name::<KvServer<()>>(),
            service_name::<WatchServer<()>>(),
            service_name::<LeaseServer<()>>(),
            service_name::<ClusterServer<()>>(),
            service_name::<MaintenanceServer<()>>(),
            service_name::<AuthServer<()>>(),
            service_name::<LockServer<()>>(),
            service_name::<ElectionServer<()>>(),
        ];
        assert_eq!(
            names,
            [
                "etcdserverpb.KV",
                "etcdserverpb.Watch",
                "etcdserverpb.Lease",
                "etcdserverpb.Cluster",
                "etcdserverpb.Maintenance",
                "etcdserverpb.Auth",
                "v3lockpb.Lock",
                "v3electionpb.Election",
            ]
        );
    }

    /// A KV service that records the last Put it received and answers Range with a fixed kv.
    #[derive(Default)]
    struct RecordingKv {
        last_put: std::sync::Mutex<Option<pb::PutRequest>>,
    }

    #[tonic::async_trait]
    impl pb::kv_server::Kv for RecordingKv {
        async fn range(
            &self,
            request: tonic::Request<pb::RangeRequest>,
        ) -> Result<tonic::Response<pb::RangeResponse>, tonic::Status> {
            let req = request.into_inner();
            Ok(tonic::Response::new(pb::RangeResponse {
                header: Some(pb::ResponseHeader {
                    cluster_id: 11,
                    member_id: 12,
                    revision: 13,
                    raft_term: 14,
                }),
                kvs: vec![super::mvccpb::KeyValue {
                    key: req.key,
                    create_revision: 2,
                    mod_revision: 3,
                    version: 4,
                    value: b"v".to_vec(),
                    lease: req.limit, // echo a request field back to prove it arrived
                }],
                more: true,
                count: 9,
            }))
        }

        async fn put(
            &self,
            request: tonic::Request<pb::PutRequest>,
        ) -> Result<tonic::Response<pb::PutResponse>, tonic::Status> {
            *self.last_put.lock().unwrap() = Some(request.into_inner());
            Ok(tonic::Response::new(pb::PutResponse::default()))
        }
    }

    /// Interop with an independent implementation of etcd's protos: the `etcd-client` crate
    /// (generated from etcd's own .proto files) talks to our generated server over TCP on
    /// 127.0.0.1. Proves method paths and the field numbers of Range and Put both ways.
    #[tokio::test]
    async fn etcd_client_crate_talks_to_generated_kv_server() {
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let kv = Arc::new(RecordingKv::default());
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::kv_server::KvServer::from_arc(kv.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        // Abort the server even if an assertion below fails.
        struct AbortOnDrop(tokio::task::JoinHandle<Result<(), tonic::transport::Error>>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _server = AbortOnDrop(server);

        let mut client = etcd_client::Client::connect([format!("http://{addr}")], None)
            .await
            .unwrap();
        let got = client
            .get("foo", Some(etcd_client::GetOptions::new().with_limit(77)))
            .await
            .unwrap();
        let header = got.header().unwrap();
        assert_eq!(
            (
                header.cluster_id(),
                header.member_id(),
                header.revision(),
                header.raft_term()
            ),
            (11, 12, 13, 14)
        );
        assert_eq!((got.more(), got.count(), got.kvs().len()), (true, 9, 1));
        let kv0 = &got.kvs()[0];
        assert_eq!(kv0.key(), b"foo");
        assert_eq!(kv0.value(), b"v");
        assert_eq!(
            (
                kv0.create_revision(),
                kv0.mod_revision(),
                kv0.version(),
                kv0.lease()
            ),
            (2, 3, 4, 77)
        );

        client
            .put(
                "k",
                "val",
                Some(
                    etcd_client::PutOptions::new()
                        .with_lease(0x55)
                        .with_prev_key(),
                ),
            )
            .await
            .unwrap();
        let put = kv.last_put.lock().unwrap().clone().unwrap();
        assert_eq!(
            put,
            pb::PutRequest {
                key: b"k".to_vec(),
                value: b"val".to_vec(),
                lease: 0x55,
                prev_kv: true,
                ignore_value: false,
                ignore_lease: false,
            }
        );
    }
}

#[cfg(test)]
mod json_tests {
    //! The JSON mapping of etcd's grpc-gateway (`runtime.JSONPb{OrigName: true}`): proto field
    //! names, int64 as strings, bytes as base64, default values left out.
    use super::etcdserverpb::{PutRequest, RangeResponse, ResponseHeader};
    use super::mvccpb::KeyValue;

    #[test]
    fn messages_map_to_json_as_etcds_gateway_writes_them() {
        let r = RangeResponse {
            header: Some(ResponseHeader {
                cluster_id: 14841639068965178418,
                member_id: 10276657743932975437,
                revision: 2,
                raft_term: 2,
            }),
            kvs: vec![KeyValue {
                key: b"foo".to_vec(),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                value: b"bar".to_vec(),
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}"#
        );
        let p: PutRequest = serde_json::from_str(r#"{"key": "Zm9v", "value": "YmFy"}"#).unwrap();
        assert_eq!(
            (p.key.as_slice(), p.value.as_slice()),
            (&b"foo"[..], &b"bar"[..])
        );
    }
}
