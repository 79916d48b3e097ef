//! The `etcd-client` crate (what Rust applications use) against the server: KV put/get/delete
//! and txn with compares, prev_kv, revisions, sorted ranges, count_only and keys_only
//! (etcd KV service semantics).

mod common;

use common::{Cluster, ClusterOpts};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse,
};

async fn rev(client: &mut Client) -> i64 {
    client
        .get("__rev_probe__", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision()
}

fn keys(kvs: &[etcd_client::KeyValue]) -> Vec<String> {
    kvs.iter()
        .map(|kv| kv.key_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_delete_with_revisions_and_prev_kv() {
    let c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.client().await;
    assert_eq!(rev(&mut client).await, 1);

    let p1 = client.put("a", "1", None).await.unwrap();
    let r1 = p1.header().unwrap().revision();
    assert_eq!(r1, 2);
    assert!(p1.prev_key().is_none());
    // prev_kv on a put returns the overwritten pair.
    let p2 = client
        .put("a", "2", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    let r2 = p2.header().unwrap().revision();
    assert_eq!(r2, r1 + 1);
    let prev = p2.prev_key().expect("prev kv");
    assert_eq!((prev.key(), prev.value()), (&b"a"[..], &b"1"[..]));
    assert_eq!(
        (prev.create_revision(), prev.mod_revision(), prev.version()),
        (r1, r1, 1)
    );

    let g = client.get("a", None).await.unwrap();
    assert_eq!(g.header().unwrap().revision(), r2);
    assert_eq!(g.count(), 1);
    assert!(!g.more());
    let kv = &g.kvs()[0];
    assert_eq!(kv.value(), b"2");
    assert_eq!(
        (kv.create_revision(), kv.mod_revision(), kv.version()),
        (r1, r2, 2)
    );
    assert_eq!(kv.lease(), 0);

    // Reads at a past revision.
    let old = client
        .get("a", Some(GetOptions::new().with_revision(r1)))
        .await
        .unwrap();
    assert_eq!(old.kvs()[0].value(), b"1");
    assert_eq!(old.header().unwrap().revision(), r2);

    // Serializable read from each member eventually sees the write (followers catch up).
    for i in 0..c.len() {
        let mut m = c.member_client(i).await;
        common::wait_until(
            std::time::Duration::from_secs(10),
            "member catches up",
            || {
                let fut = m.get("a", Some(GetOptions::new().with_serializable()));
                let r =
                    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(fut))
                        .unwrap();
                r.kvs().first().map(|kv| kv.value()) == Some(&b"2"[..])
            },
        );
    }

    // Delete with prev_kv.
    client.put("b", "x", None).await.unwrap();
    let d = client
        .delete(
            "a",
            Some(DeleteOptions::new().with_range("c").with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(d.deleted(), 2);
    assert_eq!(d.header().unwrap().revision(), r2 + 2);
    let prev: Vec<(&[u8], &[u8])> = d
        .prev_kvs()
        .iter()
        .map(|kv| (kv.key(), kv.value()))
        .collect();
    assert_eq!(prev, vec![(&b"a"[..], &b"2"[..]), (&b"b"[..], &b"x"[..])]);
    // Deleting nothing: 0 deleted, no new revision.
    let d = client.delete("a", None).await.unwrap();
    assert_eq!(d.deleted(), 0);
    assert_eq!(d.header().unwrap().revision(), r2 + 2);
    assert!(client.get("a", None).await.unwrap().kvs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_sorting_limits_count_and_keys_only() {
    let c = Cluster::start(1, ClusterOpts::default());
    let mut client = c.client().await;
    let data = [
        ("p/c", "1"),
        ("p/a", "3"),
        ("p/b", "2"),
        ("q", "0"),
        ("o", "9"),
    ];
    let mut revs = std::collections::BTreeMap::new();
    for (k, v) in data {
        let r = client.put(k, v, None).await.unwrap();
        revs.insert(k, r.header().unwrap().revision());
    }

    let g = client
        .get("p/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/a", "p/b", "p/c"]);
    assert_eq!(g.count(), 3);

    let g = client
        .get("p/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/a", "p/b"]);
    assert!(g.more());
    assert_eq!(g.count(), 3);

    let g = client
        .get(
            "p/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Descend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/a", "p/b", "p/c"]);
    let g = client
        .get(
            "p/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Mod, SortOrder::Ascend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/c", "p/a", "p/b"]);
    let g = client
        .get(
            "p/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend)
                    .with_limit(1),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/c"]);
    assert!(g.more());

    // All keys, from-key, explicit range.
    let g = client
        .get("", Some(GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["o", "p/a", "p/b", "p/c", "q"]);
    let g = client
        .get("p/b", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/b", "p/c", "q"]);
    let g = client
        .get("o", Some(GetOptions::new().with_range("p/b")))
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["o", "p/a"]);

    // count_only: the count and no kvs.
    let g = client
        .get(
            "",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(g.count(), 5);
    assert!(g.kvs().is_empty());

    // keys_only: keys and revisions, no values.
    let g = client
        .get("p/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/a", "p/b", "p/c"]);
    for kv in g.kvs() {
        assert!(kv.value().is_empty());
        let k = kv.key_str().unwrap();
        assert_eq!(kv.mod_revision(), revs[k]);
    }

    // Revision filters.
    let g = client
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_min_mod_revision(revs["p/b"]),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["o", "p/b", "q"]);
    // A range at a past revision.
    let g = client
        .get(
            "",
            Some(GetOptions::new().with_all_keys().with_revision(revs["p/a"])),
        )
        .await
        .unwrap();
    assert_eq!(keys(g.kvs()), ["p/a", "p/c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_compares_and_branches() {
    let c = Cluster::start(1, ClusterOpts::default());
    let mut client = c.client().await;
    let r1 = client
        .put("x", "10", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();

    // All compares hold: success ops, sharing one revision.
    let t = Txn::new()
        .when([
            Compare::value("x", CompareOp::Equal, "10"),
            Compare::version("x", CompareOp::Equal, 1),
            Compare::mod_revision("x", CompareOp::Equal, r1),
            Compare::create_revision("x", CompareOp::Less, r1 + 1),
            Compare::value("x", CompareOp::Greater, "09"),
            Compare::version("nope", CompareOp::Equal, 0),
        ])
        .and_then([
            TxnOp::put("y", "1", Some(PutOptions::new().with_prev_key())),
            TxnOp::put("x", "11", Some(PutOptions::new().with_prev_key())),
            TxnOp::get("x", None),
        ])
        .or_else([TxnOp::put("z", "1", None)]);
    let r = client.txn(t).await.unwrap();
    assert!(r.succeeded());
    let r2 = r.header().unwrap().revision();
    assert_eq!(r2, r1 + 1);
    let resps = r.op_responses();
    assert_eq!(resps.len(), 3);
    match &resps[0] {
        TxnOpResponse::Put(p) => assert!(p.prev_key().is_none()),
        other => panic!("{other:?}"),
    }
    match &resps[1] {
        TxnOpResponse::Put(p) => assert_eq!(p.prev_key().unwrap().value(), b"10"),
        other => panic!("{other:?}"),
    }
    match &resps[2] {
        // A get inside the txn sees the txn's own earlier put.
        TxnOpResponse::Get(g) => {
            assert_eq!(g.kvs()[0].value(), b"11");
            assert_eq!(g.kvs()[0].mod_revision(), r2);
        }
        other => panic!("{other:?}"),
    }
    let y = client.get("y", None).await.unwrap();
    assert_eq!(y.kvs()[0].mod_revision(), r2);
    assert!(client.get("z", None).await.unwrap().kvs().is_empty());

    // One compare fails: failure ops run, including a nested txn and a delete.
    let t = Txn::new()
        .when([
            Compare::value("x", CompareOp::Equal, "11"),
            Compare::value("x", CompareOp::NotEqual, "11"),
        ])
        .and_then([TxnOp::put("never", "1", None)])
        .or_else([
            TxnOp::delete("y", Some(DeleteOptions::new().with_prev_key())),
            TxnOp::txn(Txn::new().and_then([TxnOp::put("nested", "n", None)])),
        ]);
    let r = client.txn(t).await.unwrap();
    assert!(!r.succeeded());
    assert_eq!(r.header().unwrap().revision(), r2 + 1);
    match &r.op_responses()[0] {
        TxnOpResponse::Delete(d) => {
            assert_eq!(d.deleted(), 1);
            assert_eq!(d.prev_kvs()[0].value(), b"1");
        }
        other => panic!("{other:?}"),
    }
    match &r.op_responses()[1] {
        TxnOpResponse::Txn(t) => assert!(t.succeeded()),
        other => panic!("{other:?}"),
    }
    assert!(client.get("never", None).await.unwrap().kvs().is_empty());
    assert_eq!(
        client.get("nested", None).await.unwrap().kvs()[0].mod_revision(),
        r2 + 1
    );

    // A compare over a range: every key in [k, k\xff) must hold.
    client.put("k1", "a", None).await.unwrap();
    client.put("k2", "b", None).await.unwrap();
    let t = Txn::new()
        .when([Compare::value("k", CompareOp::Greater, "").with_prefix()])
        .and_then([TxnOp::get(
            "k",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )]);
    let r = client.txn(t).await.unwrap();
    assert!(r.succeeded());
    match &r.op_responses()[0] {
        TxnOpResponse::Get(g) => assert_eq!(g.count(), 2),
        other => panic!("{other:?}"),
    }
    let t = Txn::new().when([Compare::value("k", CompareOp::Equal, "a").with_prefix()]);
    assert!(!client.txn(t).await.unwrap().succeeded());

    // An empty txn succeeds and writes nothing.
    let before = rev(&mut client).await;
    let r = client.txn(Txn::new()).await.unwrap();
    assert!(r.succeeded());
    assert_eq!(r.header().unwrap().revision(), before);
}
