//! Self-checks of the e2e harness: a cluster's processes die with it, also when the test
//! panics, so parallel test runs never leak servers.

mod common;

use std::path::Path;

use common::{Cluster, ClusterOpts};

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry (a zombie would still have one).
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn drop_kills_and_reaps_members_even_on_panic() {
    let mut pids = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let c = Cluster::start(3, ClusterOpts::default());
        pids = (0..3).map(|i| c.pid(i).expect("running")).collect();
        assert!(pids.iter().all(|&p| alive(p)));
        panic!("simulated test failure");
    }));
    assert!(result.is_err());
    assert_eq!(pids.len(), 3);
    for p in pids {
        assert!(!alive(p), "member process {p} survived its Cluster");
    }
}

#[test]
fn kill_restart_and_leader() {
    let mut c = Cluster::start(3, ClusterOpts::default());
    let leader = c.wait_leader(std::time::Duration::from_secs(10));
    let pid = c.pid(leader).unwrap();
    c.kill(leader);
    assert!(!alive(pid));
    assert_eq!(c.running().len(), 2);
    let new_leader = c.wait_leader(std::time::Duration::from_secs(10));
    assert_ne!(new_leader, leader);
    c.restart(leader);
    c.wait_ready();
    assert_eq!(c.running().len(), 3);
    assert_eq!(c.ctl_ok(&["put", "k", "v"]), "OK\n");
}
