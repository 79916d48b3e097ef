//! ferrokv's own `snapshot` tool (`ferrokv snapshot save|status|restore`, modelled on etcdctl
//! 3.4 / etcdutl 3.5): `status` prints what `etcdctl snapshot status` prints for the same file,
//! `restore` builds member data dirs from an etcd-format snapshot file (saved from real etcd
//! 3.4 or from ferrokv) from which ferrokv members serve the same keys, revisions, compaction
//! and leases, and damaged files are refused with etcdctl's messages, without a panic and
//! without leaving a data dir behind.
//!
//! Real etcd 3.4 is the reference wherever a test starts with a history: the history is written
//! to etcd, read back through etcdctl, and the restored ferrokv members must answer the same.

mod common;

use common::{
    Cluster, ClusterOpts, PortReservation, ServerKind, b64, describe, etcdctl_bin, run_etcdctl,
    tail, wait_until_or,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Number of small keys written: enough for the `key` bucket to need several leaf pages and a
/// branch page.
const BULK_KEYS: i64 = 400;
/// A value larger than a 4 KiB page, so its leaf needs overflow pages.
const BIG_VALUE_BYTES: usize = 10_000;
/// The revision `compaction --physical` compacts at: in the middle of the bulk puts.
const COMPACT_REV: i64 = 200;
/// A revision after the compaction at which `a` still had its older value `3`.
const OLD_READ_REV: i64 = 300;
/// The store revision after [`write_history`].
const REVISION: i64 = 8 + BULK_KEYS + 3;
/// How long restored members get to elect a leader and serve.
const READY: Duration = Duration::from_secs(60);

/// What the history below leaves: the lease both `c` and `d` are attached to.
struct History {
    lease_id: i64,
}

/// The same history on any server. Revisions: a=1 @2, b=2 @3, a=3 @4, del b @5, c=4 (lease)
/// @6, d=5 (same lease) @7, big @8, bulk/i @9…408, a=7 @409, bulk/0000 overwritten @410,
/// del bulk/0001 @411; then a physical compaction at [`COMPACT_REV`].
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
    cluster.ctl_ok(&["put", "d", "5", &format!("--lease={hex}")]);
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
    cluster.ctl_ok(&["put", "a", "7"]);
    cluster.ctl_ok(&["put", "bulk/0000", "again"]);
    assert!(cluster.ctl_ok(&["del", "bulk/0001"]).starts_with('1'));
    cluster.ctl_ok(&["compaction", "--physical", &COMPACT_REV.to_string()]);
    History { lease_id }
}

/// `etcdctl snapshot save` from member 0 into `dir/name`; returns the path after checking the
/// size rule of etcdctl 3.4 (`v3_snapshot.go`: bbolt pages in 512-byte multiples plus the
/// 32-byte SHA-256).
fn etcdctl_save(cluster: &Cluster, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
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

/// Runs `ferrokv <args>` (no ETCD_* variables), capturing its output.
fn ferrokv(args: &[&str]) -> Output {
    let mut cmd = Command::new(ServerKind::Ferrokv.binary());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCD") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run ferrokv")
}

/// Runs `etcdctl <args>` with no endpoint (the offline `snapshot` commands).
fn etcdctl_offline(args: &[&str]) -> Output {
    let mut cmd = Command::new(etcdctl_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ETCDCTL_API", "3")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run etcdctl")
}

/// What a server reports about the history, read through etcdctl; compared between the
/// reference etcd and the restored ferrokv members.
#[derive(Debug)]
struct Observed {
    /// `get "" --prefix -w json`'s `kvs` (keys, values, create/mod revisions, versions,
    /// leases).
    kvs: Value,
    /// The header revision of that read.
    revision: i64,
    /// `get a --rev OLD_READ_REV --print-value-only`.
    old_read: String,
    /// `endpoint hashkv --rev REVISION -w json`: (hash, compact_revision).
    hashkv: (u64, i64),
}

/// etcdctl against `endpoints`; asserts success and returns stdout.
#[track_caller]
fn ctl(endpoints: &[String], args: &[&str]) -> String {
    let out = run_etcdctl(endpoints, args, None);
    assert!(
        out.status.success(),
        "etcdctl {args:?} on {endpoints:?}: {}",
        describe(&out)
    );
    String::from_utf8(out.stdout).expect("UTF-8 stdout")
}

