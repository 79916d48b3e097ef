//! Leases end to end (etcd Lease service semantics) against a real 3-member cluster: real
//! `etcdctl lease …` and the `etcd-client` crate, through followers as well as the leader.
//! Every test also runs against etcd 3.4 with `FERROKV_TEST_SERVER=etcd`.

mod common;

use common::{Cluster, ClusterOpts};
use etcd_client::{
    Client, EventType, LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions, WatchOptions,
};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn follower_of(c: &Cluster) -> usize {
    let leader = c.wait_leader(WAIT);
    (0..c.len()).find(|&i| i != leader).unwrap()
}

/// Whether `key` exists, by a linearizable read; retried while the cluster has no leader
/// (reads fail with "leader changed" / "no leader" during an election).
async fn exists(client: &mut Client, key: &str) -> bool {
    let end = Instant::now() + WAIT;
    loop {
        match client.get(key, None).await {
            Ok(r) => return r.count() == 1,
            Err(e) => assert!(Instant::now() < end, "get {key}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // retry interval
    }
}

/// Polls until `key` is gone (or panics at `deadline`); returns when it was first seen gone.
async fn wait_gone(client: &mut Client, key: &str, deadline: Duration) -> Instant {
    let end = Instant::now() + deadline;
    loop {
        if !exists(client, key).await {
            return Instant::now();
        }
        assert!(
            Instant::now() < end,
            "{key} still present after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
}

/// The next watch response that carries events (skips the created notice).
async fn next_events(stream: &mut etcd_client::WatchStream) -> etcd_client::WatchResponse {
    loop {
        let resp = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("watch response within the deadline")
            .unwrap()
            .expect("watch stream open");
        if !resp.events().is_empty() {
            return resp;
        }
    }
}

fn lease_hex(id: i64) -> String {
    format!("{id:x}")
}

#[test]
fn etcdctl_lease_lifecycle_through_a_follower() {
    let c = Cluster::start(3, ClusterOpts::default());
    let f = follower_of(&c);
    let on_f = |args: &[&str]| {
        let out = c.etcdctl_on(&[f], args);
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let granted = on_f(&["lease", "grant", "100"]);
    // "lease 694d7a1c2b4e2f05 granted with TTL(100s)"
    let words: Vec<&str> = granted.split_whitespace().collect();
    assert_eq!(
        (words[0], &words[2..]),
        ("lease", &["granted", "with", "TTL(100s)"][..])
    );
    let id = words[1].to_string();
    on_f(&["put", "svc/a", "1", "--lease", &id]);
    on_f(&["put", "svc/b", "2", "--lease", &id]);
    on_f(&["put", "other", "3"]);
    let ttl: serde_json::Value =
        serde_json::from_str(&on_f(&["lease", "timetolive", &id, "--keys", "-w", "json"])).unwrap();
    assert_eq!(ttl["granted-ttl"], 100);
    let remaining = ttl["ttl"].as_i64().unwrap();
    assert!((90..=100).contains(&remaining), "remaining {remaining}");
    let mut keys: Vec<String> = ttl["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(k.as_str().unwrap())
                .unwrap();
            String::from_utf8(raw).unwrap()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["svc/a", "svc/b"]);
    let list = on_f(&["lease", "list"]);
    assert!(list.contains(&id), "lease list {list:?} lacks {id}");
    // A put without the lease detaches the key.
    on_f(&["put", "svc/b", "3"]);
    let text = on_f(&["lease", "timetolive", &id, "--keys"]);
    assert!(text.contains("attached keys([svc/a])"), "{text}");
    // Revoke deletes every attached key, and only those.
    let rev_before = c.ctl_json(&["get", "x", "-w", "json"])["header"]["revision"]
        .as_i64()
        .unwrap();
    on_f(&["lease", "revoke", &id]);
    let after = c.ctl_json(&["get", "", "--prefix", "-w", "json"]);
    assert_eq!(
        after["header"]["revision"].as_i64().unwrap(),
        rev_before + 1
    );
    let left: Vec<&str> = after["kvs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv["key"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 2, "svc/a gone, svc/b and other kept: {after}");
    let list = on_f(&["lease", "list"]);
    assert!(!list.contains(&id), "revoked lease still listed: {list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_deletes_all_attached_keys_in_one_revision_seen_by_a_watch() {
    let c = Cluster::start(3, ClusterOpts::default());
    let f = follower_of(&c);
    let mut client = c.member_client(f).await;
    let lease = client.lease_grant(60, None).await.unwrap().id();
    let mut last_put = 0;
    for k in ["l/1", "l/2", "l/3"] {
        let r = client
            .put(k, "v", Some(PutOptions::new().with_lease(lease)))
            .await
            .unwrap();
        last_put = r.header().unwrap().revision();
    }
    // From the revision after the puts, so the watch cannot miss the revoke however late it
    // is set up.
    let mut stream = client
        .watch(
            "l/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(last_put + 1),
            ),
        )
        .await
        .unwrap();
    let revoked = client.lease_revoke(lease).await.unwrap();
    let revision = revoked.header().unwrap().revision();
    assert_eq!(revision, last_put + 1);
    let resp = next_events(&mut stream).await;
    let got: Vec<(EventType, String, i64)> = resp
        .events()
        .iter()
        .map(|e| {
            let kv = e.kv().unwrap();
            (
                e.event_type(),
                kv.key_str().unwrap().to_string(),
                kv.mod_revision(),
            )
        })
        .collect();
    assert_eq!(
        got,
        ["l/1", "l/2", "l/3"].map(|k| (EventType::Delete, k.to_string(), revision))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_lease_deletes_its_key_not_before_the_ttl_and_a_watch_sees_it() {
    let c = Cluster::start(3, ClusterOpts::default());
    let f = follower_of(&c);
    let mut client = c.member_client(f).await;
    let before_grant = Instant::now();
    let granted = client.lease_grant(3, None).await.unwrap();
    assert_eq!(granted.ttl(), 3);
    let put = client
        .put("eph", "1", Some(PutOptions::new().with_lease(granted.id())))
        .await
        .unwrap();
    let from = put.header().unwrap().revision() + 1;
    let mut stream = client
        .watch("eph", Some(WatchOptions::new().with_start_revision(from)))
        .await
        .unwrap();
    let resp = next_events(&mut stream).await;
    let seen = Instant::now();
    assert_eq!(resp.events().len(), 1);
    assert_eq!(resp.events()[0].event_type(), EventType::Delete);
    assert!(
        seen - before_grant >= Duration::from_secs(3),
        "expired after {:?}, TTL 3 s",
        seen - before_grant
    );
    assert!(!exists(&mut client, "eph").await);
    let ttl = client.lease_time_to_live(granted.id(), None).await.unwrap();
    assert_eq!(ttl.ttl(), -1, "an expired lease reads as unknown");
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_through_a_follower_keeps_the_key_then_it_expires() {
    let c = Cluster::start(3, ClusterOpts::default());
    let f = follower_of(&c);
    let mut client = c.member_client(f).await;
    let lease = client.lease_grant(2, None).await.unwrap().id();
    client
        .put("kept", "1", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    let (mut keeper, mut responses) = client.lease_keep_alive(lease).await.unwrap();
    // Keep alive for three TTLs; every answer carries the granted TTL.
    let until = Instant::now() + Duration::from_secs(6);
    let mut last = Instant::now();
    while Instant::now() < until {
        last = Instant::now();
        keeper.keep_alive().await.unwrap();
        let r = tokio::time::timeout(WAIT, responses.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((r.id(), r.ttl()), (lease, 2));
        tokio::time::sleep(Duration::from_millis(500)).await; // the keep-alive period
    }
    assert!(
        exists(&mut client, "kept").await,
        "key lost while kept alive"
    );
    drop(keeper);
    drop(responses);
    let gone = wait_gone(&mut client, "kept", WAIT).await;
    assert!(
        gone - last >= Duration::from_secs(2),
        "expired {:?} after the last keep-alive",
        gone - last
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_never_expires_a_lease_early() {
    let mut c = Cluster::start(3, ClusterOpts::default());
    let leader = c.wait_leader(WAIT);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let mut client = c.member_client(others[0]).await;
    // Lease A: kept alive through the failover; must survive it.
    // Lease B: renewed once, then left alone; must not vanish before its TTL from that renew.
    let a = client.lease_grant(4, None).await.unwrap().id();
    let b = client.lease_grant(4, None).await.unwrap().id();
    for (k, id) in [("a", a), ("b", b)] {
        client
            .put(k, "1", Some(PutOptions::new().with_lease(id)))
            .await
            .unwrap();
    }
    let (mut keeper, mut responses) = client.lease_keep_alive(a).await.unwrap();
    keeper.keep_alive().await.unwrap();
    responses.message().await.unwrap().unwrap();
    // Renew B once; its deadline on the leader is at least TTL after this send.
    let (mut kb, mut rb) = client.lease_keep_alive(b).await.unwrap();
    let b_renewed_at = Instant::now();
    kb.keep_alive().await.unwrap();
    assert_eq!(rb.message().await.unwrap().unwrap().ttl(), 4);
    drop((kb, rb));
    c.kill(leader);
    // Keep A alive through the failover (answers may fail while there is no leader).
    let end = Instant::now() + Duration::from_secs(12);
    let mut b_gone: Option<Instant> = None;
    while Instant::now() < end {
        let _ = keeper.keep_alive().await;
        let _ = tokio::time::timeout(Duration::from_millis(900), responses.message()).await;
        if b_gone.is_none() && !exists(&mut client, "b").await {
            b_gone = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // the keep-alive period
    }
    assert!(
        exists(&mut client, "a").await,
        "a kept-alive lease expired during failover"
    );
    let b_gone = match b_gone {
        Some(t) => t,
        None => wait_gone(&mut client, "b", WAIT).await,
    };
    assert!(
        b_gone - b_renewed_at >= Duration::from_secs(4),
        "lease B expired {:?} after its last renew (TTL 4 s)",
        b_gone - b_renewed_at
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_survive_a_whole_cluster_restart() {
    let mut c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.client().await;
    let lease = client.lease_grant(300, None).await.unwrap().id();
    client
        .put("durable", "1", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    drop(client);
    c.kill_all();
    for i in 0..3 {
        c.restart(i);
    }
    c.wait_ready();
    let mut client = c.client().await;
    let listed: Vec<i64> = client
        .leases()
        .await
        .unwrap()
        .leases()
        .iter()
        .map(|l| l.id())
        .collect();
    assert_eq!(listed, [lease]);
    let ttl = client
        .lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl(), 300);
    assert_eq!(ttl.keys(), [b"durable".to_vec()]);
    client.lease_revoke(lease).await.unwrap();
    assert!(!exists(&mut client, "durable").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_lease_input_gets_etcds_errors() {
    let c = Cluster::start(3, ClusterOpts::default());
    let unknown = "1234";
    let err = c.ctl_err(&["lease", "grant", "9000000001"]);
    assert!(err.contains("etcdserver: too large lease TTL"), "{err}");
    let err = c.ctl_err(&["lease", "revoke", unknown]);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    let err = c.ctl_err(&["put", "k", "v", "--lease", unknown]);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    let err = c.ctl_err(&["lease", "keep-alive", "--once", unknown]);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    let out = c.ctl_ok(&["lease", "timetolive", unknown]);
    assert_eq!(out.trim(), "lease 0000000000001234 already expired");
    // Nothing was written by the failed put.
    assert_eq!(
        c.ctl_json(&["get", "k", "-w", "json"])["count"],
        serde_json::Value::Null
    );

    let mut client = c.client().await;
    let status = client
        .put("k", "v", Some(PutOptions::new().with_lease(0x1234)))
        .await
        .unwrap_err();
    assert!(
        status.to_string().contains("requested lease not found"),
        "{status}"
    );
    let id = client
        .lease_grant(60, Some(LeaseGrantOptions::new().with_id(0x77)))
        .await
        .unwrap()
        .id();
    assert_eq!(id, 0x77);
    let dup = client
        .lease_grant(60, Some(LeaseGrantOptions::new().with_id(0x77)))
        .await
        .unwrap_err();
    let text = format!("{dup:?}");
    assert!(
        text.contains("FailedPrecondition") && text.contains("etcdserver: lease already exists"),
        "{text}"
    );
    // The minimum TTL (⌈1.5 × election timeout⌉ = 2 s with the defaults).
    let granted = client.lease_grant(1, None).await.unwrap();
    assert_eq!(granted.ttl(), 2);
    let listed = c.ctl_ok(&["lease", "list"]);
    assert!(listed.contains(&lease_hex(0x77)), "{listed}");
}
