//! Differential compatibility test: one etcdctl script runs against a 1-member etcd 3.4 (the
//! reference, `/usr/bin/etcd`) and a 1-member server under test; outputs (exit code, stdout,
//! stderr's `Error:` lines) must be identical after normalizing what legitimately differs
//! between two clusters: ids, terms, raft indexes, db sizes, URLs, timings, version strings.
//!
//! With `FERROKV_TEST_SERVER=etcd` both sides are etcd, which checks the normalization itself.

mod common;

use std::fmt::Write as _;

use common::{Cluster, ClusterOpts, ServerKind};
use serde_json::Value;

/// One etcdctl invocation: arguments and optional standard input.
struct Step {
    args: &'static [&'static str],
    stdin: Option<&'static str>,
}

const fn step(args: &'static [&'static str]) -> Step {
    Step { args, stdin: None }
}

const fn step_in(args: &'static [&'static str], stdin: &'static str) -> Step {
    Step {
        args,
        stdin: Some(stdin),
    }
}

/// The script. Both stores start empty at revision 1, so revisions must match exactly.
const SCRIPT: &[Step] = &[
    step(&["get", "a"]),
    step(&["get", "a", "-w", "json"]),
    step(&["put", "a", "1"]),
    step(&["put", "b", "2"]),
    step(&["put", "a", "3"]),
    step(&["put", "c/x", "cx"]),
    step(&["put", "c/y", "cy"]),
    step(&["put", "--prev-kv", "c/y", "cy2"]),
    step(&["put", "-w", "json", "--prev-kv", "c/x", "cx2"]),
    step(&["get", "a"]),
    step(&["get", "a", "-w", "json"]),
    step(&["get", "a", "-w", "fields"]),
    step(&["get", "a", "--print-value-only"]),
    step(&["get", "a", "--rev=2"]),
    step(&["get", "a", "--rev=2", "-w", "json"]),
    step(&["get", "--prefix", "c/"]),
    step(&["get", "--prefix", "c/", "-w", "json"]),
    step(&["get", "--prefix", "", "--keys-only"]),
    step(&["get", "--from-key", "b"]),
    step(&["get", "a", "c"]),
    step(&["get", "--prefix", "", "--limit=2", "-w", "json"]),
    step(&["get", "--prefix", "", "--sort-by=value", "--order=descend"]),
    step(&[
        "get",
        "--prefix",
        "",
        "--sort-by=modify",
        "--order=ascend",
        "--keys-only",
    ]),
    step(&[
        "get",
        "--prefix",
        "",
        "--sort-by=create",
        "--order=descend",
        "-w",
        "json",
    ]),
    step(&[
        "get",
        "--prefix",
        "c/",
        "--sort-by=version",
        "--order=descend",
        "--limit=1",
    ]),
    step(&["get", "--rev=100", "a"]),
    step(&["del", "nothing"]),
    step(&["del", "b"]),
    step(&["del", "--prev-kv", "--prefix", "c/"]),
    step(&["del", "--prev-kv", "--prefix", "c/", "-w", "json"]),
    step(&["put", "b", "again"]),
    step(&["get", "b", "-w", "json"]),
    step(&["put", "--ignore-value", "b"]),
    step(&["put", "--ignore-value", "nokey"]),
    step(&["get", "b", "--consistency=s", "-w", "json"]),
    step(&["get", "b", "--hex"]),
    step_in(
        &["txn"],
        "value(\"a\") = \"3\"\n\nput t 1\nget a\n\nput f 1\n\n",
    ),
    step_in(
        &["txn"],
        "mod(\"a\") > \"100\"\n\nput t 2\n\nput f 2\ndel t\n\n",
    ),
    step_in(
        &["txn", "-w", "json"],
        "version(\"a\") = \"2\"\ncreate(\"b\") > \"1\"\n\nget a\nput g 1\n\ndel a\n\n",
    ),
    step_in(&["txn"], "\nput d 1\nput d 2\n\n\n"),
    step(&["get", "--prefix", "", "-w", "json"]),
    // HashKV: the same history hashes alike on both servers.
    step(&["endpoint", "hashkv"]),
    step(&["endpoint", "hashkv", "--rev=4", "-w", "json"]),
    step(&["compaction", "3"]),
    step(&["compaction", "2"]),
    step(&["get", "a", "--rev=2"]),
    step(&["get", "a", "--rev=3"]),
    step(&["get", "--prefix", "", "--rev=4", "-w", "json"]),
    step(&["endpoint", "hashkv"]),
    step(&["endpoint", "hashkv", "--rev=3"]),
    step(&["endpoint", "hashkv", "--rev=2"]),
    step(&["endpoint", "hashkv", "--rev=1000"]),
    step(&["endpoint", "health"]),
    step(&["endpoint", "health", "-w", "json"]),
    step(&["endpoint", "status"]),
    step(&["endpoint", "status", "-w", "json"]),
    step(&["member", "list"]),
    step(&["member", "list", "-w", "json"]),
    step(&["alarm", "list"]),
    step(&["defrag"]),
];

