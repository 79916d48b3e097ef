//! `--auto-compaction-mode periodic --auto-compaction-retention 2s` (issue 10, bounded disk):
//! the leader compacts on its own to the revision of about one retention ago, with etcd 3.4's
//! schedule (first compaction one retention after start, then every retention, revisions
//! sampled every tenth of it), so old revisions become unreadable with etcd's error while the
//! current one stays. Also against etcd (`FERROKV_TEST_SERVER=etcd`). The revision mode looks
//! every 5 minutes, as etcd's; its rules are unit-tested in `src/compactor.rs`.

mod common;

use std::time::Duration;

use common::{Cluster, ClusterOpts, wait_until};

#[test]
fn periodic_auto_compaction_compacts_old_revisions_by_itself() {
    let c = Cluster::start(
        3,
        ClusterOpts {
            extra_args: vec![
                "--auto-compaction-mode=periodic".into(),
                "--auto-compaction-retention=2s".into(),
            ],
            ..Default::default()
        },
    );
    for i in 0..5 {
        c.ctl_ok(&["put", "a", &i.to_string()]);
    }
    let first_put = 2;
    assert_eq!(
        c.ctl_ok(&[
            "get",
            "a",
            &format!("--rev={first_put}"),
            "--print-value-only"
        ]),
        "0\n",
        "readable before any compaction"
    );
    // The compaction that covers the puts comes one retention after the revision was
    // sampled: a few seconds; nobody asks for it.
    wait_until(
        Duration::from_secs(20),
        "an automatic compaction past the first put",
        || {
            let out = c.etcdctl(&["get", "a", &format!("--rev={first_put}")]);
            String::from_utf8_lossy(&out.stderr)
                .contains("etcdserver: mvcc: required revision has been compacted")
        },
    );
    assert_eq!(c.ctl_ok(&["get", "a", "--print-value-only"]), "4\n");
    // Every member applies the leader's compactions: with no more writes they settle on the
    // same compacted revision.
    let compacted = |i: usize| -> i64 {
        let out = c.etcdctl_on(&[i], &["endpoint", "hashkv", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v[0]["HashKV"]["compact_revision"].as_i64().unwrap_or(-1)
    };
    wait_until(
        Duration::from_secs(20),
        "every member at the same compacted revision",
        || {
            let revs: Vec<i64> = (0..3).map(compacted).collect();
            revs.iter().all(|r| *r == revs[0] && *r >= first_put)
        },
    );
}