/// [`ctl`] parsing stdout as JSON.
#[track_caller]
fn ctl_json(endpoints: &[String], args: &[&str]) -> Value {
    let s = ctl(endpoints, args);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("etcdctl {args:?}: bad JSON {e}: {s}"))
}

/// Reads [`Observed`] from `endpoint` (one member; `consistency` `l` or `s`).
fn observe(endpoint: &str, consistency: &str) -> Observed {
    let eps = [endpoint.to_string()];
    let consistency = format!("--consistency={consistency}");
    let all = ctl_json(&eps, &["get", "", "--prefix", "-w", "json", &consistency]);
    let old_read = ctl(
        &eps,
        &[
            "get",
            "a",
            &format!("--rev={OLD_READ_REV}"),
            "--print-value-only",
            &consistency,
        ],
    );
    let h = ctl_json(
        &eps,
        &[
            "endpoint",
            "hashkv",
            &format!("--rev={REVISION}"),
            "-w",
            "json",
        ],
    );
    let h = &h[0]["HashKV"];
    Observed {
        kvs: all["kvs"].clone(),
        revision: all["header"]["revision"].as_i64().expect("header revision"),
        old_read,
        hashkv: (
            h["hash"].as_u64().expect("hash"),
            h["compact_revision"].as_i64().unwrap_or(0),
        ),
    }
}

/// `endpoint status -w json` revision of one member, None if it does not answer.
fn status_revision(endpoint: &str) -> Option<i64> {
    let out = run_etcdctl(
        &[endpoint.to_string()],
        &["endpoint", "status", "-w", "json", "--command-timeout=2s"],
        None,
    );
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v[0]["Status"]["header"]["revision"].as_i64()
}

/// One ferrokv member of a restored cluster.
struct RestoredMember {
    name: String,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    _ports: [PortReservation; 2],
}

/// ferrokv members restored from one snapshot file with `ferrokv snapshot restore` and
/// started on the restored data dirs. Drop SIGKILLs and reaps the processes it started (by
/// their `Child`), and prints the members' log tails if the test is failing.
struct RestoredCluster {
    members: Vec<RestoredMember>,
    children: Vec<Option<Child>>,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for RestoredCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(40));
        }
    }
}

impl RestoredCluster {
    /// `ferrokv snapshot restore` of `snapshot` into n data dirs (members `r0`…, peer URLs on
    /// reserved ports), asserting each restore succeeds; nothing is started yet.
    fn restore(snapshot: &Path, n: usize) -> RestoredCluster {
        let dir = tempfile::Builder::new()
            .prefix("ferrokv-restore-")
            .tempdir()
            .expect("temp dir");
        let members: Vec<RestoredMember> = (0..n)
            .map(|i| {
                let (client, peer) = (PortReservation::new(), PortReservation::new());
                RestoredMember {
                    name: format!("r{i}"),
                    client_url: format!("http://127.0.0.1:{}", client.port),
                    peer_url: format!("http://127.0.0.1:{}", peer.port),
                    data_dir: dir.path().join(format!("r{i}.data")),
                    log: dir.path().join(format!("r{i}.log")),
                    _ports: [client, peer],
                }
            })
            .collect();
        let token = format!(
            "ferrokv-restored-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let cluster = RestoredCluster {
            children: (0..n).map(|_| None).collect(),
            members,
            token,
            _dir: dir,
        };
        let initial_cluster = cluster.initial_cluster();
        for m in &cluster.members {
            let out = ferrokv(&[
                "snapshot",
                "restore",
                snapshot.to_str().unwrap(),
                "--data-dir",
                m.data_dir.to_str().unwrap(),
                "--name",
                &m.name,
                "--initial-cluster",
                &initial_cluster,
                "--initial-cluster-token",
                &cluster.token,
                "--initial-advertise-peer-urls",
                &m.peer_url,
            ]);
            assert!(
                out.status.success(),
                "ferrokv snapshot restore for {}: {}",
                m.name,
                describe(&out)
            );
            assert!(m.data_dir.is_dir(), "restore created {:?}", m.data_dir);
        }
        cluster
    }

