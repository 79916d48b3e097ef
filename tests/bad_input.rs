//! Invalid requests get etcd's exact gRPC code and message (clients match on the text; see
//! etcd's `api/v3rpc/rpctypes`), through both the etcd-client crate and etcdctl; an unknown
//! server flag exits with status 2 and usage text.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, ClusterOpts, ServerKind};
use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use tonic::Code;

/// Asserts that `result` failed with gRPC `code` and exactly `message`.
#[track_caller]
fn assert_status<T: std::fmt::Debug>(
    result: Result<T, etcd_client::Error>,
    code: Code,
    message: &str,
) {
    match result {
        Err(etcd_client::Error::GRpcStatus(s)) => {
            assert_eq!(s.code(), code, "code of {s:?}");
            assert_eq!(s.message(), message, "message of {s:?}");
        }
        other => panic!("expected {code:?} {message:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_key_is_rejected() {
    let c = Cluster::start(1, ClusterOpts::default());
    let mut client = c.client().await;
    const MSG: &str = "etcdserver: key is not provided";
    assert_status(client.put("", "v", None).await, Code::InvalidArgument, MSG);
    assert_status(client.get("", None).await, Code::InvalidArgument, MSG);
    assert_status(client.delete("", None).await, Code::InvalidArgument, MSG);
    // Inside a txn too, in either branch.
    let txn = Txn::new().and_then([TxnOp::put("", "v", None)]);
    assert_status(client.txn(txn).await, Code::InvalidArgument, MSG);
    let txn = Txn::new().or_else([TxnOp::get("", None)]);
    assert_status(client.txn(txn).await, Code::InvalidArgument, MSG);
    // Nothing was written.
    let r = client.get("x", None).await.unwrap();
    assert_eq!(r.header().unwrap().revision(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_over_max_request_bytes_is_rejected() {
    let opts = ClusterOpts {
        max_request_bytes: Some(4096),
        ..ClusterOpts::default()
    };
    let c = Cluster::start(1, opts);
    let mut client = c.client().await;
    // Twice the limit: above --max-request-bytes but far below the gRPC receive limit
    // (the limit plus etcd's 512 KiB of overhead), so etcd itself answers.
    let big = vec![b'x'; 8192];
    assert_status(
        client.put("big", big.clone(), None).await,
        Code::InvalidArgument,
        "etcdserver: request is too large",
    );
    let txn = Txn::new().and_then([TxnOp::put("big", big, None)]);
    assert_status(
        client.txn(txn).await,
        Code::InvalidArgument,
        "etcdserver: request is too large",
    );
    // A request under the limit passes.
    client.put("small", vec![b'x'; 1024], None).await.unwrap();
    assert!(client.get("big", None).await.unwrap().kvs().is_empty());

    let value = "y".repeat(8192);
    let err = c.ctl_err(&["put", "big", &value]);
    assert!(
        err.contains("Error: etcdserver: request is too large"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_and_compacted_revisions_are_out_of_range() {
    let c = Cluster::start(1, ClusterOpts::default());
    let mut client = c.client().await;
    let r1 = client
        .put("k", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let r2 = client
        .put("k", "2", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let r3 = client
        .put("k", "3", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    assert_eq!((r2, r3), (r1 + 1, r1 + 2));

    const FUTURE: &str = "etcdserver: mvcc: required revision is a future revision";
    const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
    assert_status(
        client
            .get("k", Some(GetOptions::new().with_revision(r3 + 1)))
            .await,
        Code::OutOfRange,
        FUTURE,
    );
    let err = c.ctl_err(&["get", "k", &format!("--rev={}", r3 + 100)]);
    assert!(err.contains(&format!("Error: {FUTURE}")), "{err}");
    // Compacting to a future revision fails the same way.
    assert_status(client.compact(r3 + 1, None).await, Code::OutOfRange, FUTURE);

    client.compact(r2, None).await.unwrap();
    assert_status(
        client
            .get("k", Some(GetOptions::new().with_revision(r1)))
            .await,
        Code::OutOfRange,
        COMPACTED,
    );
    let err = c.ctl_err(&["get", "k", &format!("--rev={r1}")]);
    assert!(err.contains(&format!("Error: {COMPACTED}")), "{err}");
    assert_status(client.compact(r2, None).await, Code::OutOfRange, COMPACTED);
    assert_status(client.compact(r1, None).await, Code::OutOfRange, COMPACTED);
    // The compaction revision itself is still readable.
    let r = client
        .get("k", Some(GetOptions::new().with_revision(r2)))
        .await
        .unwrap();
    assert_eq!(r.kvs()[0].value(), b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_limits_and_duplicate_keys() {
    let opts = ClusterOpts {
        max_txn_ops: Some(4),
        ..ClusterOpts::default()
    };
    let c = Cluster::start(1, opts);
    let mut client = c.client().await;

    let ops = |n: usize| -> Vec<TxnOp> {
        (0..n)
            .map(|i| TxnOp::put(format!("k{i}"), "v", None))
            .collect()
    };
    // Exactly the limit is fine; one more is not (in either branch).
    client.txn(Txn::new().and_then(ops(4))).await.unwrap();
    const TOO_MANY: &str = "etcdserver: too many operations in txn request";
    assert_status(
        client.txn(Txn::new().and_then(ops(5))).await,
        Code::InvalidArgument,
        TOO_MANY,
    );
    assert_status(
        client.txn(Txn::new().or_else(ops(5))).await,
        Code::InvalidArgument,
        TOO_MANY,
    );
    let script = format!(
        "\n{}\n\n",
        (0..5).map(|i| format!("put t{i} v\n")).collect::<String>()
    );
    let out = c.etcdctl_stdin(&["txn"], &script);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("Error: {TOO_MANY}")), "{err}");

    const DUP: &str = "etcdserver: duplicate key given in txn request";
    let dup = Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]);
    assert_status(client.txn(dup).await, Code::InvalidArgument, DUP);
    // A put and a delete covering the same key also conflict.
    let dup = Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::delete("d", None)]);
    assert_status(client.txn(dup).await, Code::InvalidArgument, DUP);
    // The same key in different branches is fine.
    let ok = Txn::new()
        .when([Compare::version("d", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("d", "1", None)])
        .or_else([TxnOp::put("d", "2", None)]);
    assert!(client.txn(ok).await.unwrap().succeeded());
    let out = c.etcdctl_stdin(&["txn"], "\nput e 1\nput e 2\n\n\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("Error: {DUP}")), "{err}");

    // None of the rejected txns wrote anything: revision 1 + two accepted txns.
    let r = client.get("d", None).await.unwrap();
    assert_eq!(r.header().unwrap().revision(), 3);
    assert!(client.get("t0", None).await.unwrap().kvs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_value_rules() {
    let c = Cluster::start(1, ClusterOpts::default());
    let mut client = c.client().await;
    assert_status(
        client
            .put("missing", "", Some(PutOptions::new().with_ignore_value()))
            .await,
        Code::InvalidArgument,
        "etcdserver: key not found",
    );
    client.put("k", "v", None).await.unwrap();
    assert_status(
        client
            .put("k", "new", Some(PutOptions::new().with_ignore_value()))
            .await,
        Code::InvalidArgument,
        "etcdserver: value is provided",
    );
    // ignore_value with no value keeps the value and bumps the version.
    client
        .put("k", "", Some(PutOptions::new().with_ignore_value()))
        .await
        .unwrap();
    let r = client.get("k", None).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"v");
    assert_eq!(r.kvs()[0].version(), 2);
}

#[test]
fn unknown_server_flag_exits_2_with_usage() {
    let bin = ServerKind::under_test().binary();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(&bin)
        .arg("--no-such-flag-xyz")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    // A server that ignored the flag would keep running: bound the wait and kill it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} kept running with an unknown flag", bin.display());
        }
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
    assert!(stderr.contains("no-such-flag-xyz"), "{stderr}");
    assert!(stderr.to_lowercase().contains("usage"), "{stderr}");
}
