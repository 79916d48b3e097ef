//! `--enable-pprof`: CPU profiles on the client port, next to gRPC. A real single-member
//! ferrokv under put load is profiled for 2 s; the body must gunzip (with the system's gzip, an
//! independent decoder) to a `profile.proto` whose samples name ferrokv's own functions, which
//! also shows that the debug binary the tests run symbolizes.
//!
//! The profiling test runs ferrokv only: etcd serves Go's handlers under the same flag, but Go
//! takes a bad `seconds` as 30 s rather than a 400, and has no flame graph. The 404 test passes
//! against etcd 3.4 too (`FERROKV_TEST_SERVER=etcd`).

mod common;

use common::{Cluster, ClusterOpts, ServerKind};
use pprof::protos::Message as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PROFILE: &str = "/debug/pprof/profile";
/// Concurrent put loops while a profile is taken.
const PUT_WORKERS: usize = 4;
/// Puts at least done around each profile.
const PUTS_MIN: usize = 300;

/// Status, `Content-Type` and body of `GET <endpoint><path>` (profiles take a while).
fn get(endpoint: &str, path: &str) -> (u16, String, Vec<u8>) {
    common::http_get(endpoint, path, Duration::from_secs(60))
}

/// [`get`] on a blocking thread, so the test's runtime keeps driving the put load meanwhile.
async fn get_async(endpoint: &str, path: &str) -> (u16, String, Vec<u8>) {
    let (endpoint, path) = (endpoint.to_owned(), path.to_owned());
    tokio::task::spawn_blocking(move || get(&endpoint, &path))
        .await
        .unwrap()
}

/// Member 0 of a harness cluster, restarted by this test with extra flags (the harness starts
/// members with a fixed flag set). Output goes to the member's log, which the cluster prints
/// when a test fails. SIGKILLed and reaped on drop; declare it after the cluster so it drops
/// first.
struct Restarted {
    child: Child,
}