    /// `--initial-cluster`: `r0=http://127.0.0.1:p0,…`.
    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts every member on its restored data dir with the flags the restore was given
    /// (the harness's server flags), then waits until each answers `endpoint health` and
    /// one of them is the leader all agree on.
    fn start(&mut self) {
        let binary = ServerKind::Ferrokv.binary();
        let initial_cluster = self.initial_cluster();
        for (i, m) in self.members.iter().enumerate() {
            let log = std::fs::File::create(&m.log).expect("member log");
            let mut cmd = Command::new(&binary);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("ETCD_") {
                    cmd.env_remove(k);
                }
            }
            cmd.arg(format!("--name={}", m.name))
                .arg(format!("--data-dir={}", m.data_dir.display()))
                .arg(format!("--listen-client-urls={}", m.client_url))
                .arg(format!("--advertise-client-urls={}", m.client_url))
                .arg(format!("--listen-peer-urls={}", m.peer_url))
                .arg(format!("--initial-advertise-peer-urls={}", m.peer_url))
                .arg(format!("--initial-cluster={initial_cluster}"))
                .arg("--initial-cluster-state=new")
                .arg(format!("--initial-cluster-token={}", self.token))
                .arg("--heartbeat-interval=100")
                .arg("--election-timeout=1000")
                .arg("--log-level=info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            self.children[i] = Some(cmd.spawn().expect("spawn ferrokv"));
        }
        for i in 0..self.members.len() {
            let endpoints = [self.members[i].client_url.clone()];
            wait_until_or(
                READY,
                &format!("restored member {} healthy", self.members[i].name),
                || {
                    if let Some(child) = self.children[i].as_mut()
                        && let Ok(Some(status)) = child.try_wait()
                    {
                        panic!(
                            "restored member {} exited: {status}\n{}",
                            self.members[i].name,
                            tail(&self.members[i].log, 40)
                        );
                    }
                    run_etcdctl(
                        &endpoints,
                        &["endpoint", "health", "--command-timeout=2s"],
                        None,
                    )
                    .status
                    .success()
                },
                || log_tails(&self.members, 30),
            );
        }
        wait_until_or(
            READY,
            "a leader every restored member agrees on",
            || self.leader().is_some(),
            || self.log_tails(30),
        );
    }

    /// The member id every member reports as leader, if they all report the same nonzero one
    /// and that member reports itself.
    fn leader(&self) -> Option<u64> {
        let mut leaders = Vec::new();
        let mut ids = Vec::new();
        for m in &self.members {
            let out = run_etcdctl(
                std::slice::from_ref(&m.client_url),
                &["endpoint", "status", "-w", "json", "--command-timeout=2s"],
                None,
            );
            if !out.status.success() {
                return None;
            }
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            leaders.push(v[0]["Status"]["leader"].as_u64().unwrap_or(0));
            ids.push(v[0]["Status"]["header"]["member_id"].as_u64()?);
        }
        let leader = leaders[0];
        (leader != 0 && leaders.iter().all(|&l| l == leader) && ids.contains(&leader))
            .then_some(leader)
    }

    fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    fn log_tails(&self, lines: usize) -> String {
        log_tails(&self.members, lines)
    }

    /// Waits until every member's own store revision (`endpoint status`) is `revision`.
    fn wait_revision(&self, revision: i64) {
        for m in &self.members {
            wait_until_or(
                READY,
                &format!("{} at revision {revision}", m.name),
                || status_revision(&m.client_url) == Some(revision),
                || {
                    format!(
                        "{} reports {:?}\n{}",
                        m.name,
                        status_revision(&m.client_url),
                        self.log_tails(30)
                    )
                },
            );
        }
    }
}

/// The last `lines` lines of every restored member's log.
fn log_tails(members: &[RestoredMember], lines: usize) -> String {
    let mut s = String::new();
    for m in members {
        s.push_str(&format!(
            "----- restored {} ({}) log tail: {}\n{}\n",
            m.name,
            m.client_url,
            m.log.display(),
            tail(&m.log, lines)
        ));
    }
    s
}

/// `get k --rev R` below the compaction fails with etcd's error on `endpoint`.
#[track_caller]
fn assert_compacted(endpoint: &str, rev: i64) {
    let out = run_etcdctl(
        &[endpoint.to_string()],
        &["get", "a", &format!("--rev={rev}")],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("etcdserver: mvcc: required revision has been compacted"),
        "get --rev={rev} below the compaction at {COMPACT_REV} on {endpoint}: {}",
        describe(&out)
    );
}

