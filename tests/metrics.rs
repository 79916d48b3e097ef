//! etcd's HTTP endpoints on the client URL, next to gRPC: `GET /metrics` (Prometheus text,
//! etcd's metric names) and `GET /health`. Passes against real etcd 3.4 too
//! (`FERROKV_TEST_SERVER=etcd`).

mod common;

use common::{Cluster, ClusterOpts};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Status, `Content-Type` and UTF-8 body of `GET <endpoint><path>`.
fn get(endpoint: &str, path: &str) -> (u16, String, String) {
    let (status, content_type, body) = common::http_get(endpoint, path, Duration::from_secs(10));
    (
        status,
        content_type,
        String::from_utf8(body).expect("UTF-8 body"),
    )
}

/// The value of sample `name` (with its labels, if any, as written) in an exposition.
fn sample(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (n, v) = line.rsplit_once(' ')?;
        if n == name { v.parse().ok() } else { None }
    })
}

#[track_caller]
fn metric(endpoint: &str, name: &str) -> f64 {
    let (_, _, text) = get(endpoint, "/metrics");
    sample(&text, name).unwrap_or_else(|| panic!("no {name} on {endpoint}:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_are_served_on_the_client_port_beside_grpc() {
    let mut c = Cluster::start(3, ClusterOpts::default());
    let leader = c.wait_leader(WAIT);
    // gRPC on the same port: etcdctl and the etcd-client crate.
    c.ctl_ok(&["put", "k", "v"]);
    let mut client = c.client().await;
    let revision = client
        .get("k", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    for i in 0..3 {
        let ep = c.endpoint(i);
        let (status, content_type, body) = get(&ep, "/health");
        assert_eq!(
            (status, body.trim()),
            (200, r#"{"health":"true"}"#),
            "member {i}"
        );
        assert_eq!(content_type, "text/plain; charset=utf-8");
        let (status, content_type, text) = get(&ep, "/metrics");
        assert_eq!(status, 200);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        for (name, kind, help) in [
            (
                "etcd_debugging_mvcc_watcher_total",
                "gauge",
                "Total number of watchers.",
            ),
            (
                "etcd_debugging_mvcc_watch_stream_total",
                "gauge",
                "Total number of watch streams.",
            ),
            (
                "etcd_server_has_leader",
                "gauge",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
            ),
            (
                "etcd_server_is_leader",
                "gauge",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            ),
            (
                "etcd_mvcc_db_total_size_in_bytes",
                "gauge",
                "Total size of the underlying database physically allocated in bytes.",
            ),
            (
                "etcd_server_proposals_committed_total",
                "gauge",
                "The total number of consensus proposals committed.",
            ),
        ] {
            assert!(text.contains(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n")));
        }
        assert_eq!(sample(&text, "etcd_server_has_leader"), Some(1.0));
        let is_leader = if i == leader { 1.0 } else { 0.0 };
        assert_eq!(
            sample(&text, "etcd_server_is_leader"),
            Some(is_leader),
            "member {i}"
        );
        assert!(sample(&text, "etcd_server_proposals_committed_total").unwrap() >= 1.0);
        assert!(sample(&text, "etcd_mvcc_db_total_size_in_bytes").unwrap() > 0.0);
        let member_id = c.status(i).unwrap().member_id;
        let id_sample = format!("etcd_server_id{{server_id=\"{member_id:x}\"}}");
        assert_eq!(sample(&text, &id_sample), Some(1.0), "{text}");
        // Every member applies the put; its store revision gauge gets there.
        common::wait_until(WAIT, "current revision gauge", || {
            metric(&ep, "etcd_debugging_mvcc_current_revision") == revision as f64
        });
    }
    // Without a quorum the survivor loses its leader: unhealthy, 503.
    let survivor = (leader + 1) % 3;
    for i in 0..3 {
        if i != survivor {
            c.kill(i);
        }
    }
    let ep = c.endpoint(survivor);
    common::wait_until(WAIT, "has_leader 0 on the survivor", || {
        metric(&ep, "etcd_server_has_leader") == 0.0
    });
    let (status, _, body) = get(&ep, "/health");
    assert_eq!((status, body.trim()), (503, r#"{"health":"false"}"#));
    assert!(metric(&ep, "etcd_server_health_failures") >= 1.0);
}

/// A path no endpoint serves: Go's plain 404, as etcd's HTTP mux answers (tonic's fallback
/// would answer `200` with a gRPC status).
#[test]
fn unknown_http_paths_are_404() {
    let c = Cluster::start(1, ClusterOpts::default());
    // (`/v3/...` belongs to the JSON gateway, whose 404 reads "Not Found": issue 12.)
    for path in ["/nope", "/metrics/extra", "/debugging"] {
        let (status, content_type, body) = get(&c.endpoint(0), path);
        assert_eq!(
            (status, body.as_str()),
            (404, "404 page not found\n"),
            "{path}"
        );
        assert_eq!(content_type, "text/plain; charset=utf-8", "{path}");
    }
}

/// `GET /version`: the server's and the cluster's etcd versions, etcd's JSON keys.
#[test]
fn version_names_the_server_and_cluster_versions() {
    let c = Cluster::start(1, ClusterOpts::default());
    let (status, content_type, body) = get(&c.endpoint(0), "/version");
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let server = v["etcdserver"].as_str().unwrap();
    let cluster = v["etcdcluster"].as_str().unwrap();
    assert!(server.starts_with("3."), "{body}");
    let minor = |s: &str| s.split('.').take(2).collect::<Vec<_>>().join(".");
    assert_eq!(minor(server), minor(cluster), "{body}");
    assert!(cluster.ends_with(".0"), "{body}");
}

/// `/livez` and `/readyz` (etcd 3.5.11+; etcd 3.4 has neither, so this runs on ferrokv only):
/// `ok`, the checks with `?verbose`, one check by path, 503 with the failed check while a
/// CORRUPT alarm is active (`?exclude=` skips it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livez_and_readyz_run_etcds_checks() {
    if common::ServerKind::under_test() == common::ServerKind::Etcd {
        eprintln!("etcd 3.4 serves no /livez or /readyz: nothing to compare");
        return;
    }
    let c = Cluster::start(1, ClusterOpts::default());
    let ep = c.endpoint(0);
    let at = |path: &str| tokio::task::block_in_place(|| get(&ep, path));
    assert_eq!(
        at("/livez"),
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    assert_eq!(
        at("/readyz?verbose").2,
        "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n\
         [+]non_learner ok\nok\n"
    );
    assert_eq!(at("/readyz/linearizable_read").2, "ok\n");
    assert_eq!(at("/readyz/nope").0, 404);

    let mut client = c.client().await;
    let mut options = etcd_client::AlarmOptions::new();
    options.with_member(client.status().await.unwrap().header().unwrap().member_id());
    client
        .alarm(
            etcd_client::AlarmAction::Activate,
            etcd_client::AlarmType::Corrupt,
            Some(options),
        )
        .await
        .unwrap();
    let (status, _, body) = at("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("[-]data_corruption failed: alarm activated: CORRUPT\n"),
        "{body}"
    );
    assert_eq!(at("/readyz?exclude=data_corruption").0, 200);
    assert_eq!(at("/livez").0, 200, "a corrupt member is still alive");
}
