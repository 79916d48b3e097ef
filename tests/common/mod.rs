//! End-to-end test harness: starts real server processes (ferrokv, or etcd 3.4 as the reference)
//! on 127.0.0.1 and drives them with `etcdctl` and the `etcd-client` crate.
//!
//! The server under test is chosen by the environment variable `FERROKV_TEST_SERVER`:
//! `etcd` runs `/usr/bin/etcd` (override the path with `FERROKV_TEST_ETCD_BIN`); anything else,
//! or unset, runs this crate's `ferrokv` binary. Both take etcd's server flags, so every test is
//! written once and runs against either.
//!
//! Processes are owned by a [`Cluster`]; its `Drop` SIGKILLs and reaps every child it started,
//! also when a test panics, and then prints the tail of every member's log to help debugging.
//! Ports are picked at random below the kernel's ephemeral range and reserved with a lock file
//! (see [`PortReservation`]) so tests can run in parallel under `cargo nextest`.
#![allow(dead_code)] // each test binary uses a different subset of the harness

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Path of the etcd 3.4 binary used as the reference implementation.
pub const ETCD_BIN_DEFAULT: &str = "/usr/bin/etcd";
/// Path of etcdctl 3.4 (override with `FERROKV_TEST_ETCDCTL_BIN`).
pub const ETCDCTL_BIN_DEFAULT: &str = "/usr/bin/etcdctl";

/// Which server implementation a cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// This crate's `ferrokv` binary.
    Ferrokv,
    /// Real etcd (3.4), the compatibility reference.
    Etcd,
}

impl ServerKind {
    /// The server under test, from `FERROKV_TEST_SERVER` (`etcd` → [`ServerKind::Etcd`],
    /// anything else → [`ServerKind::Ferrokv`]).
    pub fn under_test() -> ServerKind {
        match std::env::var("FERROKV_TEST_SERVER").as_deref() {
            Ok("etcd") => ServerKind::Etcd,
            _ => ServerKind::Ferrokv,
        }
    }

    /// Path of the binary for this kind.
    pub fn binary(self) -> PathBuf {
        match self {
            ServerKind::Ferrokv => PathBuf::from(env!("CARGO_BIN_EXE_ferrokv")),
            ServerKind::Etcd => etcd_bin(),
        }
    }
}

/// Path of the reference etcd binary (`FERROKV_TEST_ETCD_BIN` or `/usr/bin/etcd`).
pub fn etcd_bin() -> PathBuf {
    std::env::var_os("FERROKV_TEST_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ETCD_BIN_DEFAULT))
}

/// Path of etcdctl (`FERROKV_TEST_ETCDCTL_BIN` or `/usr/bin/etcdctl`).
pub fn etcdctl_bin() -> PathBuf {
    std::env::var_os("FERROKV_TEST_ETCDCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ETCDCTL_BIN_DEFAULT))
}

/// Server options; every field maps to one etcd server flag.
#[derive(Clone, Debug)]
pub struct ClusterOpts {
    /// `--heartbeat-interval`, in ms.
    pub heartbeat_ms: u64,
    /// `--election-timeout`, in ms.
    pub election_ms: u64,
    /// `--max-request-bytes`, in bytes (None: server default, 1.5 MiB).
    pub max_request_bytes: Option<u64>,
    /// `--max-txn-ops` (None: server default, 128).
    pub max_txn_ops: Option<u64>,
    /// `--log-level`.
    pub log_level: String,
    /// How long `start`/`restart` wait for the members to be healthy.
    pub ready_timeout: Duration,
    /// More server flags, appended to every member's command line.
    pub extra_args: Vec<String>,
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            heartbeat_ms: 100,
            election_ms: 1000,
            max_request_bytes: None,
            max_txn_ops: None,
            log_level: "info".to_string(),
            ready_timeout: Duration::from_secs(30),
            extra_args: Vec::new(),
        }
    }
}

const PORT_LOW: u16 = 20000;
/// Exclusive; the Linux ephemeral range starts at 32768, so no outgoing connection of another
/// process can take a port we picked between checking it and the server binding it.
const PORT_HIGH: u16 = 32000;

