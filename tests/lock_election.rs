//! Lock and Election end to end against a real 3-member cluster (etcd v3lock / v3election
//! semantics, recipe of etcd's `clientv3/concurrency` Mutex and Election).
//!
//! Two kinds of client: `etcdctl lock` / `etcdctl elect`, which run the recipe client-side on
//! KV, Watch and Lease (a session lease kept alive, a key per waiter, wait for the deletion of
//! the next-lower key), and the `etcd-client` crate, whose `lock` / `campaign` / ... call the
//! Lock and Election gRPC services, which run the same recipe inside the server.

mod common;

use common::{Cluster, ClusterOpts, ServerKind, wait_until};
use etcd_client::{
    Client, ConnectOptions, Error, GetOptions, LeaderKey, LockOptions, ProclaimOptions,
    ResignOptions,
};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// A child process leading its own process group, its stdout lines on a channel. Dropping it
/// SIGKILLs the whole group (shell loops start etcdctl children) and reaps the child.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        Proc { child, lines }
    }

    /// The next stdout line, waiting up to [`WAIT`].
    #[track_caller]
    fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no line from pid {} within {WAIT:?}: {e}", self.child.id()))
    }

    /// True when the process has printed nothing (yet).
    fn silent(&self) -> bool {
        matches!(self.lines.try_recv(), Err(mpsc::TryRecvError::Empty))
    }

    /// Sends `signal` (a `kill -s` name) to this process only.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -s {signal} {pid}");
    }

    /// Waits up to `timeout` for the process to exit.
    #[track_caller]
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pid {} still running after {timeout:?}",
                self.child.id()
            );
            std::thread::sleep(Duration::from_millis(50)); // poll interval
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// `etcdctl` (API v3) against the given endpoints, without the caller's `ETCDCTL_*` settings.
fn etcdctl(endpoints: &[String], args: &[&str]) -> Command {
    let mut cmd = Command::new(common::etcdctl_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .args(args);
    cmd
}

/// Keys under `prefix`, in key order, through etcdctl.
fn keys(c: &Cluster, prefix: &str) -> Vec<String> {
    c.ctl_ok(&["get", prefix, "--prefix", "--keys-only"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Two shell loops, each on its own member, take `etcdctl lock` around a read–sleep–write of a
/// shared counter file. A `mkdir` marker detects any overlap; the counter detects lost
/// updates.
#[test]
fn etcdctl_lock_loops_on_two_members_never_overlap() {
    const ROUNDS: usize = 8;
    let c = Cluster::start(3, ClusterOpts::default());
    let work = c.dir().join("lock-work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("counter"), "0\n").unwrap();
    // The sleep widens the window in which an overlapping holder would be caught.
    let critical = "if mkdir \"$W/held\"; then c=$(cat \"$W/counter\"); sleep 0.05; \
                    echo $((c + 1)) > \"$W/counter\"; rmdir \"$W/held\"; \
                    else echo overlap >> \"$W/problems\"; fi";
    let script = format!(
        "for i in $(seq {ROUNDS}); do \
           \"$CTL\" --endpoints=\"$EP\" lock --ttl=5 counter-lock -- sh -c \"$CRIT\" \
             || echo \"etcdctl failed: $?\" >> \"$W/problems\"; \
         done"
    );
    let mut loops: Vec<Proc> = (0..2)
        .map(|member| {
            Proc::spawn(
                Command::new("sh")
                    .args(["-c", &script])
                    .env("CTL", common::etcdctl_bin())
                    .env("ETCDCTL_API", "3")
                    .env("EP", c.endpoint(member))
                    .env("W", &work)
                    .env("CRIT", critical),
            )
        })
        .collect();
    for l in &mut loops {
        assert!(l.wait(Duration::from_secs(180)).success());
    }
    let problems = std::fs::read_to_string(work.join("problems")).unwrap_or_default();
    assert_eq!(problems, "", "overlaps or failed etcdctl runs");
    let counter = std::fs::read_to_string(work.join("counter")).unwrap();
    assert_eq!(counter.trim(), (2 * ROUNDS).to_string());
    assert_eq!(keys(&c, "counter-lock/"), Vec::<String>::new());
}

/// A holder killed with SIGKILL never unlocks; once its session lease (`--ttl=2`) expires its
/// key goes, and the queued waiter gets the lock.
#[test]
fn lock_holder_whose_session_ends_lets_the_next_waiter_in() {
    let c = Cluster::start(3, ClusterOpts::default());
    let eps = c.endpoints();
    let mut holder = Proc::spawn(&mut etcdctl(&eps[..1], &["lock", "--ttl=2", "job"]));
    // Without a command, etcdctl prints the lock key (and its empty value) once it holds it.
    let held = holder.line();
    assert!(held.starts_with("job/"), "{held}");
    let waiter = Proc::spawn(&mut etcdctl(&eps[1..2], &["lock", "--ttl=2", "job"]));
    wait_until(WAIT, "the waiter's key is queued", || {
        keys(&c, "job/").len() == 2
    });
    assert!(waiter.silent(), "the waiter got the lock while it was held");
    holder.signal("KILL");
    holder.wait(WAIT);
    let got = waiter.line();
    assert!(got.starts_with("job/") && got != held, "{got} after {held}");
    assert_eq!(keys(&c, "job/"), [got]);
}

/// `etcdctl elect` leader p1, an observer (`elect -l`), a second candidate p2 queued; the
/// leader's etcdctl gets SIGTERM (it resigns), p2 leads and the observer sees the change.
#[test]
fn etcdctl_elect_failover_is_seen_by_the_observer() {
    let c = Cluster::start(3, ClusterOpts::default());
    let eps = c.endpoints();
    let mut first = Proc::spawn(&mut etcdctl(&eps[..1], &["elect", "svc", "p1"]));
    let k1 = first.line();
    assert!(k1.starts_with("svc/"), "{k1}");
    assert_eq!(first.line(), "p1");
    let observer = Proc::spawn(&mut etcdctl(&eps[2..], &["elect", "-l", "svc"]));
    assert_eq!(
        (observer.line(), observer.line()),
        (k1.clone(), "p1".into())
    );
    let second = Proc::spawn(&mut etcdctl(&eps[1..2], &["elect", "svc", "p2"]));
    wait_until(WAIT, "the second candidate's key is queued", || {
        keys(&c, "svc/").len() == 2
    });
    assert!(second.silent(), "p2 was elected while p1 led");
    first.signal("TERM");
    let status = first.wait(WAIT);
    assert!(status.success(), "leader etcdctl exit: {status}");
    let k2 = second.line();
    assert!(k2.starts_with("svc/") && k2 != k1, "{k2} after {k1}");
    assert_eq!(second.line(), "p2");
    assert_eq!(
        (observer.line(), observer.line()),
        (k2.clone(), "p2".into())
    );
    assert_eq!(keys(&c, "svc/"), [k2]);
}

// ---- the Lock and Election services through the etcd-client crate ----

/// The gRPC status of a failed call.
#[track_caller]
fn status<T: std::fmt::Debug>(r: Result<T, Error>) -> tonic::Status {
    match r {
        Err(Error::GRpcStatus(s)) => s,
        other => panic!("expected a gRPC error status, got {other:?}"),
    }
}

/// etcd passes errors of the Lock and Election services through as `Unknown` with the text
/// of the underlying error (the services are clients of the server's own KV API).
#[track_caller]
fn assert_unknown<T: std::fmt::Debug>(r: Result<T, Error>, message: &str) {
    let s = status(r);
    assert_eq!((s.code(), s.message()), (tonic::Code::Unknown, message));
}

async fn grant(client: &mut Client, ttl: i64) -> i64 {
    client.lease_grant(ttl, None).await.unwrap().id()
}

async fn prefix_keys(client: &mut Client, prefix: &str) -> Vec<String> {
    let r = client
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .unwrap();
    r.kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_string())
        .collect()
}

/// Polls the keys under `prefix` until they equal `want`.
async fn await_keys(client: &mut Client, prefix: &str, want: &[String]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = prefix_keys(client, prefix).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "keys under {prefix}: {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
}

/// Three clients, one per member, each with its own lease, take the Lock service's lock
/// around a read–sleep–write of a counter key; no two ever hold it at once and no update is
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_service_serializes_holders_on_every_member() {
    const ROUNDS: i64 = 5;
    let c = Cluster::start(3, ClusterOpts::default());
    let held = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for member in 0..3 {
        let mut client = c.member_client(member).await;
        let held = held.clone();
        tasks.push(tokio::spawn(async move {
            let lease = grant(&mut client, 60).await;
            for _ in 0..ROUNDS {
                let opts = LockOptions::new().with_lease(lease);
                let lock = client.lock("counter", Some(opts)).await.unwrap();
                assert_eq!(lock.key(), format!("counter/{lease:x}").as_bytes());
                assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                let r = client.get("counter-value", None).await.unwrap();
                let n: i64 = r
                    .kvs()
                    .first()
                    .map_or(0, |kv| kv.value_str().unwrap().parse().unwrap());
                // Widens the window in which a second holder would be caught.
                tokio::time::sleep(Duration::from_millis(20)).await;
                client
                    .put("counter-value", (n + 1).to_string(), None)
                    .await
                    .unwrap();
                held.store(false, Ordering::SeqCst);
                client.unlock(lock.key()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("lock rounds finish")
            .unwrap();
    }
    let mut client = c.client().await;
    let r = client.get("counter-value", None).await.unwrap();
    assert_eq!(r.kvs()[0].value_str().unwrap(), (3 * ROUNDS).to_string());
    assert_eq!(
        prefix_keys(&mut client, "counter/").await,
        Vec::<String>::new()
    );
}

/// A waiter queues behind the holder; revoking the holder's lease hands it the lock. A
/// second waiter whose client goes away while it waits has its key removed by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_waiters_follow_lease_revocation_and_cancellation() {
    let c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.member_client(0).await;
    let (la, lb, lc) = (
        grant(&mut client, 60).await,
        grant(&mut client, 60).await,
        grant(&mut client, 60).await,
    );
    let (ka, kb, kc) = (
        format!("job/{la:x}"),
        format!("job/{lb:x}"),
        format!("job/{lc:x}"),
    );
    let a = client
        .lock("job", Some(LockOptions::new().with_lease(la)))
        .await
        .unwrap();
    assert_eq!(a.key(), ka.as_bytes());
    // Locking again with the same lease is the same acquisition: same key, no wait.
    let again = client
        .lock("job", Some(LockOptions::new().with_lease(la)))
        .await
        .unwrap();
    assert_eq!(again.key(), ka.as_bytes());

    let mut b_client = c.member_client(1).await;
    let b = tokio::spawn(async move {
        b_client
            .lock("job", Some(LockOptions::new().with_lease(lb)))
            .await
    });
    await_keys(&mut client, "job/", &[ka.clone(), kb.clone()]).await;
    assert!(
        !b.is_finished(),
        "the waiter got the lock while it was held"
    );
    let revoked = client.lease_revoke(la).await.unwrap();
    let b = tokio::time::timeout(WAIT, b)
        .await
        .expect("waiter wakes")
        .unwrap();
    let b = b.unwrap();
    assert_eq!(b.key(), kb.as_bytes());
    assert!(b.header().unwrap().revision() >= revoked.header().unwrap().revision());

    // A waiter whose client goes away: the server deletes its key (etcd unlocks a
    // cancelled waiter) and stops waiting.
    let mut c_client = c.member_client(2).await;
    let waiting = tokio::spawn(async move {
        c_client
            .lock("job", Some(LockOptions::new().with_lease(lc)))
            .await
    });
    await_keys(&mut client, "job/", &[kb.clone(), kc.clone()]).await;
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    await_keys(&mut client, "job/", std::slice::from_ref(&kb)).await;
    client.unlock(kb.as_str()).await.unwrap();
    await_keys(&mut client, "job/", &[]).await;
}

/// Unlock of a missing key succeeds without a write; bad requests get etcd's errors; a waiter
/// whose own key vanished while it waited is refused once the holder unlocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_errors_and_expired_waiter() {
    let c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.member_client(0).await;
    let before = client
        .get("x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let u = client.unlock("no-such-lock/1").await.unwrap();
    assert_eq!(u.header().unwrap().revision(), before);
    assert_unknown(client.unlock("").await, "etcdserver: key is not provided");
    assert_unknown(
        client
            .lock("job", Some(LockOptions::new().with_lease(0x7e57)))
            .await,
        "etcdserver: requested lease not found",
    );

    // No lease named: the server grants one of 60 s for the waiter's key (etcd's session
    // default) and nobody keeps it alive.
    let auto = client.lock("auto", None).await.unwrap();
    let hex = auto.key().strip_prefix(b"auto/").expect("key under auto/");
    let id = i64::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
    let ttl = client.lease_time_to_live(id, None).await.unwrap();
    assert_eq!(ttl.granted_ttl(), 60);
    client.unlock(auto.key()).await.unwrap();

    let (la, lb) = (grant(&mut client, 60).await, grant(&mut client, 60).await);
    let a = client
        .lock("job", Some(LockOptions::new().with_lease(la)))
        .await
        .unwrap();
    let mut b_client = c.member_client(1).await;
    let b = tokio::spawn(async move {
        b_client
            .lock("job", Some(LockOptions::new().with_lease(lb)))
            .await
    });
    let kb = format!("job/{lb:x}");
    await_keys(&mut client, "job/", &[format!("job/{la:x}"), kb.clone()]).await;
    client.lease_revoke(lb).await.unwrap(); // the waiter's key goes with its lease
    await_keys(&mut client, "job/", &[format!("job/{la:x}")]).await;
    assert!(!b.is_finished());
    client.unlock(a.key()).await.unwrap();
    let b = tokio::time::timeout(WAIT, b)
        .await
        .expect("waiter wakes")
        .unwrap();
    match ServerKind::under_test() {
        // etcd 3.5's Mutex re-checks its own key after the wait; ferrokv does too.
        ServerKind::Ferrokv => assert_unknown(b, "mutex: session is expired"),
        // etcd 3.4.23's Mutex does not: it reports a lock on a key that no longer exists.
        ServerKind::Etcd => assert_eq!(b.unwrap().key(), kb.as_bytes()),
    }
    assert_eq!(prefix_keys(&mut client, "job/").await, Vec::<String>::new());
}

/// Aborts a task when dropped, so a failed assertion does not leave it running.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The next `(key, value)` an observer reported.
async fn next_leader(
    observed: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) -> (String, String) {
    tokio::time::timeout(WAIT, observed.recv())
        .await
        .expect("an observed leader within the deadline")
        .expect("the observer is running")
}

async fn leader_value(client: &mut Client, name: &str) -> String {
    let r = client.leader(name).await.unwrap();
    r.kv().unwrap().value_str().unwrap().to_string()
}

/// Campaign, Leader, Proclaim, Observe and Resign, with a second candidate queued behind the
/// first; and etcd's errors for a missing leader field, a stale leader key and no leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn election_campaign_proclaim_observe_resign() {
    let c = Cluster::start(3, ClusterOpts::default());
    let mut client = c.member_client(0).await;
    assert_unknown(client.leader("svc").await, "election: no leader");
    assert_unknown(
        client.campaign("svc", "v", 0x7e57).await,
        "etcdserver: requested lease not found",
    );
    assert_unknown(
        client.proclaim("v", None).await,
        "\"leader\" field must be provided",
    );
    assert_unknown(
        client.resign(None).await,
        "\"leader\" field must be provided",
    );

    // etcd sends Observe's response headers only with the first leader, so the observer's
    // client has no request timeout, and the observer runs in its own task.
    let mut observer = Client::connect(
        [c.endpoint(2)],
        Some(ConnectOptions::new().with_connect_timeout(Duration::from_secs(2))),
    )
    .await
    .unwrap();
    let (seen_tx, mut observed) = tokio::sync::mpsc::unbounded_channel();
    let _observing = AbortOnDrop(tokio::spawn(async move {
        let mut stream = observer.observe("svc").await.unwrap();
        while let Some(r) = stream.message().await.unwrap() {
            let kv = r.kv().unwrap();
            let seen = (
                kv.key_str().unwrap().to_string(),
                kv.value_str().unwrap().to_string(),
            );
            if seen_tx.send(seen).is_err() {
                return;
            }
        }
    }));
    let (l1, l2) = (grant(&mut client, 60).await, grant(&mut client, 60).await);
    let (k1, k2) = (format!("svc/{l1:x}"), format!("svc/{l2:x}"));
    let won = client.campaign("svc", "v1", l1).await.unwrap();
    let leader: LeaderKey = won.leader().unwrap().clone();
    assert_eq!(
        (leader.name(), leader.key(), leader.lease()),
        (&b"svc"[..], k1.as_bytes(), l1)
    );
    assert_eq!(leader.rev(), won.header().unwrap().revision());
    assert_eq!(next_leader(&mut observed).await, (k1.clone(), "v1".into()));
    assert_eq!(leader_value(&mut client, "svc").await, "v1");

    let mut second = c.member_client(1).await;
    let candidate = tokio::spawn(async move { second.campaign("svc", "v2", l2).await });
    await_keys(&mut client, "svc/", &[k1.clone(), k2.clone()]).await;
    assert!(!candidate.is_finished(), "v2 was elected while v1 led");

    let with_leader = || ProclaimOptions::new().with_leader(leader.clone());
    client.proclaim("v1b", Some(with_leader())).await.unwrap();
    assert_eq!(next_leader(&mut observed).await, (k1.clone(), "v1b".into()));
    assert_eq!(leader_value(&mut client, "svc").await, "v1b");
    let stale = leader.clone().with_rev(leader.rev() + 1000);
    assert_unknown(
        client
            .proclaim("x", Some(ProclaimOptions::new().with_leader(stale.clone())))
            .await,
        "election: not leader",
    );
    // Resigning with a stale leader key changes nothing.
    client
        .resign(Some(ResignOptions::new().with_leader(stale)))
        .await
        .unwrap();
    assert_eq!(leader_value(&mut client, "svc").await, "v1b");

    client
        .resign(Some(ResignOptions::new().with_leader(leader.clone())))
        .await
        .unwrap();
    let won2 = tokio::time::timeout(WAIT, candidate)
        .await
        .expect("the second candidate is elected")
        .unwrap()
        .unwrap();
    assert_eq!(won2.leader().unwrap().key(), k2.as_bytes());
    assert_eq!(next_leader(&mut observed).await, (k2.clone(), "v2".into()));
    assert_eq!(leader_value(&mut client, "svc").await, "v2");

    // Campaigning again with the leader's own lease and a new value proclaims it.
    client.campaign("svc", "v2b", l2).await.unwrap();
    assert_eq!(next_leader(&mut observed).await, (k2.clone(), "v2b".into()));
    client.lease_revoke(l2).await.unwrap();
    assert_unknown(client.leader("svc").await, "election: no leader");
}