/// Asserts the restored cluster serves what the reference reported: the same kvs (on every
/// member), the same revision, the compaction, the older read, HashKV and the lease with
/// both its keys; then a new put takes the next revision and every member's HashKV agrees.
/// Revoking the lease deletes both keys.
fn assert_serves(restored: &RestoredCluster, reference: &Observed, history: &History) {
    restored.wait_revision(REVISION);
    for m in &restored.members {
        let got = observe(&m.client_url, "s");
        assert_eq!(
            got.kvs, reference.kvs,
            "keys, values, create/mod revisions, versions and leases on {}",
            m.name
        );
        assert_eq!(
            got.revision, reference.revision,
            "header revision on {}",
            m.name
        );
        assert_eq!(
            got.old_read, reference.old_read,
            "get a --rev={OLD_READ_REV} on {}",
            m.name
        );
        assert_eq!(
            got.hashkv, reference.hashkv,
            "HashKV (hash, compact_revision) at {REVISION} on {}",
            m.name
        );
        assert_compacted(&m.client_url, COMPACT_REV - 1);
        assert_eq!(status_revision(&m.client_url), Some(REVISION));
    }
    let eps = restored.endpoints();
    // The membership is the one given to the restore, not the source's.
    let list = ctl_json(&eps, &["member", "list", "-w", "json"]);
    let mut members: Vec<(String, Value, Value)> = list["members"]
        .as_array()
        .unwrap_or_else(|| panic!("members in {list}"))
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["peerURLs"].clone(),
                m["clientURLs"].clone(),
            )
        })
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<(String, Value, Value)> = restored
        .members
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                serde_json::json!([m.peer_url]),
                serde_json::json!([m.client_url]),
            )
        })
        .collect();
    assert_eq!(members, expected, "member list: {list}");
    // A linearizable read through the whole cluster too.
    let all = ctl_json(&eps, &["get", "", "--prefix", "-w", "json"]);
    assert_eq!(all["kvs"], reference.kvs, "linearizable read");
    assert_eq!(all["header"]["revision"], reference.revision);

    // The lease, with both keys attached.
    let hex = format!("{:x}", history.lease_id);
    let list = ctl_json(&eps, &["lease", "list", "-w", "json"]);
    let ids: Vec<i64> = list["leases"]
        .as_array()
        .unwrap_or_else(|| panic!("leases in {list}"))
        .iter()
        .map(|l| l["id"].as_i64().expect("lease id"))
        .collect();
    assert_eq!(ids, vec![history.lease_id], "lease list: {list}");
    let text = ctl(&eps, &["lease", "list"]);
    assert!(text.contains(&hex), "lease list shows {hex}: {text}");
    let ttl = ctl_json(&eps, &["lease", "timetolive", &hex, "--keys", "-w", "json"]);
    assert_eq!(ttl["id"], history.lease_id, "{ttl}");
    assert_eq!(ttl["granted-ttl"], 300, "{ttl}");
    assert!(ttl["ttl"].as_i64().unwrap_or(0) > 0, "lease alive: {ttl}");
    let mut keys: Vec<String> = ttl["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("keys in {ttl}"))
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, vec![b64(b"c"), b64(b"d")], "keys of the lease: {ttl}");

    // The next write continues the revision sequence, on every member.
    let put = ctl_json(&eps, &["put", "after-restore", "x", "-w", "json"]);
    assert_eq!(put["header"]["revision"], REVISION + 1, "{put}");
    restored.wait_revision(REVISION + 1);
    let h = ctl_json(
        &eps,
        &[
            "endpoint",
            "hashkv",
            &format!("--rev={}", REVISION + 1),
            "-w",
            "json",
        ],
    );
    let hashes: Vec<(Value, Value, Value)> = h
        .as_array()
        .expect("one object per endpoint")
        .iter()
        .map(|e| {
            let h = &e["HashKV"];
            (
                h["header"]["revision"].clone(),
                h["hash"].clone(),
                h["compact_revision"].clone(),
            )
        })
        .collect();
    assert_eq!(hashes.len(), restored.members.len(), "{h}");
    assert!(
        hashes.iter().all(|x| *x == hashes[0]),
        "HashKV equal on every member: {h}"
    );
    assert_eq!(hashes[0].2, COMPACT_REV, "compact_revision: {h}");

    // Revoking the restored lease deletes the keys attached to it.
    ctl(&eps, &["lease", "revoke", &hex]);
    for key in ["c", "d"] {
        assert_eq!(ctl(&eps, &["get", key]), "", "{key} deleted with its lease");
    }
    assert_eq!(ctl(&eps, &["get", "a", "--print-value-only"]), "7\n");
}

