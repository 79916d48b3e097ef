//! etcd's command lines and config files start the real binary (issue 9): seed 002's goreman
//! Procfile (three members, `--flag value` style, `--enable-pprof`), etcd's own sample config
//! file, and the refusal of a security flag. Run against etcd with FERROKV_TEST_SERVER=etcd:
//! the same command lines must work there too (ferrokv-only checks are marked).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{PortReservation, ServerKind};

/// Seed 002's Procfile (goreman), verbatim; the ports are replaced by free ones.
const PROCFILE: &str = "\
etcd1: etcd --name infra1 --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 --initial-cluster-token etcd-cluster-1 --initial-cluster 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380' --initial-cluster-state new --enable-pprof
etcd2: etcd --name infra2 --listen-client-urls http://127.0.0.1:22379 --advertise-client-urls http://127.0.0.1:22379 --listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 --initial-cluster-token etcd-cluster-1 --initial-cluster 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380' --initial-cluster-state new --enable-pprof
etcd3: etcd --name infra3 --listen-client-urls http://127.0.0.1:32379 --advertise-client-urls http://127.0.0.1:32379 --listen-peer-urls http://127.0.0.1:32380 --initial-advertise-peer-urls http://127.0.0.1:32380 --initial-cluster-token etcd-cluster-1 --initial-cluster 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380' --initial-cluster-state new --enable-pprof
";

/// Splits a shell command line (single quotes only, as the Procfile uses) into words.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Server processes started by a test, SIGKILLed and reaped on drop (also on panic), with
/// their logs printed then.
struct Servers {
    children: Vec<(Child, PathBuf)>,
}

impl Servers {
    /// Starts the server under test with `args` in `cwd`, stdout and stderr to `log`, without
    /// inheriting any ETCD_* variable.
    fn spawn(&mut self, args: &[String], cwd: &Path, log: PathBuf) {
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(ServerKind::under_test().binary());
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        self.children.push((cmd.spawn().unwrap(), log));
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (child, log) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("----- {}\n{}", log.display(), common::tail(log, 40));
            }
        }
    }
}

fn etcdctl(endpoints: &str, args: &[&str]) -> Output {
    Command::new(common::etcdctl_bin())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run etcdctl")
}

/// Waits until `etcdctl endpoint health` succeeds for every endpoint, at most `timeout`.
fn wait_healthy(endpoints: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for endpoint in endpoints {
        loop {
            let out = etcdctl(endpoint, &["endpoint", "health", "--command-timeout=2s"]);
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                assert!(text.contains("is healthy"), "{}", common::describe(&out));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{endpoint} not healthy: {}",
                common::describe(&out)
            );
            std::thread::sleep(Duration::from_millis(200)); // poll interval
        }
    }
}

