//! etcdctl 3.4 against a 1-member and a 3-member cluster: KV commands (put, get with its
//! flags, del, txn, compaction) and the cluster commands (endpoint health/status, member list).
//! Outputs are compared exactly with etcdctl's simple and JSON formats; revisions are derived
//! from the operations performed (etcd KV semantics: one revision per write transaction).

mod common;

use common::{Cluster, ClusterOpts, b64, describe};
use serde_json::Value;

/// Current store revision (header.revision of a Range).
fn revision(c: &Cluster) -> i64 {
    c.ctl_json(&["get", "__rev_probe__", "-w", "json"])["header"]["revision"]
        .as_i64()
        .expect("header.revision")
}

/// Puts `key=value`, asserts the simple output `OK`, and returns the new store revision,
/// checking it is exactly one more than before.
fn put(c: &Cluster, key: &str, value: &str) -> i64 {
    let before = revision(c);
    assert_eq!(c.ctl_ok(&["put", key, value]), "OK\n");
    let after = revision(c);
    assert_eq!(after, before + 1, "a put increments the revision by one");
    after
}

/// Generates `<name>_1_member` and `<name>_3_members` tests calling `body(&Cluster)`.
macro_rules! on_1_and_3 {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn on_1_member() {
                let c = Cluster::start(1, ClusterOpts::default());
                ($body)(&c);
            }
            #[test]
            fn on_3_members() {
                let c = Cluster::start(3, ClusterOpts::default());
                ($body)(&c);
            }
        }
    };
}

on_1_and_3!(put_and_get_single_key, |c: &Cluster| {
    // A fresh store is at revision 1 and a missing key yields no kvs, count omitted (0).
    let v = c.ctl_json(&["get", "foo", "-w", "json"]);
    assert_eq!(v["header"]["revision"], 1);
    assert!(v.get("kvs").is_none(), "{v}");
    assert_eq!(v.get("count").and_then(Value::as_i64).unwrap_or(0), 0);
    assert_eq!(c.ctl_ok(&["get", "foo"]), "");

    let r1 = put(c, "foo", "bar");
    assert_eq!(c.ctl_ok(&["get", "foo"]), "foo\nbar\n");
    let r2 = put(c, "foo", "baz");
    assert_eq!(c.ctl_ok(&["get", "foo"]), "foo\nbaz\n");

    let v = c.ctl_json(&["get", "foo", "-w", "json"]);
    assert_eq!(v["header"]["revision"], r2);
    assert_eq!(v["count"], 1);
    assert!(v.get("more").is_none() || v["more"] == false);
    let kv = &v["kvs"][0];
    assert_eq!(kv["key"], b64(b"foo"));
    assert_eq!(kv["value"], b64(b"baz"));
    assert_eq!(kv["create_revision"], r1);
    assert_eq!(kv["mod_revision"], r2);
    assert_eq!(kv["version"], 2);

    // Reading at the older revision sees the older value.
    assert_eq!(
        c.ctl_ok(&["get", "foo", &format!("--rev={r1}")]),
        "foo\nbar\n"
    );
    let v = c.ctl_json(&["get", "foo", &format!("--rev={r1}"), "-w", "json"]);
    assert_eq!(v["kvs"][0]["value"], b64(b"bar"));
    assert_eq!(v["kvs"][0]["version"], 1);
    assert_eq!(v["kvs"][0]["mod_revision"], r1);
    // The header always carries the current revision, not the requested one.
    assert_eq!(v["header"]["revision"], r2);

    // --keys-only prints the key and an empty value line.
    assert_eq!(c.ctl_ok(&["get", "foo", "--keys-only"]), "foo\n\n");
    let v = c.ctl_json(&["get", "foo", "--keys-only", "-w", "json"]);
    assert!(v["kvs"][0].get("value").is_none(), "{v}");
    assert_eq!(v["kvs"][0]["key"], b64(b"foo"));

    // Values with spaces and binary-ish characters round-trip.
    put(c, "sp ace", "a b  c");
    assert_eq!(c.ctl_ok(&["get", "sp ace"]), "sp ace\na b  c\n");
});