/// A real etcd 3.4 member with the history, its saved snapshot, and what it reports.
fn etcd_reference() -> (Cluster, PathBuf, History, Observed) {
    let etcd = Cluster::start_kind(ServerKind::Etcd, 1, ClusterOpts::default());
    let history = write_history(&etcd);
    let path = etcdctl_save(&etcd, etcd.dir(), "etcd.db");
    let observed = observe(&etcd.endpoint(0), "l");
    // The history as intended, on the reference itself.
    assert_eq!(observed.revision, REVISION);
    assert_eq!(status_revision(&etcd.endpoint(0)), Some(REVISION));
    assert_eq!(observed.old_read, "3\n");
    assert_eq!(observed.hashkv.1, COMPACT_REV);
    assert_eq!(
        observed.kvs.as_array().unwrap().len() as i64,
        4 + BULK_KEYS - 1,
        "a, c, d, big and the bulk keys but one"
    );
    assert_compacted(&etcd.endpoint(0), COMPACT_REV - 1);
    (etcd, path, history, observed)
}

#[test]
fn a_real_etcd_snapshot_restored_into_ferrokv_serves_identical_keys_revisions_and_leases() {
    let (etcd, path, history, reference) = etcd_reference();
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("snap.db");
    std::fs::copy(&path, &moved).unwrap();
    drop(etcd); // the restored members must not depend on the source
    let mut restored = RestoredCluster::restore(&moved, 3);
    restored.start();
    assert_serves(&restored, &reference, &history);
}

#[test]
fn a_snapshot_saved_by_ferrokv_restores_into_a_ferrokv_member_with_the_same_keys_and_revisions() {
    let source = Cluster::start_kind(ServerKind::Ferrokv, 1, ClusterOpts::default());
    let history = write_history(&source);
    let reference = observe(&source.endpoint(0), "l");
    assert_eq!(reference.revision, REVISION, "the history on the source");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferrokv.db");
    let out = ferrokv(&[
        "snapshot",
        "save",
        file.to_str().unwrap(),
        "--endpoints",
        &source.endpoint(0),
    ]);
    assert!(
        out.status.success(),
        "ferrokv snapshot save: {}",
        describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("Snapshot saved at {}", file.display())),
        "ferrokv snapshot save output: {}",
        describe(&out)
    );
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(
        size % 512,
        32,
        "bbolt pages plus the SHA-256 ({size} bytes)"
    );
    assert!(
        !dir.path().join("ferrokv.db.part").exists(),
        "no .part file left"
    );
    // etcdctl reads the file ferrokv wrote.
    let status = etcdctl_offline(&["snapshot", "status", file.to_str().unwrap(), "-w", "json"]);
    assert!(
        status.status.success(),
        "etcdctl snapshot status: {}",
        describe(&status)
    );
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["revision"], REVISION, "{status}");
    drop(source); // the restored member must not depend on the source

    let mut restored = RestoredCluster::restore(&file, 1);
    restored.start();
    assert_serves(&restored, &reference, &history);
}

/// `ferrokv snapshot status FILE -w FORMAT` and `etcdctl snapshot status` print the same and
/// both succeed.
#[track_caller]
fn assert_status_like_etcdctl(file: &Path) {
    for format in ["simple", "table", "json"] {
        let args = ["snapshot", "status", file.to_str().unwrap(), "-w", format];
        let theirs = etcdctl_offline(&args);
        assert!(
            theirs.status.success(),
            "etcdctl {args:?}: {}",
            describe(&theirs)
        );
        let ours = ferrokv(&args);
        assert!(
            ours.status.success(),
            "ferrokv {args:?}: {}",
            describe(&ours)
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "ferrokv {args:?} vs etcdctl"
        );
    }
}

#[test]
fn snapshot_status_prints_what_etcdctl_prints_for_etcd_and_ferrokv_files() {
    let (_etcd, etcd_file, _, _) = etcd_reference();
    assert_status_like_etcdctl(&etcd_file);

    let source = Cluster::start_kind(ServerKind::Ferrokv, 1, ClusterOpts::default());
    write_history(&source);
    let ferrokv_file = etcdctl_save(&source, source.dir(), "ferrokv.db");
    assert_status_like_etcdctl(&ferrokv_file);

    // A damaged first meta page: bbolt (and so etcdctl) falls back to the second one.
    let mut bytes = std::fs::read(&etcd_file).unwrap();
    bytes[META_OFFSET + 24] ^= 0x01; // meta 0's root bucket sequence: its checksum fails
    let meta0 = source.dir().join("meta0.db");
    std::fs::write(&meta0, &bytes).unwrap();
    assert_status_like_etcdctl(&meta0);
}

