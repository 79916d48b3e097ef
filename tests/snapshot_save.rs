//! `etcdctl snapshot save|status|restore` against the server under test (issue 10,
//! docs/snapshots.md §4): the file `Maintenance.Snapshot` streams is an etcd 3.4 bbolt file that
//! etcdctl's own bbolt reader accepts, whose status (revision, key count) equals what real etcd
//! reports for the same history, and from which real etcd, restored, serves the keys, the lease
//! and the compaction.
//!
//! Runs against ferrokv or, with `FERROKV_TEST_SERVER=etcd`, against etcd itself (then every
//! assertion describes etcd's own behaviour).

mod common;

use common::{
    Cluster, ClusterOpts, PortReservation, ServerKind, describe, etcd_bin, run_etcdctl, tail,
    wait_until_or,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Number of small keys written: enough for the `key` bucket to need several leaf pages and a
/// branch page.
const BULK_KEYS: usize = 600;
/// A value larger than a 4 KiB page, so its leaf needs overflow pages.
const BIG_VALUE_BYTES: usize = 10_000;

/// What the history below leaves, as etcdctl reports it.
struct History {
    lease_id: i64,
}

/// The same history on any server: puts, an overwrite, a delete, a lease with a key, a large
/// value, many keys, then a physical compaction at the delete's revision (5). Revisions:
/// a=1 @2, b=2 @3, a=3 @4, del b @5, c=4 (lease) @6, big @7, bulk/i @8…
fn write_history(cluster: &Cluster) -> History {
    cluster.ctl_ok(&["put", "a", "1"]);
    cluster.ctl_ok(&["put", "b", "2"]);
    cluster.ctl_ok(&["put", "a", "3"]);
    assert!(cluster.ctl_ok(&["del", "b"]).starts_with('1'));
    let granted = cluster.ctl_ok(&["lease", "grant", "300"]);
    // "lease 694d7a3d2f3c8e0b granted with TTL(300s)"
    let hex = granted.split_whitespace().nth(1).expect("lease id");
    let lease_id = i64::from_str_radix(hex, 16).expect("hex lease id");
    cluster.ctl_ok(&["put", "c", "4", &format!("--lease={hex}")]);
    cluster.ctl_ok(&["put", "big", &"v".repeat(BIG_VALUE_BYTES)]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = cluster.client().await;
        for i in 0..BULK_KEYS {
            client
                .put(format!("bulk/{i:04}"), format!("value {i}"), None)
                .await
                .expect("bulk put");
        }
    });
    cluster.ctl_ok(&["compaction", "--physical", "5"]);
    History { lease_id }
}

/// The store revision after [`write_history`].
const REVISION: i64 = 7 + BULK_KEYS as i64;

/// `etcdctl snapshot save` into `dir`; returns the file's path after checking the size rule
/// etcdctl 3.4 itself enforces (`v3_snapshot.go`: a bbolt file of 512-byte multiples plus the
/// 32-byte SHA-256).
fn save(cluster: &Cluster, dir: &Path) -> PathBuf {
    let path = dir.join("snap.db");
    let out = cluster.etcdctl_on(&[0], &["snapshot", "save", path.to_str().unwrap()]);
    assert!(out.status.success(), "snapshot save: {}", describe(&out));
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        size % 512,
        32,
        "bbolt pages plus the SHA-256 ({size} bytes)"
    );
    path
}