on_1_and_3!(get_ranges_limits_and_sorting, |c: &Cluster| {
    // Values chosen so value order, key order and modify order all differ.
    let puts = [
        ("k3", "a"),
        ("k1", "c"),
        ("k5", "b"),
        ("k2", "e"),
        ("k4", "d"),
    ];
    let mut mod_rev = std::collections::BTreeMap::new();
    for (k, v) in puts {
        mod_rev.insert(k, put(c, k, v));
    }
    put(c, "a", "before-k");
    put(c, "z", "after-k");
    let current = revision(c);

    assert_eq!(
        c.ctl_ok(&["get", "--prefix", "k"]),
        "k1\nc\nk2\ne\nk3\na\nk4\nd\nk5\nb\n"
    );
    assert_eq!(
        c.ctl_ok(&["get", "--prefix", "k", "--keys-only"]),
        "k1\n\nk2\n\nk3\n\nk4\n\nk5\n\n"
    );
    // A range [key, range_end).
    assert_eq!(c.ctl_ok(&["get", "k2", "k4"]), "k2\ne\nk3\na\n");
    // --from-key: every key >= k4.
    assert_eq!(
        c.ctl_ok(&["get", "--from-key", "k4"]),
        "k4\nd\nk5\nb\nz\nafter-k\n"
    );

    // --limit: at most n kvs, more = true, count = total matching.
    assert_eq!(
        c.ctl_ok(&["get", "--prefix", "k", "--limit=2"]),
        "k1\nc\nk2\ne\n"
    );
    let v = c.ctl_json(&["get", "--prefix", "k", "--limit=2", "-w", "json"]);
    assert_eq!(v["header"]["revision"], current);
    assert_eq!(v["kvs"].as_array().unwrap().len(), 2);
    assert_eq!(v["more"], true);
    assert_eq!(v["count"], 5);
    let v = c.ctl_json(&["get", "--prefix", "k", "--limit=5", "-w", "json"]);
    assert!(v.get("more").is_none() || v["more"] == false, "{v}");
    assert_eq!(v["count"], 5);
    for kv in v["kvs"].as_array().unwrap() {
        let key = String::from_utf8(common::unb64(kv["key"].as_str().unwrap())).unwrap();
        assert_eq!(kv["mod_revision"], mod_rev[key.as_str()]);
        assert_eq!(kv["create_revision"], mod_rev[key.as_str()]);
        assert_eq!(kv["version"], 1);
    }

    // Sorting.
    assert_eq!(
        c.ctl_ok(&["get", "--prefix", "k", "--sort-by=value", "--order=ascend"]),
        "k3\na\nk5\nb\nk1\nc\nk4\nd\nk2\ne\n"
    );
    assert_eq!(
        c.ctl_ok(&["get", "--prefix", "k", "--sort-by=key", "--order=descend"]),
        "k5\nb\nk4\nd\nk3\na\nk2\ne\nk1\nc\n"
    );
    assert_eq!(
        c.ctl_ok(&[
            "get",
            "--prefix",
            "k",
            "--sort-by=modify",
            "--order=descend",
            "--keys-only"
        ]),
        "k4\n\nk2\n\nk5\n\nk1\n\nk3\n\n"
    );
    assert_eq!(
        c.ctl_ok(&[
            "get",
            "--prefix",
            "k",
            "--sort-by=create",
            "--order=ascend",
            "--keys-only"
        ]),
        "k3\n\nk1\n\nk5\n\nk2\n\nk4\n\n"
    );
    // Sorting applies before the limit.
    assert_eq!(
        c.ctl_ok(&[
            "get",
            "--prefix",
            "k",
            "--sort-by=value",
            "--order=descend",
            "--limit=2"
        ]),
        "k2\ne\nk4\nd\n"
    );

    // A range at an older revision sees only the keys that existed then.
    let at = mod_rev["k5"];
    assert_eq!(
        c.ctl_ok(&[
            "get",
            "--prefix",
            "k",
            &format!("--rev={at}"),
            "--keys-only"
        ]),
        "k1\n\nk3\n\nk5\n\n"
    );
});

