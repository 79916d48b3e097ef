//! `--quota-backend-bytes` (issue 10, bounded disk): writes that would take the store past the
//! quota fail with "etcdserver: mvcc: database space exceeded" and raise the NOSPACE alarm for
//! the whole cluster; reads and deletes go on; after deleting, compacting, defragmenting and
//! `etcdctl alarm disarm`, writes work again — etcd's recovery procedure. Also against etcd
//! (`FERROKV_TEST_SERVER=etcd`).

mod common;

use std::time::Duration;

use common::{Cluster, ClusterOpts, wait_until};

const QUOTA: u64 = 256 * 1024;

#[test]
fn writes_past_the_quota_raise_nospace_until_space_is_freed_and_the_alarm_disarmed() {
    let c = Cluster::start(
        3,
        ClusterOpts {
            extra_args: vec![format!("--quota-backend-bytes={QUOTA}")],
            ..Default::default()
        },
    );
    let value = "v".repeat(8 * 1024);
    // At most twice the quota's worth of puts: the quota must stop them before that.
    let mut refused = None;
    for i in 0..(2 * QUOTA as usize / value.len()) {
        let out = c.etcdctl(&["put", &format!("big/{i:04}"), &value]);
        if !out.status.success() {
            refused = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
    }
    let err = refused.expect("the quota refused a put");
    assert!(
        err.contains("etcdserver: mvcc: database space exceeded"),
        "{err}"
    );
    wait_until(
        Duration::from_secs(10),
        "the NOSPACE alarm is raised",
        || c.ctl_ok(&["alarm", "list"]).contains("alarm:NOSPACE"),
    );
    // Reads and deletes go on; puts stay refused while the alarm is active.
    assert!(
        !c.ctl_ok(&["get", "big/0000", "--print-value-only"])
            .is_empty()
    );
    c.ctl_ok(&["del", "--prefix", "big/"]);
    let still = c.etcdctl(&["put", "small", "x"]);
    assert!(!still.status.success(), "a put while NOSPACE is active");

    // etcd's recovery: compact away the history, defragment, disarm.
    let rev = c.ctl_json(&["get", "small", "-w", "json"])["header"]["revision"]
        .as_i64()
        .unwrap();
    c.ctl_ok(&["compaction", &rev.to_string()]);
    c.ctl_ok(&["defrag"]);
    c.ctl_ok(&["alarm", "disarm"]);
    wait_until(Duration::from_secs(10), "writes accepted again", || {
        c.etcdctl(&["put", "small", "x"]).status.success()
    });
}

/// `Status.db_size` and `db_size_in_use` measure the store (etcd: the bbolt file and its used
/// pages): small for an empty member, growing with what is written, in-use ≤ size.
#[test]
fn status_reports_store_sizes() {
    let c = Cluster::start(1, ClusterOpts::default());
    let sizes = || {
        let v = c.ctl_json(&["endpoint", "status", "-w", "json"]);
        let s = &v[0]["Status"];
        (
            s["dbSize"].as_i64().unwrap_or(0),
            s["dbSizeInUse"].as_i64().unwrap_or(0),
        )
    };
    let (empty, empty_in_use) = sizes();
    assert!(empty < 1024 * 1024, "an empty member reports {empty} bytes");
    assert!(empty_in_use <= empty);
    let value = "v".repeat(64 * 1024);
    for i in 0..16 {
        c.ctl_ok(&["put", &format!("k{i}"), &value]);
    }
    // (etcd's figures trail its backend's batch commit, every 100 ms.)
    let mut last = (0, 0);
    wait_until(
        Duration::from_secs(5),
        "the sizes cover what was written",
        || {
            last = sizes();
            last.1 >= 16 * 64 * 1024
        },
    );
    assert!(last.1 <= last.0, "in use {} <= size {}", last.1, last.0);
}
