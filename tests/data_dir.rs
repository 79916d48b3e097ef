//! Start-up refuses data it cannot trust: a data dir created for another cluster, and a Raft
//! log record whose checksum does not match. Both must stop the member with a clear error,
//! never serve from the data (issue 2, "Bad input"). ferrokv-specific: skipped for etcd.

mod common;

use common::{Cluster, ClusterOpts, ServerKind};
use std::process::Command;
use std::time::Duration;

fn ferrokv_only() -> bool {
    ServerKind::under_test() == ServerKind::Ferrokv
}

/// Runs the server binary with `args` and returns (exit code, stderr). The member is expected
/// to refuse to start, so it must exit by itself; a bound keeps a wrong acceptance from
/// hanging the test.
fn run_expecting_exit(binary: &std::path::Path, args: &[String]) -> (Option<i32>, String) {
    let mut child = Command::new(binary)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ferrokv");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), stderr);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferrokv started on data it should have refused: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn data_dir_of_another_cluster_is_refused_at_start() {
    if !ferrokv_only() {
        return;
    }
    let mut c = Cluster::start(1, ClusterOpts::default());
    c.ctl_ok(&["put", "k", "v"]);
    c.kill(0);
    // Same data dir, other cluster token ⇒ other cluster id and member id.
    let args: Vec<String> = c
        .server_args(0)
        .into_iter()
        .map(|a| {
            if a.starts_with("--initial-cluster-token=") {
                "--initial-cluster-token=some-other-cluster".to_string()
            } else {
                a
            }
        })
        .collect();
    let (code, stderr) = run_expecting_exit(&c.binary, &args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("belongs to cluster"), "{stderr}");
    // The data is intact: the original flags still start the member with the key.
    c.restart(0);
    c.wait_ready();
    assert_eq!(c.ctl_ok(&["get", "k", "--print-value-only"]).trim(), "v");
}

#[test]
fn corrupt_raft_log_record_is_reported_at_start() {
    if !ferrokv_only() {
        return;
    }
    let mut c = Cluster::start(1, ClusterOpts::default());
    c.ctl_ok(&["put", "k", "v"]);
    c.kill(0);
    {
        // Flip one payload byte of the log record at index 2 behind fjall's back: fjall's own
        // checks pass (the write is well-formed), only our record checksum can catch it.
        let db = ferrokv::storage::open(&c.members[0].data_dir).unwrap();
        let log = db
            .keyspace("raft_log", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let key = 2u64.to_be_bytes();
        let mut record = log.get(key).unwrap().expect("entry 2 exists").to_vec();
        let last = record.len() - 1;
        record[last] ^= 0x5a;
        log.insert(key, record).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let (code, stderr) = run_expecting_exit(&c.binary, &c.server_args(0));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("corrupt record in raft_log at key 2: checksum mismatch"),
        "{stderr}"
    );
}