/// `etcdctl snapshot status -w json` of `path`: (revision, totalKey, totalSize).
fn status(path: &Path) -> (i64, i64, i64) {
    let out = run_etcdctl(
        &[],
        &["snapshot", "status", path.to_str().unwrap(), "-w", "json"],
        None,
    );
    assert!(out.status.success(), "snapshot status: {}", describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let field = |name: &str| v[name].as_i64().unwrap_or_else(|| panic!("{name} in {v}"));
    (field("revision"), field("totalKey"), field("totalSize"))
}

/// Saves the history's snapshot from a fresh one-member cluster of `kind`; returns the
/// cluster (kept running so its temp dir lives), the file and the history.
fn saved(kind: ServerKind) -> (Cluster, PathBuf, History) {
    let cluster = Cluster::start_kind(kind, 1, ClusterOpts::default());
    let history = write_history(&cluster);
    let path = save(&cluster, cluster.dir());
    (cluster, path, history)
}

#[test]
fn snapshot_status_reports_the_same_revision_and_keys_as_etcd() {
    let (_server, path, _) = saved(ServerKind::under_test());
    let (revision, total_key, total_size) = status(&path);
    assert_eq!(revision, REVISION, "revision of the last record in `key`");
    assert_eq!(total_size % 4096, 0, "whole pages: {total_size}");
    // The same history on real etcd 3.4: the bucket contents must count the same (the hash
    // differs: it covers consistent_index, member ids, lease ids).
    let (_etcd, reference, _) = saved(ServerKind::Etcd);
    let (etcd_revision, etcd_total_key, _) = status(&reference);
    assert_eq!(
        (revision, total_key),
        (etcd_revision, etcd_total_key),
        "status of the server under test vs etcd's for the same history"
    );
}

/// A real etcd process started on a restored data dir; killed and reaped on drop.
struct RestoredEtcd {
    child: Child,
    client_url: String,
    log: PathBuf,
    _ports: [PortReservation; 2],
}

impl Drop for RestoredEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RestoredEtcd {
    /// `etcdctl snapshot restore` of `snapshot` into `dir/restored`, then etcd started on it;
    /// returns once it answers `endpoint health`.
    fn start(snapshot: &Path, dir: &Path) -> RestoredEtcd {
        let (client, peer) = (PortReservation::new(), PortReservation::new());
        let client_url = format!("http://127.0.0.1:{}", client.port);
        let peer_url = format!("http://127.0.0.1:{}", peer.port);
        let data_dir = dir.join("restored");
        let initial_cluster = format!("n={peer_url}");
        let out = run_etcdctl(
            &[],
            &[
                "snapshot",
                "restore",
                snapshot.to_str().unwrap(),
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--name",
                "n",
                "--initial-cluster",
                &initial_cluster,
                "--initial-advertise-peer-urls",
                &peer_url,
            ],
            None,
        );
        assert!(out.status.success(), "snapshot restore: {}", describe(&out));
        let log = dir.join("restored.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(etcd_bin())
            .args(["--name", "n", "--data-dir", data_dir.to_str().unwrap()])
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn etcd");
        let mut etcd = RestoredEtcd {
            child,
            client_url,
            log,
            _ports: [client, peer],
        };
        let endpoints = [etcd.client_url.clone()];
        let log = etcd.log.clone();
        wait_until_or(
            Duration::from_secs(30),
            "restored etcd healthy",
            || {
                if let Ok(Some(status)) = etcd.child.try_wait() {
                    panic!("restored etcd exited: {status}\n{}", tail(&log, 30));
                }
                let out = run_etcdctl(&endpoints, &["endpoint", "health"], None);
                out.status.success()
            },
            || tail(&log, 30),
        );
        etcd
    }

    /// etcdctl against the restored etcd; asserts success, returns stdout.
    fn ctl(&self, args: &[&str]) -> String {
        let out = run_etcdctl(std::slice::from_ref(&self.client_url), args, None);
        assert!(
            out.status.success(),
            "etcdctl {args:?} on the restored etcd: {}\n{}",
            describe(&out),
            tail(&self.log, 20)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn real_etcd_restored_from_the_snapshot_serves_keys_lease_and_compaction() {
    let (server, path, history) = saved(ServerKind::under_test());
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("snap.db");
    std::fs::copy(&path, &moved).unwrap();
    drop(server); // the restored etcd must not depend on the source
    let etcd = RestoredEtcd::start(&moved, dir.path());

    assert_eq!(etcd.ctl(&["get", "a", "--print-value-only"]), "3\n");
    assert_eq!(etcd.ctl(&["get", "b"]), "", "deleted key stays deleted");
    let big = etcd.ctl(&["get", "big", "--print-value-only"]);
    assert_eq!(big.trim_end().len(), BIG_VALUE_BYTES, "overflow-page value");
    let count = etcd.ctl(&["get", "bulk/", "--prefix", "--keys-only", "-w", "json"]);
    let count: serde_json::Value = serde_json::from_str(&count).unwrap();
    assert_eq!(
        count["count"], BULK_KEYS,
        "every key of the branch-page bucket"
    );

    let c: serde_json::Value =
        serde_json::from_str(&etcd.ctl(&["get", "c", "-w", "json"])).unwrap();
    assert_eq!(c["header"]["revision"], REVISION, "revision carried over");
    let kv = &c["kvs"][0];
    assert_eq!(
        kv["lease"], history.lease_id,
        "key c still attached to its lease"
    );
    assert_eq!(kv["mod_revision"], 6);

    let ttl: serde_json::Value = serde_json::from_str(&etcd.ctl(&[
        "lease",
        "timetolive",
        &format!("{:x}", history.lease_id),
        "--keys",
        "-w",
        "json",
    ]))
    .unwrap();
    assert_eq!(ttl["granted-ttl"], 300, "{ttl}");
    assert!(ttl["ttl"].as_i64().unwrap() > 0, "lease alive: {ttl}");
    assert_eq!(ttl["keys"][0], common::b64(b"c"), "{ttl}");

    let out = run_etcdctl(
        std::slice::from_ref(&etcd.client_url),
        &["get", "a", "--rev=5", "--print-value-only"],
        None,
    );
    assert!(
        out.status.success(),
        "rev 5 is readable: {}",
        describe(&out)
    );
    assert_eq!(out.stdout, b"3\n");
    let out = run_etcdctl(
        std::slice::from_ref(&etcd.client_url),
        &["get", "a", "--rev=4"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("required revision has been compacted"),
        "compaction at 5 carried over: {}",
        describe(&out)
    );
}
