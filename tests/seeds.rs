//! The seeds' flows, replayed (issue 9): the documents ferrokv was made from
//! (`../shared/seeds/`), their commands run as written with `ferrokv` in place of `etcd`.
//!
//! - seed 000/001: the Python `etcd3` snippet, line by line, with the seed's expected results;
//! - seed 002: its goreman Procfile, run by `honcho` (PyPI's Procfile runner standing in for
//!   goreman), on the seed's own ports 12379/22379/32379: `member list -w table`, a put read from
//!   another member, stop `etcd2`, write, restart it, read it there;
//! - seed 003: its etcdctl examples with the outputs it shows, then one call of every command of
//!   its list that ferrokv serves; the others are listed in `SEED_003_PENDING` with their issue.
//!
//! The seeds' docker flows (seed 000's compose cluster, seed 003's `docker run` and compose
//! cluster) are in `tests/seeds_docker.rs`; seed 000's four-VM flow, in network namespaces, is
//! in `tests/seeds_netns.rs`.
//!
//! The Python tools live in the virtualenv `scripts/test` makes (`target/seed-venv`, or
//! `FERROKV_TEST_VENV`). Both tests also pass against real etcd 3.4 (`FERROKV_TEST_SERVER=etcd`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Cluster, ClusterOpts, ServerKind, describe, run_etcdctl, venv, wait_until};