/// Offset of bbolt's meta struct in a meta page (after the 16-byte page header).
const META_OFFSET: usize = 16;
/// bbolt's page size in files etcd writes (the Linux page size).
const PAGE: usize = 4096;

/// Asserts a `ferrokv` run failed cleanly: nonzero exit, a message on stderr, no panic.
#[track_caller]
fn assert_clean_failure(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what}: succeeded unexpectedly: {}",
        describe(out)
    );
    assert!(
        out.status.code().is_some_and(|c| c != 101),
        "{what}: exit code (101 is a panic, none a signal): {}",
        describe(out)
    );
    assert!(
        !stderr.contains("panicked"),
        "{what}: panicked: {}",
        describe(out)
    );
    assert!(
        !stderr.trim().is_empty(),
        "{what}: no message: {}",
        describe(out)
    );
    stderr
}

/// `snapshot restore FILE --data-dir D ...` for one member named `n`, plus `extra` flags: the
/// same arguments for `ferrokv` and for etcdctl 3.4.
fn restore_args<'a>(file: &'a Path, data_dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "snapshot",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--name",
        "n",
        "--initial-cluster",
        "n=http://127.0.0.1:2380",
        "--initial-cluster-token",
        "t",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
    ];
    args.extend_from_slice(extra);
    args
}

/// `ferrokv snapshot restore` ([`restore_args`]).
fn ferrokv_restore(file: &Path, data_dir: &Path, extra: &[&str]) -> Output {
    ferrokv(&restore_args(file, data_dir, extra))
}

