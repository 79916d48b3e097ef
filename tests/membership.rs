//! Runtime membership changes with real `etcdctl member add|list|update|promote|remove` (issue
//! 11): each is a Raft configuration change through the joint configuration, applied to the
//! member table by every member; etcd's checks and error texts; a removed member stops; a
//! learner started with `--initial-cluster-state existing` joins, catches up and is promoted.
//!
//! Runs against ferrokv or, with `FERROKV_TEST_SERVER=etcd`, against etcd 3.4 itself.

mod common;

use common::{Cluster, ClusterOpts, PortReservation};
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// `member list -w json`'s members as (id, name, peer URLs, is learner), by id.
fn members(c: &Cluster) -> Vec<(u64, String, Vec<String>, bool)> {
    let v: Value = c.ctl_json(&["member", "list", "-w", "json"]);
    let mut out: Vec<_> = v["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            let urls = m["peerURLs"]
                .as_array()
                .map(|a| a.iter().map(|u| u.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (
                m["ID"].as_u64().expect("ID"),
                m["name"].as_str().unwrap_or("").to_string(),
                urls,
                m["isLearner"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}

fn id_of(c: &Cluster, peer_url: &str) -> u64 {
    members(c)
        .into_iter()
        .find(|m| m.2.iter().any(|u| u == peer_url))
        .unwrap_or_else(|| panic!("no member with {peer_url}"))
        .0
}

fn url(port: &PortReservation) -> String {
    format!("http://127.0.0.1:{}", port.port)
}

/// Runs etcdctl `args` against `on` until it answers something else than etcd's "unhealthy
/// cluster" (a reconfiguration is refused until this member has been connected to every
/// voter for a health interval, 5 s) or [`WAIT`] passes; returns (success, stdout + stderr).
fn until_healthy(c: &Cluster, on: &[usize], args: &[&str]) -> (bool, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = c.etcdctl_on(on, args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !text.contains("unhealthy cluster") || Instant::now() > deadline
        {
            return (out.status.success(), text);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn members_are_added_updated_and_removed_with_etcds_rules() {
    let mut c = Cluster::start(3, ClusterOpts::default());
    let (p4, p5, p6, p7) = (
        PortReservation::new(),
        PortReservation::new(),
        PortReservation::new(),
        PortReservation::new(),
    );

    // A learner: unstarted (no name) until it joins; etcdctl prints how to start it.
    let (ok, out) = until_healthy(
        &c,
        &[0, 1, 2],
        &[
            "member",
            "add",
            "m4",
            &format!("--peer-urls={}", url(&p4)),
            "--learner",
        ],
    );
    assert!(ok && out.contains("added to cluster"), "{out}");
    assert!(
        out.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{out}"
    );
    let m4 = id_of(&c, &url(&p4));
    let listed = members(&c);
    assert_eq!(listed.len(), 4);
    let learner = listed.iter().find(|m| m.0 == m4).unwrap();
    assert_eq!((learner.1.as_str(), learner.3), ("", true));

    // etcd's refusals.
    let err = c.ctl_err(&[
        "member",
        "add",
        "m5",
        &format!("--peer-urls={}", url(&p5)),
        "--learner",
    ]);
    assert!(
        err.contains("etcdserver: too many learner members in cluster"),
        "{err}"
    );
    let taken = c.members[0].peer_url.clone();
    let err = c.ctl_err(&["member", "add", "m5", &format!("--peer-urls={taken}")]);
    assert!(
        err.contains("etcdserver: Peer URLs already exists"),
        "{err}"
    );

    // A voter, then another one refused: this member is not connected to the unstarted one.
    let (ok, out) = until_healthy(
        &c,
        &[0, 1, 2],
        &["member", "add", "m5", &format!("--peer-urls={}", url(&p5))],
    );
    assert!(ok && out.contains("added to cluster"), "{out}");
    let m5 = id_of(&c, &url(&p5));
    assert_eq!(members(&c).len(), 5);
    let err = c.ctl_err(&["member", "add", "m6", &format!("--peer-urls={}", url(&p6))]);
    assert!(err.contains("etcdserver: unhealthy cluster"), "{err}");
    // 4 voters (m4 is a learner), 3 of them started: a quorum, writes still commit.
    c.ctl_ok(&["put", "while", "grown"]);

    // The table survives a restart of every member.
    c.kill_all();
    for i in 0..3 {
        c.restart(i);
    }
    c.wait_ready();
    let listed = members(&c);
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(listed.iter().any(|m| m.0 == m4 && m.3));
    // Raft counts the added voter after the restart too: 2 of 4 voters commit nothing.
    c.kill(2);
    let out = c.etcdctl_on(&[0, 1], &["--command-timeout=3s", "put", "no", "quorum"]);
    assert!(
        !out.status.success(),
        "2 of 4 voters committed a write: {}",
        common::describe(&out)
    );
    c.restart(2);
    c.wait_ready();

    // Update a peer URL.
    let out = c.ctl_ok(&[
        "member",
        "update",
        &format!("{m4:x}"),
        &format!("--peer-urls={}", url(&p7)),
    ]);
    assert!(out.contains("updated in cluster"), "{out}");
    let listed = members(&c);
    let updated = listed.iter().find(|m| m.0 == m4).unwrap();
    assert_eq!(updated.2, vec![url(&p7)]);

    // Remove both; a second remove of the same id is "member not found".
    let out = c.ctl_ok(&["member", "remove", &format!("{m5:x}")]);
    assert!(out.contains("removed from cluster"), "{out}");
    let err = c.ctl_err(&["member", "remove", &format!("{m5:x}")]);
    assert!(err.contains("etcdserver: member not found"), "{err}");
    c.ctl_ok(&["member", "remove", &format!("{m4:x}")]);
    let listed = members(&c);
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|m| !m.1.is_empty() && !m.3));
    c.ctl_ok(&["put", "after", "shrinking"]);
    assert_eq!(
        c.ctl_ok(&["get", "while", "--print-value-only"]).trim(),
        "grown"
    );
}

#[test]
fn a_removed_member_stops_and_the_rest_go_on() {
    let mut c = Cluster::start(3, ClusterOpts::default());
    let leader = c.wait_leader(WAIT);
    let follower = (leader + 1) % 3;
    let follower_id = c.status(follower).expect("status").member_id;
    let others: Vec<usize> = (0..3).filter(|i| *i != follower).collect();
    let (ok, out) = until_healthy(
        &c,
        &others,
        &["member", "remove", &format!("{follower_id:x}")],
    );
    assert!(ok && out.contains("removed from cluster"), "{out}");
    let status = c.wait_exit(follower, WAIT);
    assert!(
        status.is_some(),
        "the removed member still runs:\n{}",
        c.log_tails(20)
    );
    assert!(
        c.log_tails(50)
            .contains("the member has been permanently removed from the cluster"),
        "{}",
        c.log_tails(50)
    );

    // The two left elect as needed and take writes.
    let out = c.etcdctl_on(&others, &["put", "k", "after removal"]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let v: Value = serde_json::from_slice(
        &c.etcdctl_on(&others, &["member", "list", "-w", "json"])
            .stdout,
    )
    .expect("member list JSON");
    assert_eq!(v["members"].as_array().unwrap().len(), 2);
}

/// A server process this test started itself; SIGKILLed and reaped on drop.
struct Joiner(std::process::Child);

impl Drop for Joiner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// etcd's runtime-reconfiguration flow: `member add --learner`, start the new member with
/// the `ETCD_INITIAL_CLUSTER` etcdctl printed and `--initial-cluster-state existing`; it
/// joins, catches up (the writes before it), publishes itself (started), follows new writes;
/// then `member promote` (sent to a follower too: forwarded to the leader) makes it a voter,
/// and a second promote is "can only promote a learner member".
#[test]
fn a_learner_joins_with_existing_state_catches_up_and_is_promoted() {
    let c = Cluster::start(3, ClusterOpts::default());
    for i in 0..20 {
        c.ctl_ok(&["put", &format!("before/{i:02}"), &format!("v{i}")]);
    }
    let (peer, client) = (PortReservation::new(), PortReservation::new());
    let (ok, out) = until_healthy(
        &c,
        &[0, 1, 2],
        &[
            "member",
            "add",
            "j3",
            &format!("--peer-urls={}", url(&peer)),
            "--learner",
        ],
    );
    assert!(ok, "{out}");
    let initial_cluster = out
        .lines()
        .find_map(|l| l.strip_prefix("ETCD_INITIAL_CLUSTER=\""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no ETCD_INITIAL_CLUSTER in {out}"))
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("j3.log")).unwrap();
    let mut cmd = std::process::Command::new(&c.binary);
    cmd.args([
        "--name=j3".to_string(),
        format!("--data-dir={}", dir.path().join("j3").display()),
        format!("--listen-client-urls={}", url(&client)),
        format!("--advertise-client-urls={}", url(&client)),
        format!("--listen-peer-urls={}", url(&peer)),
        format!("--initial-advertise-peer-urls={}", url(&peer)),
        format!("--initial-cluster={initial_cluster}"),
        "--initial-cluster-state=existing".to_string(),
        format!("--heartbeat-interval={}", c.opts.heartbeat_ms),
        format!("--election-timeout={}", c.opts.election_ms),
    ])
    .stdin(std::process::Stdio::null())
    .stdout(log.try_clone().unwrap())
    .stderr(log);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCD_") {
            cmd.env_remove(k);
        }
    }
    let _joiner = Joiner(cmd.spawn().expect("start the new member"));
    let joined_log = || std::fs::read_to_string(dir.path().join("j3.log")).unwrap_or_default();

    // It catches up and serves serializable reads of what was written before it joined.
    let local = |key: &str| {
        let out = common::run_etcdctl(
            &[url(&client)],
            &[
                "get",
                key,
                "--consistency=s",
                "--print-value-only",
                "--command-timeout=2s",
            ],
            None,
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let deadline = Instant::now() + WAIT;
    while local("before/19") != "v19" {
        assert!(
            Instant::now() < deadline,
            "the learner never caught up:\n{}",
            joined_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // It published itself: started, with its name, still a learner.
    let deadline = Instant::now() + WAIT;
    let id = loop {
        let j = members(&c).into_iter().find(|m| m.2 == vec![url(&peer)]);
        if let Some(m) = j.filter(|m| m.1 == "j3") {
            assert!(m.3, "a learner until promoted");
            break m.0;
        }
        assert!(
            Instant::now() < deadline,
            "never started:\n{}",
            joined_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    c.ctl_ok(&["put", "after", "join"]);
    let deadline = Instant::now() + WAIT;
    while local("after") != "join" {
        assert!(Instant::now() < deadline, "the learner stopped following");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Promote through a follower's endpoint and through all: forwarded to the leader.
    let leader = c.wait_leader(WAIT);
    let follower = (leader + 1) % 3;
    let out = c.etcdctl_on(&[follower], &["member", "promote", &format!("{id:x}")]);
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("promoted in cluster"));
    let err = c.ctl_err(&["member", "promote", &format!("{id:x}")]);
    assert!(
        err.contains("etcdserver: can only promote a learner member"),
        "{err}"
    );
    let listed = members(&c);
    assert!(listed.iter().any(|m| m.0 == id && !m.3), "{listed:?}");
    c.ctl_ok(&["put", "after", "promotion"]);
    let deadline = Instant::now() + WAIT;
    while local("after") != "promotion" {
        assert!(Instant::now() < deadline, "the new voter stopped following");
        std::thread::sleep(Duration::from_millis(100));
    }
}
