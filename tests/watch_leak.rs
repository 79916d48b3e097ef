//! Watch streams and watchers are freed when their clients go away: after many streams are
//! opened and dropped — through the `etcd-client` crate, and by killing `etcdctl watch`
//! processes — the member's gauges `etcd_debugging_mvcc_watcher_total` and
//! `etcd_debugging_mvcc_watch_stream_total` (its `/metrics` on the client URL) return to
//! zero. Real etcd 3.4 passes the same test (`FERROKV_TEST_SERVER=etcd`).

mod common;

use common::{Cluster, ClusterOpts};
use etcd_client::{WatchResponse, WatchStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const STREAMS: usize = 50;
const WATCHES_PER_STREAM: usize = 20;
const ETCDCTL_WATCHERS: usize = 10;

/// The value of the unlabelled sample `name` in a Prometheus text exposition.
fn sample(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (n, v) = line.split_once(' ')?;
        if n == name { v.parse().ok() } else { None }
    })
}

/// `(watchers, streams)` as the member at `endpoint` reports them on `/metrics`.
fn watch_gauges(endpoint: &str) -> (f64, f64) {
    let mut resp = ureq::get(format!("{endpoint}/metrics"))
        .call()
        .unwrap_or_else(|e| panic!("GET {endpoint}/metrics: {e}"));
    let text = resp.body_mut().read_to_string().expect("metrics body");
    let get = |name| sample(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    (
        get("etcd_debugging_mvcc_watcher_total"),
        get("etcd_debugging_mvcc_watch_stream_total"),
    )
}

/// Polls the gauges until they read `(watchers, streams)`, panicking after [`WAIT`]. The
/// blocking HTTP call runs off the runtime's workers, which carry the client's connections.
async fn await_gauges(endpoint: &str, watchers: usize, streams: usize) {
    let want = (watchers as f64, streams as f64);
    let deadline = Instant::now() + WAIT;
    loop {
        let ep = endpoint.to_string();
        let got = tokio::task::spawn_blocking(move || watch_gauges(&ep))
            .await
            .unwrap();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "(watchers, streams) on {endpoint}: {got:?}, awaited {want:?} for {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
}

async fn next(stream: &mut WatchStream) -> WatchResponse {
    common::next_watch_response(stream, WAIT).await
}

/// Kills and reaps the `etcdctl watch` processes it holds, also when the test fails.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_streams_and_killed_clients_free_every_watcher_and_stream() {
    let c = Cluster::start(1, ClusterOpts::default());
    let ep = c.endpoint(0);
    await_gauges(&ep, 0, 0).await;
    {
        let mut client = c.member_client(0).await;
        let mut streams = Vec::new();
        for s in 0..STREAMS {
            let mut stream = client.watch(format!("s{s}/0"), None).await.unwrap();
            for w in 1..WATCHES_PER_STREAM {
                stream.watch(format!("s{s}/{w}"), None).await.unwrap();
            }
            for _ in 0..WATCHES_PER_STREAM {
                assert!(next(&mut stream).await.created());
            }
            streams.push(stream);
        }
        await_gauges(&ep, STREAMS * WATCHES_PER_STREAM, STREAMS).await;
        // Cancelling frees the watcher, not the stream.
        let first = &mut streams[0];
        for id in 0..5 {
            first.cancel(id).await.unwrap();
            assert!(next(first).await.canceled());
        }
        await_gauges(&ep, STREAMS * WATCHES_PER_STREAM - 5, STREAMS).await;
        // Half the streams end while the connection stays up (client half-close) …
        let kept = streams.split_off(STREAMS / 2);
        drop(streams);
        await_gauges(&ep, kept.len() * WATCHES_PER_STREAM, kept.len()).await;
        drop(kept);
    } // … the rest go with the connection.
    await_gauges(&ep, 0, 0).await;

    // A client process killed mid-watch (no goodbye on the wire beyond the TCP close).
    let mut children = Children(Vec::new());
    for i in 0..ETCDCTL_WATCHERS {
        let child = Command::new(common::etcdctl_bin())
            .env("ETCDCTL_API", "3")
            .args([&format!("--endpoints={ep}"), "watch", &format!("e{i}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn etcdctl watch");
        children.0.push(child);
    }
    await_gauges(&ep, ETCDCTL_WATCHERS, ETCDCTL_WATCHERS).await;
    drop(children);
    await_gauges(&ep, 0, 0).await;
}
