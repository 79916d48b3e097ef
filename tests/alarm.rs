//! `Maintenance.Alarm` (issue 10): ACTIVATE, GET and DEACTIVATE through the log, and what an
//! active alarm does, as in etcd 3.4: with NOSPACE, puts, lease grants and transactions that
//! put fail with "etcdserver: mvcc: database space exceeded" (ResourceExhausted) on every
//! member while reads and deletes go on, `/health` says false, `etcdctl alarm list` shows it;
//! `etcdctl alarm disarm` clears it and writes work again. Also against etcd
//! (`FERROKV_TEST_SERVER=etcd`).

mod common;

use std::time::Duration;

use common::{Cluster, ClusterOpts, wait_until};
use etcd_client::{AlarmAction, AlarmOptions, AlarmType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nospace_alarm_refuses_writes_until_disarmed() {
    let c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.client().await;
    client.put("before", "1", None).await.unwrap();
    let member_id = client.status().await.unwrap().header().unwrap().member_id();

    let mut options = AlarmOptions::new();
    options.with_member(member_id);
    let raised = client
        .alarm(AlarmAction::Activate, AlarmType::Nospace, Some(options))
        .await
        .expect("ACTIVATE");
    let alarms: Vec<(u64, i32)> = raised
        .alarms()
        .iter()
        .map(|a| (a.member_id(), a.alarm() as i32))
        .collect();
    assert_eq!(alarms, [(member_id, AlarmType::Nospace as i32)]);

    // Every member refuses writes that add data (the alarm is applied through the log).
    for i in 0..3 {
        let mut m = c.member_client(i).await;
        let err = m.put("k", "v", None).await.expect_err("put under NOSPACE");
        let msg = format!("{err}");
        assert!(
            msg.contains("etcdserver: mvcc: database space exceeded"),
            "member {i}: {msg}"
        );
        assert!(m.lease_grant(60, None).await.is_err(), "member {i}");
    }
    // Reads and deletes go on.
    let got = client.get("before", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"1");
    assert_eq!(client.delete("before", None).await.unwrap().deleted(), 1);

    let list = blocking(|| c.ctl_ok(&["alarm", "list"]));
    assert_eq!(list, format!("memberID:{member_id} alarm:NOSPACE \n"));
    let health = blocking(|| common::http_get(&c.endpoint(0), "/health", WAIT));
    assert_eq!(health.0, 503, "{}", String::from_utf8_lossy(&health.2));

    let disarmed = blocking(|| c.ctl_ok(&["alarm", "disarm"]));
    assert_eq!(disarmed, format!("memberID:{member_id} alarm:NOSPACE \n"));
    assert_eq!(blocking(|| c.ctl_ok(&["alarm", "list"])), "");
    wait_until(WAIT, "writes accepted again", || {
        blocking(|| c.etcdctl(&["put", "k", "v"]).status.success())
    });
    let health = blocking(|| common::http_get(&c.endpoint(0), "/health", WAIT));
    assert_eq!(health.0, 200);
}

const WAIT: Duration = Duration::from_secs(10);

/// Runs a blocking harness call (etcdctl, plain HTTP) from async code.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