/// Seeds 000/001: the `etcd3` snippet, each line's result checked against what the seed says.
#[test]
fn seed_000_python_etcd3_snippet() {
    let c = Cluster::start(1, ClusterOpts::default());
    let url = url::Url::parse(&c.endpoint(0)).unwrap();
    let (host, port) = (url.host_str().unwrap(), url.port().unwrap());
    // The seed's lines (host and port are the test member's); the asserts are the seed's
    // comments turned into checks.
    let script = format!(
        r#"
import etcd3
etcd = etcd3.client(host='{host}', port={port})
result = etcd.put('greeting', 'hello, world!')
assert result.header.revision > 1 and result.header.cluster_id != 0, result
result = etcd.get('greeting')
assert result[0] == b'hello, world!', result
assert type(result[1]).__name__ == 'KVMetadata', result
rv = result[0].decode() if result[0] else result[0]
assert rv == 'hello, world!'
result = etcd.delete('greeting')
assert result is True, result
result = etcd.delete('greeting')
assert result is False, result
assert etcd.get('greeting') == (None, None)
for k, v in [('server1/a', 'x'), ('server1/b', 'y'), ('server2/a', 'z')]:
    etcd.put(k, v)
objs = etcd.get_prefix("server1")
result = [obj[0].decode() if obj[0] else obj[0] for obj in objs]
assert result == ['x', 'y'], result
objs = etcd.get_all()
result = [obj[0].decode() if obj[0] else obj[0] for obj in objs]
assert sorted(result) == ['x', 'y', 'z'], result
print("ok")
"#
    );
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", &script])
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .output()
        .expect("running python");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// The seed's Procfile, `etcd` replaced by the server under test (verbatim otherwise).
const PROCFILE: &str = "\
etcd1: etcd --name infra1 --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 --initial-cluster-token etcd-cluster-1 --initial-cluster 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380' --initial-cluster-state new --enable-pprof
etcd2: etcd --name infra2 --listen-client-urls http://127.0.0.1:22379 --advertise-client-urls http://127.0.0.1:22379 --listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 --initial-cluster-token etcd-cluster-1 --initial-cluster 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380' --initial-cluster-state new --enable-pprof
etcd3: etcd --name infra3 --listen-client-urls http://127.0.0.1:32379 --advertise-client-urls http://127.0.0.1:32379 --listen-peer-urls http://127.0.0.1:32380 --initial-advertise-peer-urls http://127.0.0.1:32380 --initial-cluster-token etcd-cluster-1 --initial-cluster 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380' --initial-cluster-state new --enable-pprof
";

/// A `honcho start <processes>` we started. honcho runs each process in a session of its
/// own, so stopping it means SIGTERM to honcho (it forwards SIGTERM to its processes and
/// waits for them); on drop, any process honcho reported starting that is still alive is then
/// SIGKILLed, so nothing outlives a failed test.
struct Honcho {
    child: Child,
    log: PathBuf,
}

impl Honcho {
    fn start(dir: &Path, bin_dir: &Path, processes: &[&str]) -> Honcho {
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = dir.join(format!("honcho-{}.log", processes.join("-")));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(venv().join("bin/honcho"))
            .arg("start")
            .args(processes)
            .current_dir(dir)
            .env("PATH", path)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("starting honcho");
        Honcho { child, log }
    }

    /// The pids honcho reported starting (`<name> started (pid=N)` lines of its log).
    fn started_pids(&self) -> Vec<i32> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split("started (pid=").nth(1))
            .filter_map(|rest| rest.trim_end_matches(')').parse().ok())
            .collect()
    }

    /// goreman's `run stop`: SIGTERM to honcho, which stops its processes and exits.
    fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on a child process we spawned and have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Honcho {
    fn drop(&mut self) {
        self.stop();
        for pid in self.started_pids() {
            // SAFETY: kill(2) on a process honcho (our child) started for us; ESRCH if gone.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn ctl(endpoint: &str, args: &[&str]) -> std::process::Output {
    run_etcdctl(&[endpoint.to_string()], args, None)
}

fn ctl_ok(endpoint: &str, args: &[&str]) -> String {
    let out = ctl(endpoint, args);
    assert!(out.status.success(), "etcdctl {args:?}: {}", describe(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Seed 002: the Procfile under honcho, the seed's commands in order.
/// (Logs: `honcho-*.log` in the test's temp dir, printed on failure by `wait_until` callers.)
#[test]
fn seed_002_procfile_member_list_stop_write_restart_read() {
    let kind = ServerKind::under_test();
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    // `etcd` on honcho's PATH is the server under test, so the Procfile stays the seed's.
    std::os::unix::fs::symlink(kind.binary(), bin_dir.join("etcd")).unwrap();
    std::fs::write(dir.path().join("Procfile"), PROCFILE).unwrap();
    let others = Honcho::start(dir.path(), &bin_dir, &["etcd1", "etcd3"]);
    let mut etcd2 = Honcho::start(dir.path(), &bin_dir, &["etcd2"]);
    let (m1, m2) = ("localhost:12379", "localhost:22379");
    wait_until(Duration::from_secs(30), "the cluster serves", || {
        ctl(m1, &["put", "probe", "1"]).status.success()
    });
    // Each member publishes its name and client URLs through the log once it is up (etcd does
    // the same): until then the table lists it as unstarted.
    let mut table = String::new();
    wait_until(Duration::from_secs(30), "every member published", || {
        table = ctl_ok(m1, &["--write-out=table", "member", "list"]);
        !table.contains("unstarted")
    });
    for (name, port) in [("infra1", 1), ("infra2", 2), ("infra3", 3)] {
        let row = table
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        assert!(row.contains("| started |"), "{row}");
        assert!(
            row.contains(&format!("http://127.0.0.1:{port}2380")),
            "{row}"
        );
        assert!(
            row.contains(&format!("http://127.0.0.1:{port}2379")),
            "{row}"
        );
    }
    assert_eq!(ctl_ok(m1, &["put", "foo", "bar"]).trim(), "OK");
    assert_eq!(ctl_ok(m1, &["get", "foo"]), "foo\nbar\n");
    wait_until(Duration::from_secs(10), "foo on infra2", || {
        ctl(m2, &["get", "foo"]).stdout == b"foo\nbar\n"
    });
    // goreman run stop etcd2
    etcd2.stop();
    // If infra2 led, the other two elect a new leader first (an election timeout or two); a
    // write in that window times out, as with etcd, so retry it as the reader of the seed would.
    wait_until(
        Duration::from_secs(30),
        "a write on infra1 after stopping infra2",
        || ctl(m1, &["put", "key", "hello"]).status.success(),
    );
    assert_eq!(ctl_ok(m1, &["get", "key"]), "key\nhello\n");
    let stopped = ctl(m2, &["--command-timeout=2s", "get", "key"]);
    assert!(
        !stopped.status.success(),
        "the stopped member answered: {}",
        describe(&stopped)
    );
    // goreman run restart etcd2
    drop(etcd2);
    let _etcd2 = Honcho::start(dir.path(), &bin_dir, &["etcd2"]);
    wait_until(Duration::from_secs(30), "infra2 serves key again", || {
        ctl(m2, &["get", "key"]).stdout == b"key\nhello\n"
    });
    drop(others);
}

/// A long-running etcdctl (watch, elect) on `endpoint`, and a thread collecting its first `n`
/// stdout lines. The caller kills and reaps the child.
fn etcdctl_lines(
    endpoint: &str,
    args: &[&str],
    n: usize,
) -> (Child, std::thread::JoinHandle<Vec<String>>) {
    let mut child = Command::new(common::etcdctl_bin())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let lines = std::thread::spawn(move || {
        use std::io::BufRead as _;
        reader.lines().take(n).map(Result::unwrap).collect()
    });
    (child, lines)
}

/// Seed 003's etcdctl command list whose features land in later issues: run when they land.
/// (`migrate` converts an etcd 2 data dir: nothing to migrate for ferrokv; `check perf` runs
/// 60 s and is exercised by hand, see docs/profiling.md.)
#[allow(dead_code)] // the list is documentation: each joins the test when it lands
const SEED_003_PENDING: &[(&str, &str)] = &[
    ("member add / remove / update", "issue 11 (membership)"),
    (
        "auth enable / disable, user *, role *",
        "issue 13 (security)",
    ),
];

/// Seed 003: its etcdctl examples verbatim, then one call of every command of its list that
/// ferrokv serves (the rest are [`SEED_003_PENDING`]).
#[test]
fn seed_003_etcdctl_examples_and_command_list() {
    let c = Cluster::start(1, ClusterOpts::default());
    // The seed's examples, with the outputs it shows.
    assert_eq!(
        c.ctl_ok(&["put", "/testdir/testkey", "Hello world"]),
        "OK\n"
    );
    assert_eq!(c.ctl_ok(&["put", "testkey", "hello"]), "OK\n");
    assert_eq!(c.ctl_ok(&["get", "testkey"]), "testkey\nhello\n");
    assert_eq!(
        c.ctl_ok(&["get", "testkey", "--consistency=s"]),
        "testkey\nhello\n"
    );
    assert_eq!(c.ctl_ok(&["del", "testkey"]), "1\n");
    // watch: "user updates testkey" while `etcdctl watch testkey` runs.
    let (mut watch, lines) = etcdctl_lines(&c.endpoint(0), &["watch", "testkey"], 3);
    wait_until(Duration::from_secs(10), "the watch sees the update", || {
        c.ctl_ok(&["put", "testkey", "2"]);
        lines.is_finished()
    });
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(lines.join().unwrap(), ["PUT", "testkey", "2"]);
    let members = c.ctl_ok(&["member", "list"]);
    assert_eq!(members.lines().count(), 1, "{members}");
    assert!(members.contains(", started, "), "{members}");
    // The rest of the list, one call each.
    assert_eq!(
        c.etcdctl_stdin(&["txn"], "\nput txnkey 1\n\n\n").stdout,
        b"SUCCESS\n\nOK\n"
    );
    let rev = c.ctl_json(&["get", "txnkey", "-w", "json"])["header"]["revision"]
        .as_i64()
        .unwrap();
    assert_eq!(
        c.ctl_ok(&["compaction", &rev.to_string()]),
        format!("compacted revision {rev}\n")
    );
    assert_eq!(c.ctl_ok(&["alarm", "list"]), "");
    c.ctl_ok(&["alarm", "disarm"]);
    assert!(
        c.ctl_ok(&["defrag"])
            .starts_with("Finished defragmenting etcd member[")
    );
    // etcdctl 3.4 prints the health lines on stderr.
    let health = c.etcdctl(&["endpoint", "health"]);
    assert!(health.status.success(), "{}", describe(&health));
    assert!(String::from_utf8_lossy(&health.stderr).contains("is healthy"));
    assert!(
        c.ctl_ok(&["endpoint", "status"])
            .contains(&c.endpoint(0)[7..])
    );
    assert!(c.ctl_ok(&["version"]).starts_with("etcdctl version: 3.4"));
    let granted = c.ctl_ok(&["lease", "grant", "60"]);
    let lease = granted.split_whitespace().nth(1).unwrap().to_string();
    assert!(
        c.ctl_ok(&["lease", "keep-alive", "--once", &lease])
            .contains("keepalived with TTL(60)")
    );
    assert!(
        c.ctl_ok(&["lease", "timetolive", &lease])
            .contains("granted with TTL(60s)")
    );
    assert_eq!(
        c.ctl_ok(&["lease", "revoke", &lease]),
        format!("lease {lease} revoked\n")
    );
    assert_eq!(
        c.ctl_ok(&["lock", "mylock", "--", "echo", "held"]),
        "held\n"
    );
    // elect: a proposal becomes leader and prints its name and value, then is stopped.
    let (mut elect, first) = etcdctl_lines(&c.endpoint(0), &["elect", "myelection", "p1"], 2);
    wait_until(Duration::from_secs(10), "the candidate leads", || {
        first.is_finished()
    });
    let _ = elect.kill();
    let _ = elect.wait();
    let led = first.join().unwrap();
    assert!(led[0].starts_with("myelection/"), "{led:?}");
    assert_eq!(led[1], "p1");

    // make-mirror: every key of this cluster, then every later change, copied to another one.
    let dest = Cluster::start(1, ClusterOpts::default());
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _mirror = Reap(
        Command::new(common::etcdctl_bin())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", c.endpoint(0)))
            .args(["make-mirror", &dest.endpoint(0)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(
        Duration::from_secs(10),
        "the existing keys mirrored",
        || dest.ctl_ok(&["get", "/testdir/testkey", "--print-value-only"]) == "Hello world\n",
    );
    c.ctl_ok(&["put", "mirrored-later", "yes"]);
    wait_until(Duration::from_secs(10), "a later put mirrored", || {
        dest.ctl_ok(&["get", "mirrored-later", "--print-value-only"]) == "yes\n"
    });

    // snapshot save / status / restore: a backup etcdctl reads (restore writes an etcd data
    // dir; tests/snapshot_save.rs starts real etcd on one).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let file = file.to_str().unwrap();
    let saved = c.etcdctl(&["snapshot", "save", file]);
    assert!(saved.status.success(), "{}", describe(&saved));
    assert!(
        String::from_utf8_lossy(&saved.stdout).contains(&format!("Snapshot saved at {file}")),
        "{}",
        describe(&saved)
    );
    let revision = c.ctl_json(&["get", "mirrored-later", "-w", "json"])["header"]["revision"]
        .as_i64()
        .unwrap();
    let status = c.ctl_json(&["snapshot", "status", file, "-w", "json"]);
    assert_eq!(status["revision"].as_i64(), Some(revision), "{status}");
    let restored = dir.path().join("restored");
    let out = c.etcdctl(&[
        "snapshot",
        "restore",
        file,
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(restored.join("member").join("snap").join("db").exists());
}