on_1_and_3!(delete, |c: &Cluster| {
    put(c, "d1", "x");
    put(c, "d2", "y");
    put(c, "d3", "z");
    let r_put = put(c, "single", "v");
    // Deleting nothing prints 0 and does not advance the revision.
    assert_eq!(c.ctl_ok(&["del", "missing"]), "0\n");
    assert_eq!(revision(c), r_put);

    assert_eq!(c.ctl_ok(&["del", "single"]), "1\n");
    assert_eq!(revision(c), r_put + 1);
    assert_eq!(c.ctl_ok(&["get", "single"]), "");

    // --prev-kv prints the count then the deleted pairs.
    assert_eq!(
        c.ctl_ok(&["del", "--prefix", "d", "--prev-kv"]),
        "3\nd1\nx\nd2\ny\nd3\nz\n"
    );
    // One DeleteRange is one revision however many keys it deletes.
    assert_eq!(revision(c), r_put + 2);
    assert_eq!(c.ctl_ok(&["get", "--prefix", "d"]), "");

    let v = c.ctl_json(&["del", "--prefix", "d", "-w", "json"]);
    assert_eq!(v["header"]["revision"], r_put + 2);
    assert!(v.get("deleted").is_none() || v["deleted"] == 0, "{v}");

    // A re-created key starts a new generation: version 1, create_revision = its put.
    let r = put(c, "single", "again");
    let v = c.ctl_json(&["get", "single", "-w", "json"]);
    assert_eq!(v["kvs"][0]["version"], 1);
    assert_eq!(v["kvs"][0]["create_revision"], r);
    // And the previous generation is still visible at its revision.
    assert_eq!(
        c.ctl_ok(&["get", "single", &format!("--rev={r_put}")]),
        "single\nv\n"
    );
});

on_1_and_3!(txn, |c: &Cluster| {
    let r0 = put(c, "t", "v1");
    // Success branch: the compare holds; both puts share one revision.
    let out = c.etcdctl_stdin(
        &["txn"],
        "value(\"t\") = \"v1\"\n\nput a 1\nput b 2\nget t\n\nput c 3\n\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "SUCCESS\n\nOK\n\nOK\n\nt\nv1\n"
    );
    assert_eq!(revision(c), r0 + 1);
    let v = c.ctl_json(&["get", "a", "b", "-w", "json"]);
    let kvs = v["kvs"].as_array().unwrap();
    assert_eq!(kvs.len(), 1, "range [a, b) holds only a");
    assert_eq!(kvs[0]["mod_revision"], r0 + 1);
    let v = c.ctl_json(&["get", "b", "-w", "json"]);
    assert_eq!(v["kvs"][0]["mod_revision"], r0 + 1);
    assert_eq!(c.ctl_ok(&["get", "c"]), "");

    // Failure branch: compare on mod revision fails.
    let out = c.etcdctl_stdin(
        &["txn"],
        &format!("mod(\"t\") > \"{r0}\"\n\nput c 3\n\nput d 4\ndel t\n\n"),
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "FAILURE\n\nOK\n\n1\n"
    );
    assert_eq!(revision(c), r0 + 2);
    assert_eq!(c.ctl_ok(&["get", "c"]), "");
    assert_eq!(c.ctl_ok(&["get", "d"]), "d\n4\n");
    assert_eq!(c.ctl_ok(&["get", "t"]), "");

    // Compares on version and create revision; JSON output of a read-only txn.
    let out = c.etcdctl_stdin(
        &["txn", "-w", "json"],
        &format!(
            "version(\"a\") = \"1\"\ncreate(\"a\") = \"{}\"\n\nget a\n\n\n",
            r0 + 1
        ),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["succeeded"], true);
    // A txn that writes nothing does not advance the revision.
    assert_eq!(v["header"]["revision"], r0 + 2);
    let rr = &v["responses"][0]["Response"]["ResponseRange"];
    assert_eq!(rr["header"]["revision"], r0 + 2);
    assert_eq!(rr["kvs"][0]["key"], b64(b"a"));
    assert_eq!(rr["kvs"][0]["value"], b64(b"1"));
    assert_eq!(rr["count"], 1);
    assert_eq!(revision(c), r0 + 2);

    // A compare on a missing key: its version is 0.
    let out = c.etcdctl_stdin(&["txn"], "version(\"nope\") = \"0\"\n\nput e 5\n\n\n");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "SUCCESS\n\nOK\n");
    assert_eq!(revision(c), r0 + 3);
});