impl Restarted {
    fn start(cluster: &mut Cluster, extra: &[&str]) -> Restarted {
        cluster.kill(0);
        let mut args = cluster.server_args(0);
        args.extend(extra.iter().map(|s| s.to_string()));
        let log_path = &cluster.members[0].log_path;
        let mut log = OpenOptions::new().append(true).open(log_path).unwrap();
        writeln!(log, "===== pprof test: restarting with {}", args.join(" ")).unwrap();
        let mut cmd = Command::new(&cluster.binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        let mut restarted = Restarted {
            child: cmd.spawn().expect("spawn ferrokv"),
        };
        restarted.wait_healthy(&cluster.endpoint(0), cluster.opts.ready_timeout);
        restarted
    }

    fn wait_healthy(&mut self, endpoint: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("restarted member exited: {status}");
            }
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .into();
            if let Ok(resp) = agent.get(format!("{endpoint}/health")).call()
                && resp.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "not healthy within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100)); // poll interval
        }
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Put loops against `endpoint` until `stop` is set and `puts_min` puts are done; returns the
/// puts done.
async fn put_load(endpoint: String, stop: Arc<AtomicBool>, puts_min: usize) -> usize {
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..PUT_WORKERS {
        let (endpoint, stop, done) = (endpoint.clone(), stop.clone(), done.clone());
        workers.spawn(async move {
            let mut client = common::connect(&[endpoint]).await;
            let mut i = 0u64;
            while !(stop.load(Ordering::Relaxed) && done.load(Ordering::Relaxed) >= puts_min) {
                client
                    .put(format!("load/{w}/{}", i % 100), format!("value-{i}"), None)
                    .await
                    .expect("put");
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        });
    }
    workers.join_all().await;
    done.load(Ordering::Relaxed)
}

/// `GET path` while [`PUT_WORKERS`] loops put (at least [`PUTS_MIN`] puts in all); returns the
/// response and the number of puts.
async fn under_load(endpoint: &str, path: &str) -> ((u16, String, Vec<u8>), usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(put_load(endpoint.to_owned(), stop.clone(), PUTS_MIN));
    let response = get_async(endpoint, path).await;
    stop.store(true, Ordering::Relaxed);
    (response, load.await.expect("put load"))
}

/// Decompresses with the system's `gzip -dc`.
fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait gzip");
    writer.join().unwrap().expect("write to gzip");
    assert!(out.status.success(), "gzip -dc: {}", common::describe(&out));
    out.stdout
}

/// Function names of `profile` that some sample's stack passes through.
fn sampled_functions(profile: &pprof::protos::Profile) -> Vec<&str> {
    let string = |i: i64| profile.string_table[i as usize].as_str();
    let mut names: Vec<&str> = profile
        .sample
        .iter()
        .flat_map(|s| &s.location_id)
        .flat_map(|id| profile.location.iter().filter(move |l| l.id == *id))
        .flat_map(|l| &l.line)
        .flat_map(|line| {
            profile
                .function
                .iter()
                .filter(move |f| f.id == line.function_id)
        })
        .map(|f| string(f.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_pprof_serves_cpu_profiles_and_flame_graphs() {
    let mut cluster = Cluster::start_kind(ServerKind::Ferrokv, 1, ClusterOpts::default());
    let _member = Restarted::start(&mut cluster, &["--enable-pprof"]);
    let ep = cluster.endpoint(0);

    // Bad parameters are refused before sampling starts.
    for query in [
        "seconds=0",
        "seconds=301",
        "seconds=abc",
        "seconds=-1",
        "seconds=1.5",
    ] {
        let (status, _, body) = get(&ep, &format!("{PROFILE}?{query}"));
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains("from 1 to 300"), "{query}: {body}");
    }
    let (status, _, body) = get(&ep, &format!("{PROFILE}?seconds=1&format=png"));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // Only the CPU profile is served; Go's other profiles are not.
    for path in [
        "/debug/pprof/",
        "/debug/pprof/heap",
        "/debug/pprof/goroutine",
    ] {
        assert_eq!(get(&ep, path).0, 404, "{path}");
    }

    // Sampling is process-wide: of two overlapping requests, one waits its turn with a 409.
    let path = format!("{PROFILE}?seconds=2");
    let (((first, _, _), puts), (second, _, body)) = tokio::join!(under_load(&ep, &path), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        get_async(&ep, &path).await
    });
    let mut statuses = [first, second];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{}", String::from_utf8_lossy(&body));
    assert!(puts >= PUTS_MIN, "{puts} puts");
    if second == 409 {
        let message = String::from_utf8(body).unwrap();
        assert!(message.contains("already"), "{message}");
    }

    // A 2 s profile under load: gzip'd profile.proto with ferrokv's symbols.
    let ((status, content_type, body), puts) = under_load(&ep, &path).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/octet-stream");
    assert!(body.starts_with(&[0x1f, 0x8b]), "not gzip");
    let profile = pprof::protos::Profile::decode(&gunzip(&body)[..]).expect("profile.proto");
    assert!(!profile.sample.is_empty(), "no samples during {puts} puts");
    let types: Vec<&str> = profile
        .sample_type
        .iter()
        .map(|t| profile.string_table[t.ty as usize].as_str())
        .collect();
    assert_eq!(types, ["samples", "cpu"]);
    let functions = sampled_functions(&profile);
    assert!(
        functions
            .iter()
            .any(|f| f.starts_with("ferrokv::") || f.starts_with("<ferrokv::")),
        "no ferrokv function among {functions:?}"
    );
    // The unwinder running in the signal handler is not part of the profile.
    assert!(
        !functions.iter().any(|f| f.starts_with("backtrace::")),
        "{functions:?}"
    );

    // The flame graph of the same kind of profile.
    let ((status, content_type, body), _) =
        under_load(&ep, &format!("{PROFILE}?seconds=2&format=svg")).await;
    let svg = String::from_utf8(body).expect("UTF-8 SVG");
    assert_eq!(status, 200, "{svg}");
    assert_eq!(content_type, "image/svg+xml");
    assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"), "{svg}");
    assert!(
        svg.contains("ferrokv::"),
        "no ferrokv frame in the flame graph"
    );
}

#[test]
fn without_enable_pprof_the_profile_path_is_404() {
    let cluster = Cluster::start(1, ClusterOpts::default());
    let ep = cluster.endpoint(0);
    for path in [
        format!("{PROFILE}?seconds=1"),
        format!("{PROFILE}?seconds=1&format=svg"),
        format!("{PROFILE}?seconds=0"),
        "/debug/pprof/".to_string(),
    ] {
        let (status, _, body) = get(&ep, &path);
        assert_eq!(
            (status, String::from_utf8(body).unwrap().as_str()),
            (404, "404 page not found\n"),
            "{path}"
        );
    }
    let (status, _, _) = get(&ep, "/metrics");
    assert_eq!(status, 200);
}
