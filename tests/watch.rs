//! Watch end to end (etcd Watch service semantics) against a real 3-node cluster: real
//! `etcdctl watch` on a follower, and the `etcd-client` crate for history, compaction,
//! filters, cancel and duplicate ids.

mod common;

use common::{Cluster, ClusterOpts};
use etcd_client::{Client, EventType, WatchFilterType, WatchOptions, WatchResponse, WatchStream};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

async fn rev(client: &mut Client) -> i64 {
    client
        .get("__rev_probe__", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision()
}

async fn next(stream: &mut WatchStream) -> WatchResponse {
    common::next_watch_response(stream, WAIT).await
}

/// `(type, key, value, mod_revision)` of each event.
fn events(resp: &WatchResponse) -> Vec<(EventType, String, String, i64)> {
    resp.events()
        .iter()
        .map(|e| {
            let kv = e.kv().unwrap();
            (
                e.event_type(),
                kv.key_str().unwrap().to_string(),
                kv.value_str().unwrap().to_string(),
                kv.mod_revision(),
            )
        })
        .collect()
}

/// Reads lines of a child's stdout on a thread, so the test can wait with a deadline.
fn line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    rx
}

fn read_lines(rx: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => out.push(l),
            Err(_) => panic!("etcdctl watch printed only {out:?}, wanted {n} lines"),
        }
    }
    out
}