on_1_and_3!(compaction, |c: &Cluster| {
    let r1 = put(c, "c", "1");
    let r2 = put(c, "c", "2");
    let r3 = put(c, "c", "3");
    assert_eq!(
        c.ctl_ok(&["compaction", &r2.to_string()]),
        format!("compacted revision {r2}\n")
    );
    // The compaction revision itself stays readable.
    assert_eq!(c.ctl_ok(&["get", "c", &format!("--rev={r2}")]), "c\n2\n");
    assert_eq!(c.ctl_ok(&["get", "c"]), "c\n3\n");
    // Below it: etcd's compacted error.
    let err = c.ctl_err(&["get", "c", &format!("--rev={r1}")]);
    assert!(
        err.contains("Error: etcdserver: mvcc: required revision has been compacted"),
        "{err}"
    );
    // Compacting again at or below the compacted revision fails the same way.
    let err = c.ctl_err(&["compaction", &r1.to_string()]);
    assert!(
        err.contains("etcdserver: mvcc: required revision has been compacted"),
        "{err}"
    );
    // Compaction is not a write: the revision does not move.
    assert_eq!(revision(c), r3);
    // Above the current revision: future revision error.
    let err = c.ctl_err(&["get", "c", &format!("--rev={}", r3 + 10)]);
    assert!(
        err.contains("Error: etcdserver: mvcc: required revision is a future revision"),
        "{err}"
    );
});

on_1_and_3!(endpoint_health, |c: &Cluster| {
    let out = c.etcdctl(&["endpoint", "health"]);
    assert!(out.status.success(), "{}", describe(&out));
    // etcdctl 3.4 writes the health lines to stderr, one per endpoint in completion order.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = text.lines().filter(|l| l.contains("is healthy")).collect();
    lines.sort();
    let mut eps = c.endpoints();
    eps.sort();
    assert_eq!(lines.len(), eps.len(), "{text}");
    for (line, ep) in lines.iter().zip(&eps) {
        let prefix = format!("{ep} is healthy: successfully committed proposal: took = ");
        assert!(line.starts_with(&prefix), "{line:?} vs {prefix:?}");
    }
    let v = c.ctl_json(&["endpoint", "health", "-w", "json"]);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), eps.len());
    for e in arr {
        assert_eq!(e["health"], true, "{v}");
        assert!(eps.contains(&e["endpoint"].as_str().unwrap().to_string()));
    }
});

