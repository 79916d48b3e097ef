//! Raft snapshots and log compaction (issue 10, docs/snapshots.md), on 3-member clusters: a
//! follower that was down while the leader compacted its log past the follower's next entry
//! catches up through InstallSnapshot — the leader streams its store image, the follower
//! installs it — and ends with the same data and HashKV as the others; members restart from a
//! compacted log. Runs against etcd 3.4 too (`FERROKV_TEST_SERVER=etcd`): etcd keeps a fixed
//! 5000 entries behind a snapshot, so more writes go by there.

mod common;

use std::time::Duration;

use common::{Cluster, ClusterOpts, ServerKind, wait_until};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// `--snapshot-count` for both servers.
const SNAPSHOT_COUNT: u64 = 100;

/// (extra flags, puts while the follower is down): enough for several snapshot points past
/// the entries kept for slow followers.
fn plan() -> (Vec<String>, u64) {
    let count = format!("--snapshot-count={SNAPSHOT_COUNT}");
    match ServerKind::under_test() {
        ServerKind::Ferrokv => (
            vec![count, "--experimental-snapshot-catchup-entries=20".into()],
            4 * SNAPSHOT_COUNT,
        ),
        // etcd 3.4 has no catch-up flag: 5000 entries stay behind each snapshot.
        ServerKind::Etcd => (vec![count], 5000 + 4 * SNAPSHOT_COUNT),
    }
}

/// A 3-member cluster with [`plan`]'s flags, and the puts to make while a follower is down.
fn start_cluster() -> (Cluster, u64) {
    let (extra_args, puts) = plan();
    let c = Cluster::start(
        3,
        ClusterOpts {
            extra_args,
            ..ClusterOpts::default()
        },
    );
    (c, puts)
}