#[test]
fn etcdctl_prefix_watch_with_prev_kv_on_a_follower_sees_puts_through_the_leader() {
    let c = Cluster::start(3, ClusterOpts::default());
    let leader = c.wait_leader(WAIT);
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let r: i64 = c.ctl_json(&["get", "x", "-w", "json"])["header"]["revision"]
        .as_i64()
        .unwrap();
    // Writes through the leader before the watch starts: the watch replays them from
    // history (`--rev`), so the test needs no timing assumption about stream set-up.
    for args in [
        ["put", "foo/a", "1"],
        ["put", "foo/a", "2"],
        ["put", "bar", "x"],
    ] {
        let out = c.etcdctl_on(&[leader], &args);
        assert!(out.status.success());
    }
    assert!(c.etcdctl_on(&[leader], &["del", "foo/a"]).status.success());
    let mut child = Command::new(common::etcdctl_bin())
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={}", c.endpoint(follower)),
            "watch",
            "--prefix",
            "--prev-kv",
            &format!("--rev={}", r + 1),
            "foo/",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcdctl watch");
    let rx = line_reader(child.stdout.take().unwrap());
    let history = read_lines(&rx, 3 + 5 + 5);
    assert_eq!(
        history,
        [
            "PUT", "foo/a", "1", //
            "PUT", "foo/a", "1", "foo/a", "2", // prev_kv first
            "DELETE", "foo/a", "2", "foo/a", "", // a delete's kv has only the key
        ]
    );
    // Live: a put through the leader after the history reaches the follower's watch.
    assert!(
        c.etcdctl_on(&[leader], &["put", "foo/b", "live"])
            .status
            .success()
    );
    assert_eq!(read_lines(&rx, 3), ["PUT", "foo/b", "live"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn historical_watch_returns_exactly_the_events_after_r_then_live_without_duplicates() {
    let c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.client().await;
    client.put("k", "0", None).await.unwrap();
    let r = rev(&mut client).await;
    client.put("k", "1", None).await.unwrap(); // r+1
    client.put("other", "x", None).await.unwrap(); // r+2, not watched
    client.delete("k", None).await.unwrap(); // r+3
    client.put("k", "2", None).await.unwrap(); // r+4
    let mut stream = client
        .watch("k", Some(WatchOptions::new().with_start_revision(r + 1)))
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.extend(events(&next(&mut stream).await));
    }
    assert_eq!(
        seen,
        [
            (EventType::Put, "k".into(), "1".into(), r + 1),
            (EventType::Delete, "k".into(), "".into(), r + 3),
            (EventType::Put, "k".into(), "2".into(), r + 4),
        ]
    );
    client.put("k", "3", None).await.unwrap();
    let live = events(&next(&mut stream).await);
    assert_eq!(live, [(EventType::Put, "k".into(), "3".into(), r + 5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_start_revision_gets_compact_revision_and_cancel() {
    let c = Cluster::start(3, ClusterOpts::default());
    // One member: Compact answers once *that* member applied it; a watch balanced onto
    // another member could still see the uncompacted history (etcd alike).
    let mut client = c.member_client(0).await;
    for i in 0..5 {
        client.put("k", i.to_string(), None).await.unwrap();
    }
    let compact_at = rev(&mut client).await - 1;
    client.compact(compact_at, None).await.unwrap();
    let mut stream = client
        .watch("k", Some(WatchOptions::new().with_start_revision(2)))
        .await
        .unwrap();
    assert!(next(&mut stream).await.created());
    let resp = next(&mut stream).await;
    assert_eq!(resp.compact_revision(), compact_at);
    assert!(resp.canceled());
    // At the compacted revision itself, history is still readable.
    let mut stream = client
        .watch(
            "k",
            Some(WatchOptions::new().with_start_revision(compact_at)),
        )
        .await
        .unwrap();
    assert!(next(&mut stream).await.created());
    let resp = next(&mut stream).await;
    assert_eq!(resp.compact_revision(), 0);
    assert_eq!(resp.events()[0].kv().unwrap().mod_revision(), compact_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watches_on_one_stream_filters_ids_and_cancel() {
    let c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.client().await;
    let mut stream = client
        .watch(
            "p/",
            Some(WatchOptions::new().with_prefix().with_watch_id(7)),
        )
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert_eq!((created.created(), created.watch_id()), (true, 7));
    // Same id again: etcd answers created + canceled with id -1 and its error text.
    stream
        .watch("p/", Some(WatchOptions::new().with_watch_id(7)))
        .await
        .unwrap();
    let dup = next(&mut stream).await;
    assert_eq!(
        (
            dup.watch_id(),
            dup.created(),
            dup.canceled(),
            dup.cancel_reason()
        ),
        (
            -1,
            true,
            true,
            "mvcc: duplicate watch ID provided on the WatchStream"
        )
    );
    // Deletes only, with prev_kv.
    stream
        .watch(
            "p/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_filters([WatchFilterType::NoPut])
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    let created = next(&mut stream).await;
    let deletes_id = created.watch_id();
    assert!(created.created() && deletes_id != 7);
    let put = client.put("p/a", "1", None).await.unwrap();
    let r = put.header().unwrap().revision();
    client.delete("p/a", None).await.unwrap();
    let mut by_id: std::collections::BTreeMap<i64, Vec<_>> = Default::default();
    while by_id.values().map(Vec::len).sum::<usize>() < 3 {
        let resp = next(&mut stream).await;
        for e in resp.events() {
            by_id.entry(resp.watch_id()).or_default().push((
                e.event_type(),
                e.kv().unwrap().mod_revision(),
                e.prev_kv().map(|p| p.value_str().unwrap().to_string()),
            ));
        }
    }
    assert_eq!(
        by_id[&7],
        [(EventType::Put, r, None), (EventType::Delete, r + 1, None)]
    );
    assert_eq!(
        by_id[&deletes_id],
        [(EventType::Delete, r + 1, Some("1".to_string()))]
    );
    stream.cancel(7).await.unwrap();
    let canceled = next(&mut stream).await;
    assert_eq!((canceled.watch_id(), canceled.canceled()), (7, true));
    client.put("p/b", "2", None).await.unwrap();
    client.delete("p/b", None).await.unwrap();
    let resp = next(&mut stream).await;
    assert_eq!(
        resp.watch_id(),
        deletes_id,
        "the canceled watch sends nothing"
    );
}

/// `--max-request-bytes` of the fragment test: small, so a modest history exceeds it.
const SMALL_MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// The size etcd keeps a fragment below: `--max-request-bytes` plus its 512 KiB gRPC
/// overhead (`Config.MaxRequestBytesWithOverhead`).
const FRAGMENT_LIMIT_BYTES: usize = SMALL_MAX_REQUEST_BYTES as usize + 512 * 1024;

/// The responses of one logical response: until one with `fragment = false`.
async fn reassemble(stream: &mut WatchStream) -> Vec<WatchResponse> {
    let mut parts = vec![next(stream).await];
    while parts.last().unwrap().0.fragment {
        parts.push(next(stream).await);
    }
    parts
}

/// etcd 3.4 `sendFragments`: a watch created with `fragment` gets a response at or above the
/// limit as several responses, all but the last with `fragment = true`, each as full as fits;
/// a watch without it gets the same events in one response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_splits_large_responses_and_the_client_reassembles_them() {
    use prost::Message as _;
    const KEYS: usize = 40;
    let opts = ClusterOpts {
        max_request_bytes: Some(SMALL_MAX_REQUEST_BYTES),
        ..ClusterOpts::default()
    };
    let c = Cluster::start(1, opts);
    let mut client = c.client().await;
    let value = "v".repeat(40 * 1024); // each put is below the request limit
    let first = rev(&mut client).await + 1;
    for i in 0..KEYS {
        client
            .put(format!("big/{i:02}"), value.clone(), None)
            .await
            .unwrap();
    }
    let prefix = || WatchOptions::new().with_prefix().with_start_revision(first);
    // History: 40 × 40 KiB ≈ 1.6 MiB, above the 576 KiB limit.
    let mut whole = client.watch("big/", Some(prefix())).await.unwrap();
    let mut parts = client
        .watch("big/", Some(prefix().with_fragment()))
        .await
        .unwrap();
    assert!(next(&mut whole).await.created());
    assert!(next(&mut parts).await.created());
    let one = next(&mut whole).await;
    assert_eq!((one.events().len(), one.0.fragment), (KEYS, false));
    let fragments = reassemble(&mut parts).await;
    let expected: Vec<_> = (0..KEYS)
        .map(|i| {
            (
                EventType::Put,
                format!("big/{i:02}"),
                value.clone(),
                first + i as i64,
            )
        })
        .collect();
    let got: Vec<_> = fragments.iter().flat_map(events).collect();
    assert_eq!(got, expected);
    assert!(fragments.len() > 1);
    for (i, f) in fragments.iter().enumerate() {
        let bytes = f.0.encoded_len();
        assert!(bytes < FRAGMENT_LIMIT_BYTES, "fragment {i}: {bytes} bytes");
        if let Some(next) = fragments.get(i + 1) {
            let room = FRAGMENT_LIMIT_BYTES - bytes;
            let next_event = next.0.events[0].encoded_len();
            assert!(
                next_event + 4 >= room,
                "fragment {i} could hold one more event"
            );
        }
    }
    // Live: one DeleteRange, one revision, 40 DELETE events each carrying a 40 KiB prev_kv.
    let mut live = client
        .watch(
            "big/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_prev_key()
                    .with_fragment(),
            ),
        )
        .await
        .unwrap();
    assert!(next(&mut live).await.created());
    let deleted = client
        .delete(
            "big/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let del_rev = deleted.header().unwrap().revision();
    let fragments = reassemble(&mut live).await;
    assert!(fragments.len() > 1, "{} responses", fragments.len());
    let mut n = 0;
    for f in &fragments {
        assert_eq!(f.header().unwrap().revision(), del_rev);
        for e in f.events() {
            assert_eq!(e.event_type(), EventType::Delete);
            assert_eq!(e.kv().unwrap().key_str().unwrap(), format!("big/{n:02}"));
            assert_eq!(e.prev_kv().unwrap().value().len(), value.len());
            n += 1;
        }
    }
    assert_eq!(n, KEYS);
}