/// JSON fields whose values differ between two clusters and are replaced by `"<norm>"`.
const NORMALIZED_JSON_FIELDS: &[&str] = &[
    "cluster_id",
    "member_id",
    "raft_term",
    "leader",
    "ID",
    "raftIndex",
    "raftTerm",
    "raftAppliedIndex",
    "dbSize",
    "dbSizeInUse",
    "version",
    "took",
];

fn normalize_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if NORMALIZED_JSON_FIELDS.contains(&k.as_str()) && !val.is_object() {
                    // `version` is also a key-value's version (a number to compare);
                    // only the server version string is normalized.
                    if k == "version" && !val.is_string() {
                        continue;
                    }
                    *val = Value::String("<norm>".into());
                } else {
                    normalize_json(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_json),
        _ => {}
    }
}

/// Identity of one cluster, to be replaced by placeholders.
struct Ids {
    client_url: String,
    peer_url: String,
    member_hex: String,
}

fn ids(c: &Cluster) -> Ids {
    let v = c.ctl_json(&["member", "list", "-w", "json"]);
    Ids {
        client_url: c.members[0].client_url.clone(),
        peer_url: c.members[0].peer_url.clone(),
        member_hex: format!("{:x}", v["members"][0]["ID"].as_u64().unwrap()),
    }
}

fn normalize_line(line: &str, ids: &Ids) -> String {
    let mut l = line
        .replace(&ids.client_url, "<client-url>")
        .replace(&ids.peer_url, "<peer-url>");
    if (l.starts_with('{') || l.starts_with('['))
        && let Ok(mut v) = serde_json::from_str::<Value>(&l)
    {
        normalize_json(&mut v);
        return v.to_string();
    }
    if let Some(i) = l.find("took = ") {
        l.truncate(i + "took = ".len());
        l.push_str("<t>");
    }
    // `-w fields` lines: "ClusterID" : 123
    for f in ["\"ClusterID\"", "\"MemberID\"", "\"RaftTerm\""] {
        if l.starts_with(f) {
            return format!("{f} : <norm>");
        }
    }
    let fields: Vec<&str> = l.split(", ").collect();
    if fields.first() == Some(&"<client-url>") && fields.len() == 10 {
        // endpoint status: endpoint, id, version, db size, leader, learner, term, index,
        // applied index, errors.
        let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        for i in [1, 2, 3, 6, 7, 8] {
            f[i] = "<norm>".into();
        }
        return f.join(", ");
    }
    if fields.len() == 6 && fields[0] == ids.member_hex {
        // member list: id, status, name, peer urls, client urls, learner.
        let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        f[0] = "<member-id>".into();
        return f.join(", ");
    }
    l.replace(&ids.member_hex, "<member-id>")
}

/// Runs a step and renders its result as normalized text.
fn run(c: &Cluster, ids: &Ids, s: &Step) -> String {
    let out = c.etcdctl_with(&c.endpoints(), s.args, s.stdin);
    let mut text = format!("exit {:?}\n", out.status.code());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        writeln!(text, "out| {}", normalize_line(line, ids)).unwrap();
    }
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        // etcdctl's client-side JSON log lines hold timestamps and random target names; the
        // `Error:` line after them carries the server's message.
        if line.starts_with("{\"level\"") {
            continue;
        }
        writeln!(text, "err| {}", normalize_line(line, ids)).unwrap();
    }
    text
}

#[test]
fn etcdctl_script_matches_etcd() {
    let reference_bin = common::etcd_bin();
    assert!(
        reference_bin.exists(),
        "the differential test needs real etcd 3.4 at {} (apt-get install etcd-server \
         etcd-client, or set FERROKV_TEST_ETCD_BIN); CI installs it",
        reference_bin.display()
    );
    let reference = Cluster::start_kind(ServerKind::Etcd, 1, ClusterOpts::default());
    let sut = Cluster::start(1, ClusterOpts::default());
    let (ref_ids, sut_ids) = (ids(&reference), ids(&sut));

    let mut report = String::new();
    let mut mismatches = 0;
    for s in SCRIPT {
        let expected = run(&reference, &ref_ids, s);
        let actual = run(&sut, &sut_ids, s);
        if std::env::var_os("FERROKV_TEST_SHOW_TRANSCRIPT").is_some() {
            eprintln!("=== etcdctl {:?}\n{expected}", s.args);
        }
        if expected != actual {
            mismatches += 1;
            writeln!(
                report,
                "=== etcdctl {:?}{}\n--- etcd 3.4:\n{expected}--- {:?}:\n{actual}",
                s.args,
                s.stdin.map(|i| format!(" stdin {i:?}")).unwrap_or_default(),
                sut.kind
            )
            .unwrap();
        }
    }
    assert!(
        mismatches == 0,
        "{mismatches} of {} etcdctl commands differ from etcd 3.4:\n{report}",
        SCRIPT.len()
    );
}
