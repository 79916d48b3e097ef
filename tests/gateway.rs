//! The JSON gateway (issue 12) with plain HTTP, as curl users and gateway clients call it:
//! each request's status and JSON body compared with what etcd 3.4's gateway answers for the
//! same history (cluster and member ids and terms normalized). The expected bodies were taken
//! from etcd 3.4.23; the test passes against it too (`FERROKV_TEST_SERVER=etcd`).

mod common;

use std::time::Duration;

use common::{Cluster, ClusterOpts};
use serde_json::Value;

fn post(c: &Cluster, path: &str, body: &str) -> (u16, Value) {
    let (status, content_type, bytes) =
        common::http_post(&c.endpoint(0), path, body, Duration::from_secs(10));
    assert_eq!(content_type, "application/json", "{path}");
    let mut v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    if let Some(h) = v.get_mut("header") {
        for id in ["cluster_id", "member_id", "raft_term"] {
            if h.get(id).is_some() {
                h[id] = Value::from("<n>");
            }
        }
    }
    (status, v)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

const H: &str = r#""header":{"cluster_id":"<n>","member_id":"<n>","raft_term":"<n>""#;

#[test]
fn kv_through_the_json_gateway_answers_as_etcds() {
    let c = Cluster::start(1, ClusterOpts::default());
    // foo = "bar" (base64 Zm9v / YmFy)
    assert_eq!(
        post(&c, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#),
        (200, json(&format!(r#"{{{H},"revision":"2"}}}}"#)))
    );
    let range = post(&c, "/v3/kv/range", r#"{"key":"Zm9v"}"#);
    assert_eq!(
        range,
        (
            200,
            json(&format!(
                r#"{{{H},"revision":"2"}},"kvs":[{{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}],"count":"1"}}"#
            ))
        )
    );
    // The older prefix, and unknown fields ignored, as etcd 3.4's gateway does. (etcd 3.4.23
    // no longer serves /v3alpha; ferrokv still does, as issue 12 asks.)
    assert_eq!(
        post(&c, "/v3beta/kv/range", r#"{"key":"Zm9v","x":1}"#),
        range
    );
    if common::ServerKind::under_test() == common::ServerKind::Ferrokv {
        assert_eq!(post(&c, "/v3alpha/kv/range", r#"{"key":"Zm9v"}"#), range);
    }
    // Errors: etcd's texts and codes, grpc-gateway's HTTP statuses.
    assert_eq!(
        post(&c, "/v3/kv/range", r#"{"key":"Zm9v","revision":"100"}"#),
        (
            400,
            json(
                r#"{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}"#
            )
        )
    );
    assert_eq!(
        post(&c, "/v3/kv/range", "{}"),
        (
            400,
            json(
                r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
            )
        )
    );
    let (status, bad) = post(&c, "/v3/kv/range", "{bad");
    assert_eq!((status, &bad["code"]), (400, &Value::from(3)), "{bad}");
    // A transaction and a delete with its previous value.
    let txn = r#"{"compare":[{"key":"Zm9v","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}]}"#;
    let (status, t) = post(&c, "/v3/kv/txn", txn);
    assert_eq!((status, &t["succeeded"]), (200, &Value::from(true)), "{t}");
    assert_eq!(
        post(&c, "/v3/kv/deleterange", r#"{"key":"Zm9v","prev_kv":true}"#),
        (
            200,
            json(&format!(
                r#"{{{H},"revision":"4"}},"deleted":"1","prev_kvs":[{{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}}]}}"#
            ))
        )
    );
    // Leases and the maintenance status, with etcd's field names.
    let (status, grant) = post(&c, "/v3/lease/grant", r#"{"TTL":"60"}"#);
    assert_eq!(
        (status, &grant["TTL"]),
        (200, &Value::from("60")),
        "{grant}"
    );
    let id = grant["ID"]
        .as_str()
        .expect("the lease id, as a string")
        .to_string();
    let (status, ttl) = post(
        &c,
        "/v3/kv/lease/timetolive",
        &format!(r#"{{"ID":"{id}"}}"#),
    );
    assert_eq!(
        (status, &ttl["grantedTTL"]),
        (200, &Value::from("60")),
        "{ttl}"
    );
    let (status, kept) = post(&c, "/v3/lease/keepalive", &format!(r#"{{"ID":"{id}"}}"#));
    assert_eq!(
        (status, &kept["result"]["TTL"], &kept["result"]["ID"]),
        (200, &Value::from("60"), &Value::from(id.as_str())),
        "{kept}"
    );
    let (status, st) = post(&c, "/v3/maintenance/status", "{}");
    assert_eq!(status, 200, "{st}");
    for field in [
        "version",
        "dbSize",
        "leader",
        "raftIndex",
        "raftTerm",
        "raftAppliedIndex",
    ] {
        assert!(st.get(field).is_some(), "{field} missing from {st}");
    }
    let (status, members) = post(&c, "/v3/cluster/member/list", "");
    assert_eq!(status, 200, "{members}");
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(1),
        "{members}"
    );
}

/// OpenStack's `etcd3gw`, a gateway client nobody here wrote, through its public API (it finds
/// the API path from `/version`): put, get, prefixes, replace and create (transactions),
/// delete, leases, status, members, and a watch (its streamed `/v3/watch`). Needs the virtualenv `scripts/test` makes.
#[test]
fn etcd3gw_python_client_works_through_the_gateway() {
    let c = Cluster::start(1, ClusterOpts::default());
    let url = url::Url::parse(&c.endpoint(0)).unwrap();
    let (host, port) = (url.host_str().unwrap(), url.port().unwrap());
    let script = format!(
        r#"
from etcd3gw.client import Etcd3Client
c = Etcd3Client(host='{host}', port={port})
assert c.put('greeting', 'hello') is True
assert c.get('greeting') == [b'hello'], c.get('greeting')
for k in ['dir/a', 'dir/b', 'other']:
    c.put(k, k.upper())
got = sorted(v for v, _ in c.get_prefix('dir/'))
assert got == [b'DIR/A', b'DIR/B'], got
assert c.replace('greeting', 'hello', 'world') is True
assert c.replace('greeting', 'hello', 'again') is False
assert c.get('greeting') == [b'world']
assert c.create('fresh', 'v') is True
assert c.create('fresh', 'w') is False
lease = c.lease(ttl=60)
assert c.put('leased', 'x', lease=lease) is True
assert 0 < lease.ttl() <= 60, lease.ttl()
assert lease.refresh() == 60, 'keepalive through /v3/lease/keepalive'
assert [k for k in lease.keys()] == [b'leased'], lease.keys()
assert lease.revoke() is True
assert c.get('leased') == []
assert c.delete('greeting') is True
assert c.delete('greeting') is False
assert c.delete_prefix('dir/') is True
assert 'version' in c.status()
assert len(c.members()) == 1
import threading
threading.Timer(0.5, lambda: c.put('watched', 'v1')).start()
ev = c.watch_once('watched', timeout=10)
assert ev['kv']['value'] == b'v1', ev
print('ok')
"#
    );
    let out = std::process::Command::new(common::venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .expect("running python (scripts/test makes target/seed-venv with etcd3gw)");
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "{}",
        common::describe(&out)
    );
}

/// `POST /v3/watch`: a chunked response of `{"result": WatchResponse}` lines — the created
/// response, then each event — and the watch stream is closed when the client goes away
/// (`etcd_debugging_mvcc_watch_stream_total` back to 0).
#[test]
fn watch_streams_json_lines_until_the_client_goes_away() {
    use std::io::BufRead as _;
    let c = Cluster::start(1, ClusterOpts::default());
    let ep = c.endpoint(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut resp = agent
        .post(format!("{ep}/v3/watch"))
        .send(r#"{"create_request":{"key":"Zm9v"}}"#)
        .expect("POST /v3/watch");
    assert_eq!(resp.status().as_u16(), 200);
    let mut lines = std::io::BufReader::new(resp.body_mut().as_reader()).lines();
    let mut next = || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let created = next();
    assert_eq!(created["result"]["created"], Value::from(true), "{created}");
    post(&c, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
    let event = next();
    let kv = &event["result"]["events"][0]["kv"];
    assert_eq!(
        (&kv["key"], &kv["value"]),
        (&Value::from("Zm9v"), &Value::from("YmFy")),
        "{event}"
    );
    let streams = || {
        let (_, _, body) = common::http_get(&ep, "/metrics", Duration::from_secs(5));
        String::from_utf8(body)
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("etcd_debugging_mvcc_watch_stream_total ")
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    assert_eq!(
        streams(),
        "1",
        "one watch stream while the response streams"
    );
    drop(lines);
    drop(resp);
    common::wait_until(Duration::from_secs(10), "the watch stream closed", || {
        streams() == "0"
    });
}

/// `--cors` (etcd's corsHandler): with the default `*` every HTTP answer allows any origin, a
/// preflight `OPTIONS` is `200`; with a list, only a listed origin is echoed back.
#[test]
fn cors_headers_follow_the_cors_flag() {
    let request = |c: &Cluster, method: &str, path: &str, origin: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("{}{path}", c.endpoint(0));
        let resp = match method {
            "OPTIONS" => agent.options(&url).header("Origin", origin).call(),
            _ => agent.get(&url).header("Origin", origin).call(),
        }
        .unwrap();
        let allowed = resp
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        (resp.status().as_u16(), allowed)
    };
    let any = Cluster::start(1, ClusterOpts::default());
    assert_eq!(
        request(&any, "GET", "/health", "http://app.example"),
        (200, Some("*".into()))
    );
    assert_eq!(
        request(&any, "OPTIONS", "/v3/kv/range", "http://app.example"),
        (200, Some("*".into()))
    );
    drop(any);
    let listed = Cluster::start(
        1,
        ClusterOpts {
            extra_args: vec!["--cors=http://app.example:8080".into()],
            ..Default::default()
        },
    );
    assert_eq!(
        request(&listed, "GET", "/health", "http://app.example:8080"),
        (200, Some("http://app.example:8080".into()))
    );
    assert_eq!(
        request(&listed, "GET", "/health", "http://other.example"),
        (200, None)
    );
}

/// `POST /v3/maintenance/snapshot`: the backup stream as JSON lines, as etcd's gateway sends it
/// — base64 blobs of the bbolt file, then one line holding its SHA-256, no header.
#[test]
fn maintenance_snapshot_streams_the_backup_as_json_lines() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let c = Cluster::start(1, ClusterOpts::default());
    c.ctl_ok(&["put", "k", "v"]);
    let (status, _, body) = common::http_post(
        &c.endpoint(0),
        "/v3/maintenance/snapshot",
        "{}",
        Duration::from_secs(30),
    );
    assert_eq!(status, 200);
    let lines: Vec<Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    let blobs: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| {
            assert!(l["result"].get("header").is_none(), "{l}");
            base64::engine::general_purpose::STANDARD
                .decode(l["result"]["blob"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let (digest, file) = blobs.split_last().unwrap();
    let file: Vec<u8> = file.concat();
    assert_eq!(file.len() % 4096, 0, "a bbolt file is whole pages");
    assert_eq!(digest.as_slice(), sha2::Sha256::digest(&file).as_slice());
    // The last line is the digest alone: nothing remains after it.
    assert!(
        lines.last().unwrap()["result"]
            .get("remaining_bytes")
            .is_none()
    );
}