/// The same restore through etcdctl 3.4 (the reference's message), into its own data dir.
fn etcdctl_restore_stderr(file: &Path, data_dir: &Path, extra: &[&str]) -> String {
    let args = restore_args(file, data_dir, extra);
    let out = etcdctl_offline(&args);
    assert!(
        !out.status.success(),
        "etcdctl {args:?}: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes `bytes` with its SHA-256 appended (a file whose trailer matches its damaged
/// content, so only the bbolt reader can refuse it).
fn write_with_hash(path: &Path, bytes: &[u8]) {
    use sha2::Digest;
    let mut file = bytes.to_vec();
    file.extend_from_slice(&sha2::Sha256::digest(bytes));
    std::fs::write(path, file).unwrap();
}

/// The root bucket page id of the newest valid meta page of a bbolt image.
fn root_page(db: &[u8]) -> usize {
    let field = |meta: usize, at: usize| {
        let o = meta * PAGE + META_OFFSET + at;
        u64::from_le_bytes(db[o..o + 8].try_into().unwrap())
    };
    // meta: magic u32, version u32, page size u32, flags u32, root {pgid u64, seq u64},
    // freelist u64, pgid u64, txid u64, checksum u64.
    let newest = if field(0, 48) >= field(1, 48) { 0 } else { 1 };
    field(newest, 16) as usize
}

#[test]
fn damaged_snapshot_files_are_refused_without_creating_a_data_dir() {
    let (_etcd, good, _, _) = etcd_reference();
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let db = &bytes[..bytes.len() - 32];

    // (a) One byte flipped in the middle: the SHA-256 trailer no longer matches.
    let flipped = dir.path().join("flipped.db");
    let mut f = bytes.clone();
    f[bytes.len() / 2] ^= 0xff;
    std::fs::write(&flipped, &f).unwrap();
    let data_dir = dir.path().join("flipped.data");
    let out = ferrokv_restore(&flipped, &data_dir, &[]);
    let stderr = assert_clean_failure(&out, "restore of a flipped byte");
    assert!(stderr.contains("expected sha256"), "{}", describe(&out));
    assert!(
        etcdctl_restore_stderr(&flipped, &dir.path().join("etcdctl-flipped"), &[])
            .contains("expected sha256"),
        "etcdctl's message too"
    );
    assert!(!data_dir.exists(), "no data dir after a failed restore");

    // (b) Truncated by 100 bytes: no SHA-256 trailer any more (size % 512 != 32).
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let data_dir = dir.path().join("truncated.data");
    let out = ferrokv_restore(&truncated, &data_dir, &[]);
    let stderr = assert_clean_failure(&out, "restore of a truncated file");
    let missing = "snapshot missing hash but --skip-hash-check=false";
    assert!(stderr.contains(missing), "{}", describe(&out));
    assert!(
        etcdctl_restore_stderr(&truncated, &dir.path().join("etcdctl-truncated"), &[])
            .contains(missing),
        "etcdctl's message too"
    );
    assert!(!data_dir.exists(), "no data dir after a failed restore");

    // (c) The truncated file with --skip-hash-check: the bbolt image is shorter than its
    // meta's high-water mark. (etcdctl 3.4 accepts this one: the 68 bytes cut from the last
    // page are padding, which its mmap reads as zeros; ferrokv refuses a short image.)
    let data_dir = dir.path().join("truncated-skip.data");
    let out = ferrokv_restore(&truncated, &data_dir, &["--skip-hash-check"]);
    assert_clean_failure(&out, "restore of a truncated file with --skip-hash-check");
    assert!(!data_dir.exists(), "no data dir after a failed restore");
    // ... and cut to its first half, whole pages missing.
    let half = dir.path().join("half.db");
    std::fs::write(&half, &db[..(db.len() / PAGE / 2) * PAGE]).unwrap();
    let data_dir = dir.path().join("half.data");
    let out = ferrokv_restore(&half, &data_dir, &["--skip-hash-check"]);
    assert_clean_failure(&out, "restore of a half file with --skip-hash-check");
    assert!(!data_dir.exists(), "no data dir after a failed restore");

    // A damaged bbolt structure under a matching SHA-256: both meta pages' magic, then the
    // root bucket page's type.
    let mut metas = db.to_vec();
    metas[META_OFFSET] ^= 0xff;
    metas[PAGE + META_OFFSET] ^= 0xff;
    let bad_meta = dir.path().join("bad-meta.db");
    write_with_hash(&bad_meta, &metas);
    let data_dir = dir.path().join("bad-meta.data");
    let out = ferrokv_restore(&bad_meta, &data_dir, &[]);
    assert_clean_failure(&out, "restore of a file with both meta pages damaged");
    assert!(!data_dir.exists(), "no data dir after a failed restore");
    let out = ferrokv(&["snapshot", "status", bad_meta.to_str().unwrap()]);
    assert_clean_failure(&out, "status of a file with both meta pages damaged");
    let theirs = etcdctl_offline(&["snapshot", "status", bad_meta.to_str().unwrap()]);
    assert!(
        !theirs.status.success(),
        "etcdctl refuses it too: {}",
        describe(&theirs)
    );

    let mut root = db.to_vec();
    let page = root_page(db);
    assert!(
        page >= 2 && (page + 1) * PAGE <= db.len(),
        "root page {page}"
    );
    root[page * PAGE + 8..page * PAGE + 10].copy_from_slice(&0x00f0u16.to_le_bytes());
    let bad_root = dir.path().join("bad-root.db");
    write_with_hash(&bad_root, &root);
    let data_dir = dir.path().join("bad-root.data");
    let out = ferrokv_restore(&bad_root, &data_dir, &[]);
    assert_clean_failure(&out, "restore of a file with a damaged root bucket page");
    assert!(!data_dir.exists(), "no data dir after a failed restore");
    let out = ferrokv(&["snapshot", "status", bad_root.to_str().unwrap()]);
    assert_clean_failure(&out, "status of a file with a damaged root bucket page");

    // (d) An existing data dir is refused and left as it was.
    let existing = dir.path().join("existing.data");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep"), b"precious").unwrap();
    let out = ferrokv_restore(&good, &existing, &[]);
    let stderr = assert_clean_failure(&out, "restore into an existing data dir");
    let exists = format!("data-dir {:?} exists", existing.to_str().unwrap());
    assert!(stderr.contains(&exists), "{exists}: {}", describe(&out));
    assert!(
        etcdctl_restore_stderr(&good, &existing, &[]).contains(&exists),
        "etcdctl's message too"
    );
    let entries: Vec<_> = std::fs::read_dir(&existing)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("keep")]);
    assert_eq!(std::fs::read(existing.join("keep")).unwrap(), b"precious");

    // The good file itself restores (the refusals above are about the damage).
    let data_dir = dir.path().join("good.data");
    let out = ferrokv_restore(&good, &data_dir, &[]);
    assert!(
        out.status.success(),
        "restore of the good file: {}",
        describe(&out)
    );
    assert!(data_dir.is_dir());
}