/// A TCP port on 127.0.0.1 reserved for this process with a lock file in the system temp dir
/// (`ferrokv-test-ports/<port>`), removed on drop. Other harness users (parallel nextest
/// processes) skip reserved ports; anyone else is detected by a bind check.
#[derive(Debug)]
pub struct PortReservation {
    /// The reserved port.
    pub port: u16,
    lock_path: PathBuf,
}

impl PortReservation {
    /// Reserves a free port in [20000, 32000).
    pub fn new() -> PortReservation {
        let dir = std::env::temp_dir().join("ferrokv-test-ports");
        std::fs::create_dir_all(&dir).expect("create port lock dir");
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            ^ ((std::process::id() as u64) << 20);
        let span = (PORT_HIGH - PORT_LOW) as u64;
        for attempt in 0..2000u64 {
            // A cheap mixing of (seed, attempt); uniformity is all we need.
            let x = (seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
                .wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let port = PORT_LOW + ((x >> 29) % span) as u16;
            let lock_path = dir.join(port.to_string());
            if let Ok(meta) = std::fs::metadata(&lock_path) {
                // A lock left by a process killed before its Drop ran goes stale after 1 h.
                let stale = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(3600));
                if !stale {
                    continue;
                }
                let _ = std::fs::remove_file(&lock_path);
            }
            if OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock_path)
                .is_err()
            {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return PortReservation { port, lock_path };
            }
            let _ = std::fs::remove_file(&lock_path);
        }
        panic!("no free port found in [{PORT_LOW}, {PORT_HIGH})");
    }
}

impl Drop for PortReservation {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// One member of a [`Cluster`]: its fixed identity and, while running, its process.
#[derive(Debug)]
pub struct Member {
    /// `--name`, `m0`, `m1`, ...
    pub name: String,
    /// Client URL, `http://127.0.0.1:<port>`.
    pub client_url: String,
    /// Peer URL, `http://127.0.0.1:<port>`.
    pub peer_url: String,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// File receiving the member's stdout and stderr (appended across restarts).
    pub log_path: PathBuf,
    ports: [PortReservation; 2],
    child: Option<Child>,
}

/// A running cluster of n server processes. Dropping it SIGKILLs and reaps all of them.
pub struct Cluster {
    /// Implementation the members run.
    pub kind: ServerKind,
    /// Binary path.
    pub binary: PathBuf,
    /// Options the members were started with.
    pub opts: ClusterOpts,
    /// Members in start order; index i is member `m{i}`.
    pub members: Vec<Member>,
    token: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts an n-member cluster of the server under test ([`ServerKind::under_test`]) and waits
    /// until every member is healthy. Panics (after cleaning up) if it does not become ready
    /// within `opts.ready_timeout`.
    pub fn start(n: usize, opts: ClusterOpts) -> Cluster {
        Cluster::start_kind(ServerKind::under_test(), n, opts)
    }