on_1_and_3!(endpoint_status, |c: &Cluster| {
    let r = put(c, "s", "1");
    let v = c.ctl_json(&["endpoint", "status", "-w", "json"]);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), c.len());
    let leader = arr[0]["Status"]["leader"].as_u64().unwrap();
    assert_ne!(leader, 0);
    let cluster_id = arr[0]["Status"]["header"]["cluster_id"].as_u64().unwrap();
    let mut member_ids = Vec::new();
    let mut leaders_seen = 0;
    for e in arr {
        let s = &e["Status"];
        assert!(
            c.endpoints()
                .contains(&e["Endpoint"].as_str().unwrap().to_string())
        );
        assert_eq!(
            s["leader"], leader,
            "every member names the same leader: {v}"
        );
        assert_eq!(s["header"]["cluster_id"], cluster_id);
        let id = s["header"]["member_id"].as_u64().unwrap();
        member_ids.push(id);
        if id == leader {
            leaders_seen += 1;
        }
        assert!(s["raftTerm"].as_u64().unwrap() >= 1, "{v}");
        assert_eq!(s["raftTerm"], s["header"]["raft_term"]);
        assert!(s["raftIndex"].as_u64().unwrap() >= 1, "{v}");
        assert!(s["dbSize"].as_i64().unwrap() > 0, "{v}");
        assert!(s["version"].as_str().is_some_and(|v| !v.is_empty()), "{v}");
        // Serializable: a follower may lag, but never beyond the current revision.
        assert!(s["header"]["revision"].as_i64().unwrap() <= r);
    }
    member_ids.sort();
    member_ids.dedup();
    assert_eq!(member_ids.len(), c.len(), "member ids are distinct");
    assert_eq!(leaders_seen, 1, "exactly one member is the leader: {v}");
    // The leader's revision is current.
    let leader_ep = arr
        .iter()
        .find(|e| e["Status"]["header"]["member_id"] == leader)
        .unwrap();
    assert_eq!(leader_ep["Status"]["header"]["revision"], r);
    assert_eq!(
        c.leader().map(|i| c.endpoint(i)).as_deref(),
        leader_ep["Endpoint"].as_str()
    );

    // Simple format: endpoint, id (%x), version, db size, is leader, is learner, term, index,
    // applied index, errors.
    let text = c.ctl_ok(&["endpoint", "status"]);
    assert_eq!(text.lines().count(), c.len(), "{text}");
    for line in text.lines() {
        let f: Vec<&str> = line.split(", ").collect();
        assert_eq!(f.len(), 10, "{line}");
        assert!(c.endpoints().contains(&f[0].to_string()), "{line}");
        let id = u64::from_str_radix(f[1], 16).unwrap();
        assert!(member_ids.contains(&id));
        assert_eq!(f[4], if id == leader { "true" } else { "false" }, "{line}");
        assert_eq!(f[5], "false", "not a learner: {line}");
    }
});

on_1_and_3!(member_list, |c: &Cluster| {
    let v = c.ctl_json(&["member", "list", "-w", "json"]);
    let mut members: Vec<(String, u64, Vec<String>, Vec<String>)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let urls = |f: &str| -> Vec<String> {
                m[f].as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect()
            };
            (
                m["name"].as_str().unwrap().to_string(),
                m["ID"].as_u64().unwrap(),
                urls("peerURLs"),
                urls("clientURLs"),
            )
        })
        .collect();
    members.sort();
    assert_eq!(members.len(), c.len());
    for (i, (name, _, peers, clients)) in members.iter().enumerate() {
        let m = &c.members[i];
        assert_eq!(name, &m.name);
        assert_eq!(peers, &vec![m.peer_url.clone()]);
        assert_eq!(clients, &vec![m.client_url.clone()]);
    }

    // Simple format: "<id %x>, started, <name>, <peer urls>, <client urls>, <is learner>".
    let text = c.ctl_ok(&["member", "list"]);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort_by_key(|l| l.split(", ").nth(2).unwrap_or("").to_string());
    let expected: Vec<String> = members
        .iter()
        .map(|(name, id, peers, clients)| {
            format!(
                "{id:x}, started, {name}, {}, {}, false",
                peers.join(","),
                clients.join(",")
            )
        })
        .collect();
    assert_eq!(lines, expected);
});