/// The sum of every sample of metric `name` (any labels) on member `i`.
fn metric_sum(c: &Cluster, i: usize, name: &str) -> f64 {
    let (_, _, body) = common::http_get(&c.endpoint(i), "/metrics", Duration::from_secs(10));
    String::from_utf8(body)
        .expect("UTF-8 metrics")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            let bare = n.split('{').next()?;
            (bare == name).then(|| v.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// `(revision, hash)` of every member from `endpoint hashkv --cluster`.
fn hashkv_all(c: &Cluster) -> Vec<(i64, u64)> {
    let v: Value = c.ctl_json(&["endpoint", "hashkv", "--cluster", "-w", "json"]);
    v.as_array()
        .expect("one object per endpoint")
        .iter()
        .map(|e| {
            let h = &e["HashKV"];
            (
                h["header"]["revision"].as_i64().unwrap_or(0),
                h["hash"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// A client of every member but `down`.
async fn client_without(c: &Cluster, down: usize) -> etcd_client::Client {
    let others: Vec<String> = (0..c.len())
        .filter(|i| *i != down)
        .map(|i| c.endpoint(i))
        .collect();
    common::connect(&others).await
}

/// `n` puts cycling over `keys` keys: put `i` writes `k{i % keys}` = `v{i}`.
async fn put_cycle(client: &mut etcd_client::Client, n: u64, keys: u64) {
    for i in 0..n {
        client
            .put(format!("k{}", i % keys), format!("v{i}"), None)
            .await
            .unwrap();
    }
}

/// What member `i` serves locally for `key` (a serializable read: its own store).
fn local_get(c: &Cluster, i: usize, key: &str) -> String {
    let out = c.etcdctl_on(
        &[i],
        &[
            "get",
            key,
            "--consistency=s",
            "--print-value-only",
            "--command-timeout=3s",
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_compacted_log_catches_up_through_a_snapshot() {
    let (mut c, puts) = start_cluster();
    let leader = c.wait_leader(WAIT);
    let follower = (leader + 1) % 3;
    c.ctl_ok(&["put", "before", "the follower went down"]);
    let lease = c.ctl_ok(&["lease", "grant", "600"]);
    let lease_id = lease.split_whitespace().nth(1).unwrap().to_string();
    c.ctl_ok(&["put", "leased", "x", &format!("--lease={lease_id}")]);
    c.kill(follower);

    // Writes the follower misses: overwrites of a few keys, a delete, a compaction.
    let mut client = client_without(&c, follower).await;
    put_cycle(&mut client, puts, 50).await;
    client.delete("k7", None).await.unwrap();
    let last = client.put("last", "write", None).await.unwrap();
    let revision = last.header().unwrap().revision();
    client.compact(revision - 10, None).await.unwrap();
    assert_eq!(
        metric_sum(&c, leader, "etcd_network_snapshot_send_success"),
        0.0,
        "no snapshot was needed while every member was up"
    );

    c.restart(follower);
    wait_until(WAIT, "the restarted follower serves the last write", || {
        local_get(&c, follower, "last") == "write"
    });
    assert_eq!(
        metric_sum(&c, follower, "etcd_network_snapshot_receive_success"),
        1.0,
        "{}",
        c.log_tails(30)
    );
    assert!(metric_sum(&c, leader, "etcd_network_snapshot_send_success") >= 1.0);
    // Labelled by peer as etcd labels them: the sender's and the receiver's hex ids.
    let id = |i: usize| format!("{:x}", c.status(i).expect("member status").member_id);
    let (_, _, body) = common::http_get(&c.endpoint(follower), "/metrics", WAIT);
    let received = format!(
        "etcd_network_snapshot_receive_success{{From=\"{}\"}} 1",
        id(leader)
    );
    assert!(
        String::from_utf8_lossy(&body)
            .lines()
            .any(|l| l == received),
        "{received}"
    );
    let (_, _, body) = common::http_get(&c.endpoint(leader), "/metrics", WAIT);
    let sent = format!(
        "etcd_network_snapshot_send_success{{To=\"{}\"}}",
        id(follower)
    );
    assert!(
        String::from_utf8_lossy(&body)
            .lines()
            .any(|l| l.starts_with(&sent)),
        "{sent}"
    );
    assert_eq!(local_get(&c, follower, "before"), "the follower went down");
    assert_eq!(local_get(&c, follower, "k7"), "");
    assert_eq!(
        local_get(&c, follower, &format!("k{}", (puts - 1) % 50)),
        format!("v{}", puts - 1)
    );
    // The lease came with the image: its key and its TTL.
    let ttl = c.ctl_ok(&["lease", "timetolive", &lease_id, "--keys"]);
    assert!(ttl.contains("leased"), "{ttl}");

    // Same history everywhere, and the follower keeps up with new writes.
    client.put("after", "install", None).await.unwrap();
    let mut seen = Vec::new();
    wait_until(WAIT, "every member reports the same HashKV", || {
        seen = hashkv_all(&c);
        seen.len() == 3 && seen.iter().all(|h| *h == seen[0])
    });
    wait_until(
        WAIT,
        "the follower applies writes after the install",
        || local_get(&c, follower, "after") == "install",
    );

    // Every member restarts from its compacted log and still holds everything.
    c.kill_all();
    for i in 0..3 {
        c.restart(i);
    }
    c.wait_ready();
    for i in 0..3 {
        wait_until(WAIT, "a restarted member serves the data", || {
            local_get(&c, i, "after") == "install"
        });
    }
    client = c.client().await;
    client.put("after", "restart", None).await.unwrap();
    wait_until(WAIT, "HashKV agrees after the restart", || {
        seen = hashkv_all(&c);
        seen.len() == 3 && seen.iter().all(|h| *h == seen[0])
    });
}

/// After a restart the leader has no store view of the point its log recorded (views live in
/// memory): it must still be able to send a snapshot without waiting for more writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_sends_a_snapshot_without_new_writes() {
    let (mut c, puts) = start_cluster();
    let leader = c.wait_leader(WAIT);
    let follower = (leader + 1) % 3;
    c.kill(follower);
    let mut client = client_without(&c, follower).await;
    put_cycle(&mut client, puts, 10).await;
    client.put("last", "before restart", None).await.unwrap();
    drop(client);
    // The two up-to-date members restart; no write follows.
    for i in 0..3 {
        c.kill(i);
    }
    for i in (0..3).filter(|i| *i != follower) {
        c.restart(i);
    }
    c.wait_leader(WAIT);
    c.restart(follower);
    wait_until(WAIT, "the follower catches up with no new write", || {
        local_get(&c, follower, "last") == "before restart"
    });
    assert_eq!(
        metric_sum(&c, follower, "etcd_network_snapshot_receive_success"),
        1.0,
        "{}",
        c.log_tails(30)
    );
}

/// A follower that dies in the middle of an install — after receiving and verifying the
/// leader's image (it keeps its old state), or after installing the image but before its Raft
/// log records the snapshot (the restart finishes the install, docs/snapshots.md §2) — comes
/// back with the same data as the others. The deaths are ferrokv's crash points
/// (`FERROKV_CRASH_AT`, `src/crashpoint.rs`): an abort there, as a SIGKILL would be, every
/// time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_killed_mid_install_restarts_and_catches_up() {
    if ServerKind::under_test() == ServerKind::Etcd {
        eprintln!("crash points are ferrokv's: nothing to run against etcd");
        return;
    }
    let (mut c, puts) = start_cluster();
    let leader = c.wait_leader(WAIT);
    let follower = (leader + 1) % 3;
    let mut client = client_without(&c, follower).await;
    for (round, point) in ["snapshot-received", "snapshot-image-installed"]
        .into_iter()
        .enumerate()
    {
        c.kill(follower);
        put_cycle(&mut client, puts, 30).await;
        let marker = format!("round {round}");
        client.put("marker", marker.as_str(), None).await.unwrap();

        c.restart_with_env(follower, &[("FERROKV_CRASH_AT", point)]);
        let status = c.wait_exit(follower, WAIT);
        let log = c.log_tails(40);
        let status = status.unwrap_or_else(|| panic!("the follower never reached {point}:\n{log}"));
        assert!(!status.success(), "{point}: {status}");
        assert!(
            log.contains(&format!("crash point {point} reached")),
            "{log}"
        );

        c.restart(follower);
        wait_until(WAIT, "the restarted follower serves the last write", || {
            local_get(&c, follower, "marker") == marker
        });
        if point == "snapshot-image-installed" {
            let log = c.log_tails(200);
            assert!(
                log.contains("the last snapshot install did not reach the raft log; finishing it"),
                "the restart found the install cut short: {log}"
            );
        }
        let mut seen = Vec::new();
        client.put("after", marker.as_str(), None).await.unwrap();
        wait_until(WAIT, "every member reports the same HashKV", || {
            seen = hashkv_all(&c);
            seen.len() == 3 && seen.iter().all(|h| *h == seen[0])
        });
    }
}