    /// Like [`Cluster::start`] for an explicit implementation.
    pub fn start_kind(kind: ServerKind, n: usize, opts: ClusterOpts) -> Cluster {
        let binary = kind.binary();
        assert!(
            binary.exists(),
            "server binary {} does not exist (kind {kind:?}); install etcd (apt-get install \
             etcd-server etcd-client) or build ferrokv",
            binary.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("ferrokv-e2e-")
            .tempdir()
            .expect("create temp dir");
        let members = (0..n)
            .map(|i| {
                let client = PortReservation::new();
                let peer = PortReservation::new();
                Member {
                    name: format!("m{i}"),
                    client_url: format!("http://127.0.0.1:{}", client.port),
                    peer_url: format!("http://127.0.0.1:{}", peer.port),
                    data_dir: dir.path().join(format!("m{i}.data")),
                    log_path: dir.path().join(format!("m{i}.log")),
                    ports: [client, peer],
                    child: None,
                }
            })
            .collect();
        let token = format!(
            "ferrokv-e2e-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let mut cluster = Cluster {
            kind,
            binary,
            opts,
            members,
            token,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster.wait_ready();
        cluster
    }

    /// The temp dir holding data dirs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `--initial-cluster` value: `m0=http://127.0.0.1:p0,m1=...`.
    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The exact flags member i is started with (the same on every start: etcd ignores the
    /// `--initial-cluster*` flags once the data dir exists).
    pub fn server_args(&self, i: usize) -> Vec<String> {
        let m = &self.members[i];
        let mut args = vec![
            format!("--name={}", m.name),
            format!("--data-dir={}", m.data_dir.display()),
            format!("--listen-client-urls={}", m.client_url),
            format!("--advertise-client-urls={}", m.client_url),
            format!("--listen-peer-urls={}", m.peer_url),
            format!("--initial-advertise-peer-urls={}", m.peer_url),
            format!("--initial-cluster={}", self.initial_cluster()),
            "--initial-cluster-state=new".to_string(),
            format!("--initial-cluster-token={}", self.token),
            format!("--heartbeat-interval={}", self.opts.heartbeat_ms),
            format!("--election-timeout={}", self.opts.election_ms),
            format!("--log-level={}", self.opts.log_level),
        ];
        if let Some(b) = self.opts.max_request_bytes {
            args.push(format!("--max-request-bytes={b}"));
        }
        if let Some(n) = self.opts.max_txn_ops {
            args.push(format!("--max-txn-ops={n}"));
        }
        args.extend(self.opts.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self, i: usize) {
        self.spawn_with_env(i, &[]);
    }

    fn spawn_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        assert!(self.members[i].child.is_none(), "member {i} is running");
        let args = self.server_args(i);
        let m = &mut self.members[i];
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log_path)
            .expect("open member log");
        writeln!(
            log,
            "===== harness: starting {} {}",
            self.binary.display(),
            args.join(" ")
        )
        .unwrap();
        let log_err = log.try_clone().unwrap();
        let mut cmd = Command::new(&self.binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        // ETCD_* variables would override nothing given on the command line, but could add
        // flags we did not choose.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        m.child = Some(child);
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Client URL of member i.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].client_url.clone()
    }

    /// Client URLs of all members (running or not), in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Indices of members whose process is running (started and not killed).
    pub fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect()
    }

    /// Client URLs of running members.
    pub fn running_endpoints(&self) -> Vec<String> {
        self.running()
            .into_iter()
            .map(|i| self.endpoint(i))
            .collect()
    }

    /// Waits until every running member answers `etcdctl endpoint health` (a linearizable
    /// Range, so it also needs an elected leader), panicking after `opts.ready_timeout`.
    /// Also fails fast when a member process exits.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + self.opts.ready_timeout;
        for i in self.running() {
            loop {
                self.assert_alive(i);
                let out = self.etcdctl_on(&[i], &["endpoint", "health", "--command-timeout=2s"]);
                if out.status.success() {
                    break;
                }
                if Instant::now() > deadline {
                    panic!(
                        "member {i} not healthy after {:?}: {}",
                        self.opts.ready_timeout,
                        describe(&out)
                    );
                }
                std::thread::sleep(Duration::from_millis(100)); // poll interval
            }
        }
    }

    /// Panics if member i's process has exited (it should be running).
    #[track_caller]
    pub fn assert_alive(&mut self, i: usize) {
        let m = &mut self.members[i];
        if let Some(child) = m.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            m.child = None;
            panic!("member {} exited unexpectedly: {status}", m.name);
        }
    }

    /// Index of the member that running members agree is leader, from
    /// `etcdctl endpoint status -w json` (a member is leader when its `member_id` equals the
    /// `leader` it reports). None if no running member reports itself leader.
    pub fn leader(&self) -> Option<usize> {
        self.running().into_iter().find(|&i| {
            self.status(i)
                .is_some_and(|s| s.leader != 0 && s.leader == s.member_id)
        })
    }