#[test]
fn seed_002_procfile_starts_a_healthy_three_member_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<PortReservation> = (0..6).map(|_| PortReservation::new()).collect();
    let procfile_ports = ["12379", "12380", "22379", "22380", "32379", "32380"];
    let mut procfile = PROCFILE.to_owned();
    for (old, new) in procfile_ports.iter().zip(&ports) {
        procfile = procfile.replace(&format!(":{old}"), &format!(":{}", new.port));
    }
    let mut servers = Servers {
        children: Vec::new(),
    };
    for line in procfile.lines() {
        let (process, command) = line.split_once(": ").unwrap();
        // The command runs `etcd`; the binary under test takes its place. No --data-dir: the
        // default ${name}.etcd lands in the working directory, as with goreman.
        let args = shell_words(command)[1..].to_vec();
        servers.spawn(&args, dir.path(), dir.path().join(format!("{process}.log")));
    }
    let endpoints: Vec<String> = [0, 2, 4]
        .iter()
        .map(|i| format!("http://127.0.0.1:{}", ports[*i].port))
        .collect();
    wait_healthy(&endpoints, Duration::from_secs(30));
    for name in ["infra1.etcd", "infra2.etcd", "infra3.etcd"] {
        assert!(dir.path().join(name).is_dir(), "{name} was not created");
    }
    // The cluster replicates: a put through one member is read through another.
    let out = etcdctl(&endpoints[0], &["put", "foo", "bar"]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let out = etcdctl(&endpoints[1], &["get", "foo", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bar");
    let out = etcdctl(&endpoints[2], &["member", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    for name in ["infra1", "infra2", "infra3"] {
        assert!(list.contains(name), "{list}");
    }
}

#[test]
fn etcds_sample_config_file_starts_a_member_and_other_flags_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (PortReservation::new(), PortReservation::new());
    let client_url = format!("http://127.0.0.1:{}", client.port);
    let peer_url = format!("http://127.0.0.1:{}", peer.port);
    // etcd 3.4.23's etcd.conf.yml.sample with this test's name, ports and data dir.
    let sample = include_str!("../src/config/testdata/etcd.conf.yml.sample");
    let config = sample
        .replace("name: 'default'", "name: 'from-file'")
        .replace(
            "data-dir:\n",
            &format!("data-dir: {}\n", dir.path().join("data").display()),
        )
        .replace("http://localhost:2380", &peer_url)
        .replace("http://localhost:2379", &client_url)
        .replace(
            "initial-cluster:\n",
            &format!("initial-cluster: from-file={peer_url}\n"),
        )
        // etcd serves v2 when asked to; a ferrokv run must not depend on it either way.
        .replace("enable-v2: true", "enable-v2: false");
    let path = dir.path().join("etcd.conf.yml");
    std::fs::write(&path, config).unwrap();
    let log = dir.path().join("member.log");
    let mut servers = Servers {
        children: Vec::new(),
    };
    // --name on the command line is ignored: the file wins (etcd's rule).
    let args = vec![
        "--config-file".to_owned(),
        path.display().to_string(),
        "--name".to_owned(),
        "from-flag".to_owned(),
    ];
    servers.spawn(&args, dir.path(), log.clone());
    wait_healthy(std::slice::from_ref(&client_url), Duration::from_secs(30));
    let out = etcdctl(&client_url, &["member", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("from-file"), "{}", common::describe(&out));
    assert!(!list.contains("from-flag"), "{list}");
    if ServerKind::under_test() == ServerKind::Ferrokv {
        let text = std::fs::read_to_string(&log).unwrap();
        for needle in [
            "a config file is given: ignoring command-line flags --name",
            "ignoring --strict-reconfig-check=false",
        ] {
            assert!(text.contains(needle), "log lacks {needle:?}:\n{text}");
        }
    }
}

/// Runs the server with `args`; it must exit by itself within 10 s. Returns (code, stderr).
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let bin = ServerKind::under_test().binary();
    let mut child = Command::new(&bin)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} kept running with {args:?}", bin.display());
        }
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_tls_flag_is_refused_with_exit_2_naming_it() {
    if ServerKind::under_test() != ServerKind::Ferrokv {
        return; // etcd implements TLS
    }
    let (code, stderr) = run_to_exit(&["-cert-file", "/nonexistent/server.pem"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--cert-file is not supported yet"),
        "{stderr}"
    );
    let (code, stderr) = run_to_exit(&[], &[("ETCD_CLIENT_CERT_AUTH", "true")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ETCD_CLIENT_CERT_AUTH"), "{stderr}");
}

#[test]
fn malformed_values_and_env_conflicts_exit_non_zero_with_etcds_wording() {
    let (code, stderr) = run_to_exit(&["--heartbeat-interval", "abc"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value \"abc\" for flag -heartbeat-interval: parse error"),
        "{stderr}"
    );
    // etcd exits 1 here (a fatal log line), ferrokv 2: both refuse to start.
    let (code, stderr) = run_to_exit(&["--name", "a"], &[("ETCD_NAME", "b")]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("conflicting environment variable \"ETCD_NAME\" is shadowed"),
        "{stderr}"
    );
}

#[test]
fn version_prints_etcd_shaped_lines() {
    if ServerKind::under_test() != ServerKind::Ferrokv {
        return;
    }
    let out = Command::new(ServerKind::under_test().binary())
        .arg("-version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ferrokv Version: "), "{text}");
    assert!(text.contains("API Version: "), "{text}");
}

/// `--initial-election-tick-advance` (etcd `adjustTicks`): a single member fast-forwards its
/// election clock at start, members of a larger cluster once their peers are connected; each
/// says so in its log (etcd: "fast-forwarding N ticks", zap "... fast-forwarding election
/// ticks"). How much sooner the first election comes is a benchmark matter, not this test's.
#[test]
fn election_ticks_are_fast_forwarded_at_start() {
    let single = common::Cluster::start(1, common::ClusterOpts::default());
    common::wait_until(
        Duration::from_secs(10),
        "the single member fast-forwards",
        || single.log_tails(400).contains("fast-forwarding"),
    );
    drop(single);

    let three = common::Cluster::start(3, common::ClusterOpts::default());
    common::wait_until(
        Duration::from_secs(10),
        "every member of three fast-forwards once its peers are connected",
        || three.log_tails(400).matches("fast-forwarding").count() == 3,
    );
}