    /// Polls [`Cluster::leader`] until some member is leader, up to `timeout`.
    #[track_caller]
    pub fn wait_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader() {
                return l;
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}");
            std::thread::sleep(Duration::from_millis(50)); // poll interval
        }
    }

    /// Maintenance.Status of member i through etcdctl, or None if it did not answer.
    pub fn status(&self, i: usize) -> Option<MemberStatus> {
        let out = self.etcdctl_on(
            &[i],
            &["endpoint", "status", "-w", "json", "--command-timeout=2s"],
        );
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let s = &v[0]["Status"];
        Some(MemberStatus {
            member_id: s["header"]["member_id"].as_u64()?,
            leader: s["leader"].as_u64().unwrap_or(0),
            revision: s["header"]["revision"].as_i64().unwrap_or(0),
            raft_term: s["raftTerm"].as_u64().unwrap_or(0),
            raft_index: s["raftIndex"].as_u64().unwrap_or(0),
        })
    }

    /// Process id of member i while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// SIGKILLs member i and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILLs and reaps every member.
    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Starts killed member i again with the same flags and data dir (it must not be running).
    /// Does not wait; call [`Cluster::wait_ready`].
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
    }

    /// [`Cluster::restart`] with extra environment variables for this start only (e.g. an
    /// armed crash point, `FERROKV_CRASH_AT`).
    pub fn restart_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        self.spawn_with_env(i, env);
    }

    /// Waits up to `timeout` for member i's process to exit by itself, reaps it and returns
    /// its exit status; `None` if it still runs (it keeps running).
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let child = self.members[i].child.as_mut()?;
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.members[i].child = None;
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs etcdctl (API v3) against all members' endpoints.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        self.etcdctl_with(&self.endpoints(), args, None)
    }

    /// Runs etcdctl against the given members only.
    pub fn etcdctl_on(&self, members: &[usize], args: &[&str]) -> Output {
        let eps: Vec<String> = members.iter().map(|&i| self.endpoint(i)).collect();
        self.etcdctl_with(&eps, args, None)
    }

    /// Runs etcdctl against all endpoints with `stdin` as its standard input.
    pub fn etcdctl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.etcdctl_with(&self.endpoints(), args, Some(stdin))
    }

    /// Runs etcdctl against `endpoints`, feeding `stdin` if given.
    pub fn etcdctl_with(&self, endpoints: &[String], args: &[&str], stdin: Option<&str>) -> Output {
        run_etcdctl(endpoints, args, stdin)
    }

    /// Runs etcdctl and asserts success, returning stdout as UTF-8.
    #[track_caller]
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}",
            describe(&out)
        );
        String::from_utf8(out.stdout).expect("etcdctl stdout is UTF-8")
    }

    /// Runs etcdctl, asserts success, and parses stdout as JSON (`-w json` must be in `args`).
    #[track_caller]
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let s = self.ctl_ok(args);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("etcdctl {args:?}: bad JSON {e}: {s}"))
    }

    /// Runs etcdctl, asserts it fails, and returns stderr as UTF-8.
    #[track_caller]
    pub fn ctl_err(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(
            !out.status.success(),
            "etcdctl {args:?} succeeded unexpectedly: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Connects an `etcd-client` to all members' endpoints.
    pub async fn client(&self) -> etcd_client::Client {
        connect(&self.endpoints()).await
    }

    /// Connects an `etcd-client` to member i only.
    pub async fn member_client(&self, i: usize) -> etcd_client::Client {
        connect(&[self.endpoint(i)]).await
    }

    /// The last `lines` lines of every member's log, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut s = String::new();
        for m in &self.members {
            s.push_str(&format!(
                "----- {} ({}) log tail: {}\n",
                m.name,
                m.client_url,
                m.log_path.display()
            ));
            s.push_str(&tail(&m.log_path, lines));
            s.push('\n');
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() || std::env::var_os("FERROKV_TEST_SHOW_LOGS").is_some() {
            eprintln!("{}", self.log_tails(40));
            if std::env::var_os("FERROKV_TEST_KEEP_DIRS").is_some() {
                let path =
                    std::mem::replace(&mut self.dir, tempfile::TempDir::new().expect("temp dir"))
                        .keep();
                eprintln!("kept test dir {}", path.display());
            }
        }
    }
}

/// What `endpoint status` reports about one member.
#[derive(Clone, Copy, Debug)]
pub struct MemberStatus {
    /// The member's own id.
    pub member_id: u64,
    /// The id of the leader it knows (0 = none).
    pub leader: u64,
    /// Its store revision.
    pub revision: i64,
    /// Its current Raft term.
    pub raft_term: u64,
    /// Its last Raft log index.
    pub raft_index: u64,
}

/// Runs `etcdctl` (ETCDCTL_API=3) with `--endpoints` and the given args.
pub fn run_etcdctl(endpoints: &[String], args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(etcdctl_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg("--dial-timeout=2s")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", etcdctl_bin().display()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes())
            .expect("write etcdctl stdin");
    }
    child.wait_with_output().expect("wait etcdctl")
}

/// Connects an `etcd-client` to `endpoints` (2 s connect timeout, 5 s request timeout).
pub async fn connect(endpoints: &[String]) -> etcd_client::Client {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    etcd_client::Client::connect(endpoints, Some(opts))
        .await
        .unwrap_or_else(|e| panic!("connect {endpoints:?}: {e}"))
}

/// Exit status, stdout and stderr of a finished process, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last `lines` lines of a file (empty if it cannot be read). Reads at most the last
/// 64 KiB.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Base64 (standard alphabet, padded) as etcdctl's JSON output encodes keys and values.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes etcdctl's base64 JSON fields.
pub fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// Polls `cond` every 50 ms until it returns true, panicking with `what` after `timeout`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
    wait_until_or(timeout, what, cond, String::new);
}

/// [`wait_until`], adding `report()` (server logs, say) to the panic message on a timeout.
#[track_caller]
pub fn wait_until_or(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    report: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?}: {what}\n{}", report());
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    }
}

/// The next response of an `etcd-client` watch stream, panicking if none arrives within
/// `timeout` or the stream fails or ends.
pub async fn next_watch_response(
    stream: &mut etcd_client::WatchStream,
    timeout: Duration,
) -> etcd_client::WatchResponse {
    tokio::time::timeout(timeout, stream.message())
        .await
        .expect("watch response within the deadline")
        .expect("watch stream ok")
        .expect("watch stream open")
}

/// Status, `Content-Type` and body of a plain HTTP `GET <endpoint><path>` (`/metrics`,
/// `/health`, `/debug/pprof/…`), waiting at most `timeout`; a non-2xx status is returned, not
/// an error. Panics if the request cannot be made at all.
pub fn http_get(endpoint: &str, path: &str, timeout: Duration) -> (u16, String, Vec<u8>) {
    http_call(endpoint, path, None, timeout)
}

/// Like [`http_get`], but `POST` with a JSON `body` (the JSON gateway).
pub fn http_post(
    endpoint: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> (u16, String, Vec<u8>) {
    http_call(endpoint, path, Some(body), timeout)
}

fn http_call(
    endpoint: &str,
    path: &str,
    json_body: Option<&str>,
    timeout: Duration,
) -> (u16, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let url = format!("{endpoint}{path}");
    let sent = match json_body {
        None => agent.get(&url).call(),
        Some(body) => agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body),
    };
    let mut resp = sent.unwrap_or_else(|e| panic!("{url}: {e}"));
    let content_type = resp
        .headers()
        .get("content-type")
        .map_or(String::new(), |v| v.to_str().unwrap().to_string());
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .expect("read body");
    (resp.status().as_u16(), content_type, body)
}

/// The Python virtualenv `scripts/test` makes for the tests' Python clients (`etcd3`, `etcd3gw`,
/// `honcho`): `target/seed-venv`, or `FERROKV_TEST_VENV`.
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("FERROKV_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/seed-venv"));
    assert!(
        dir.join("bin/python").exists(),
        "no Python virtualenv at {} — run scripts/test (it installs etcd3, etcd3gw and honcho there)",
        dir.display()
    );
    dir
}
