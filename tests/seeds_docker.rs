//! The seeds' docker flows (issue 9), replayed with an image built here from the server under
//! test (`scripts/docker-image`: FROM scratch, the binary and the libraries it links, plus
//! etcdctl as etcd's images carry it); no registry is involved.
//!
//! - seed 000: its 4-member docker-compose file (`tests/seeds/000-docker-compose.yaml`, Go-style
//!   single-dash flags, client ports published on 2385–2388): member list, put/get/del through
//!   the published ports, stop two of four and see writes refused (a quorum of 4 is 3), start
//!   one again and write;
//! - seed 003: its single-member `docker run` line (ports 2379/2380, a bind-mounted data dir,
//!   `--logger zap --log-outputs stderr`), and its 3-member compose file
//!   (`tests/seeds/003-docker-compose.yml`: a bridge network with static IPs, named volumes),
//!   `etcdctl member list` inside a node as the seed does, data kept across `down`/`up`.
//!
//! The seeds fix their host ports and container names (2379/2380, 2385–2388, `etcd1`…`etcd4`,
//! `etcd-latest`) and their subnet (172.16.238.0/24): the replays keep them, so a machine
//! running something else under those names or ports fails these tests with a message saying
//! which. Every container and network is removed when a test ends, passed or failed. Against
//! real etcd 3.4 with `FERROKV_TEST_SERVER=etcd` (same files, `etcd` for the binary's name).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{ServerKind, describe, etcdctl_bin, run_etcdctl, wait_until, wait_until_or};

/// How long a cluster of containers may take to elect a leader and serve.
const READY: Duration = Duration::from_secs(60);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e} (is docker installed?)"))
}

fn docker(args: &[&str]) -> Output {
    run(Command::new("docker").args(args))
}

#[track_caller]
fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server under test as the seeds name it: its image tag and the binary's name in it.
struct Flavor {
    tag: &'static str,
    binary: &'static str,
}

fn flavor() -> Flavor {
    match ServerKind::under_test() {
        ServerKind::Ferrokv => Flavor {
            tag: "ferrokv:seeds",
            binary: "ferrokv",
        },
        ServerKind::Etcd => Flavor {
            tag: "etcd-reference:seeds",
            binary: "etcd",
        },
    }
}

/// Builds the image once per test process.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    let f = flavor();
    BUILT.get_or_init(|| {
        let server = ServerKind::under_test().binary();
        let etcdctl = etcdctl_bin();
        ok(
            run(Command::new(repo().join("scripts/docker-image"))
                .arg("--binary")
                .arg(&server)
                .args(["--name", f.binary, "--tag", f.tag, "--with"])
                .arg(&etcdctl)),
            "scripts/docker-image",
        );
    });
    f.tag
}

/// A seed's compose file as the server under test runs it: the file under `tests/seeds/`,
/// with etcd's image and binary name when testing etcd.
fn compose_text(file: &str) -> String {
    let text = std::fs::read_to_string(repo().join("tests/seeds").join(file)).unwrap();
    let f = flavor();
    text.replace("ferrokv:seeds", image())
        .replace("command: ferrokv ", &format!("command: {} ", f.binary))
        .replace(
            "/usr/local/bin/ferrokv",
            &format!("/usr/local/bin/{}", f.binary),
        )
}

/// A docker-compose project brought up from one of the seed files; `down -v` on drop.
struct Compose {
    project: String,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Compose {
    /// `docker-compose -p <project> up -d` with the seed file `file`. Containers the seed
    /// names (`container_names`) must not exist, unless an earlier run of this project left
    /// them (then that run is taken down first).
    fn up(project: &str, file: &str, container_names: &[&str]) -> Compose {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, compose_text(file)).unwrap();
        let compose = Compose {
            project: project.to_string(),
            file: path,
            _dir: dir,
        };
        compose.cmd(&["down", "-v", "--remove-orphans", "-t", "1"]);
        for name in container_names {
            let out = docker(&[
                "inspect",
                "--format",
                "{{index .Config.Labels \"com.docker.compose.project\"}}",
                name,
            ]);
            assert!(
                !out.status.success(),
                "a container named {name} exists (project {:?}); seed {file} names its \
                 containers so: remove it to run this test",
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        ok(compose.cmd(&["up", "-d"]), "docker-compose up -d");
        compose
    }

    fn cmd(&self, args: &[&str]) -> Output {
        run(Command::new("docker-compose")
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(&self.file)
            .args(args))
    }

    /// `etcdctl <args>` inside the service's container (`docker-compose exec`), as seed 003
    /// does with `docker exec`.
    fn exec_etcdctl(&self, service: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", "-T", service, "etcdctl"];
        all.extend_from_slice(args);
        self.cmd(&all)
    }

    fn logs(&self) -> String {
        let out = self.cmd(&["logs", "--no-color", "--tail", "30"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let out = self.cmd(&["down", "-v", "--remove-orphans", "-t", "2"]);
        if !out.status.success() {
            eprintln!("docker-compose down failed: {}", describe(&out));
        }
    }
}

fn local(port: u16) -> Vec<String> {
    vec![format!("http://127.0.0.1:{port}")]
}

fn ctl(port: u16, args: &[&str]) -> Output {
    run_etcdctl(&local(port), args, None)
}

#[track_caller]
fn ctl_ok(port: u16, args: &[&str]) -> String {
    ok(ctl(port, args), &format!("etcdctl on :{port} {args:?}"))
}

/// Seed 000: its 4-member compose file, through the published client ports 2385–2388.
#[test]
fn seed_000_docker_compose_four_members() {
    let names = ["etcd1", "etcd2", "etcd3", "etcd4"];
    let c = Compose::up("ferrokvseed000", "000-docker-compose.yaml", &names);
    let ports = [2385u16, 2386, 2387, 2388];
    for port in ports {
        wait_until(READY, &format!("member on :{port} healthy"), || {
            ctl(port, &["endpoint", "health"]).status.success()
        });
    }

    // Members publish their attributes through the log once up: wait for all four.
    let mut table = String::new();
    wait_until(READY, "every member published", || {
        table = ctl_ok(2385, &["member", "list", "-w", "table"]);
        !table.contains("unstarted")
    });
    for name in names {
        assert!(
            table.contains(&format!("| started | {name} | http://{name}:2380 |")),
            "{name} missing from\n{table}"
        );
    }

    // The seed's first commands, each member answering.
    assert_eq!(ctl_ok(2385, &["put", "greeting", "hello, world!"]), "OK\n");
    assert_eq!(
        ctl_ok(2388, &["get", "greeting"]),
        "greeting\nhello, world!\n"
    );
    assert_eq!(ctl_ok(2386, &["del", "greeting"]), "1\n");
    assert_eq!(ctl_ok(2387, &["get", "greeting"]), "");

    // Quorum of 4 is 3 (the seed: (n+1)/2 rounded up to a majority): with two stopped, no
    // write can commit.
    ok(
        c.cmd(&["stop", "-t", "1", "etcd3", "etcd4"]),
        "stop etcd3 etcd4",
    );
    let refused = ctl(2385, &["--command-timeout=3s", "put", "k", "during"]);
    assert!(
        !refused.status.success(),
        "a write with 2 of 4 members up must fail: {}",
        describe(&refused)
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("context deadline exceeded")
            || err.contains("no leader")
            || err.contains("request timed out"),
        "{err}"
    );

    // Three of four: writes go through again.
    ok(c.cmd(&["start", "etcd3"]), "start etcd3");
    let last = std::cell::RefCell::new(None);
    wait_until_or(
        READY,
        "a write with 3 of 4 members up",
        || {
            let out = ctl(2385, &["--command-timeout=3s", "put", "k", "after"]);
            let done = out.status.success();
            *last.borrow_mut() = Some(out);
            done
        },
        || {
            format!(
                "last try: {}\n{}",
                last.borrow().as_ref().map_or_else(String::new, describe),
                c.logs()
            )
        },
    );
    assert_eq!(
        ctl_ok(2387, &["get", "k", "--print-value-only"]),
        "after\n",
        "{}",
        c.logs()
    );
}

/// Seed 003: its single-member `docker run` line, with `-d` so the test goes on (the seed runs
/// it in the foreground) and the bind mount's source in a temp dir.
#[test]
fn seed_003_docker_run_single_member() {
    let f = flavor();
    let data = tempfile::tempdir().unwrap();
    let existing = docker(&["inspect", "etcd-latest"]);
    assert!(
        !existing.status.success(),
        "a container named etcd-latest exists; seed 003's docker run names its container so: \
         remove it to run this test"
    );
    let mount = format!(
        "type=bind,source={},destination=/etcd-data",
        data.path().display()
    );
    let binary = format!("/usr/local/bin/{}", f.binary);
    let started = docker(&[
        "run",
        "-d",
        "-p",
        "2379:2379",
        "-p",
        "2380:2380",
        "--mount",
        &mount,
        "--name",
        "etcd-latest",
        image(),
        &binary,
        "--name",
        "s1",
        "--data-dir",
        "/etcd-data",
        "--listen-client-urls",
        "http://0.0.0.0:2379",
        "--advertise-client-urls",
        "http://0.0.0.0:2379",
        "--listen-peer-urls",
        "http://0.0.0.0:2380",
        "--initial-advertise-peer-urls",
        "http://0.0.0.0:2380",
        "--initial-cluster",
        "s1=http://0.0.0.0:2380",
        "--initial-cluster-token",
        "tkn",
        "--initial-cluster-state",
        "new",
        "--log-level",
        "info",
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
    ]);
    let id = ok(started, "docker run").trim().to_string();
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = docker(&["rm", "-f", "-v", &self.0]);
        }
    }
    let _remove = Remove(id.clone());

    let logs = || {
        let out = docker(&["logs", &id]);
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    };
    wait_until(READY, "the member serves on 127.0.0.1:2379", || {
        ctl(2379, &["endpoint", "health"]).status.success()
    });
    assert_eq!(ctl_ok(2379, &["put", "testkey", "hello world"]), "OK\n");
    assert_eq!(ctl_ok(2379, &["get", "testkey"]), "testkey\nhello world\n");

    // --logger zap --log-outputs stderr: JSON lines with etcd's keys on stderr.
    let log = logs();
    let ready = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["msg"] == "serving client traffic insecurely; this is strongly discouraged!")
        .unwrap_or_else(|| {
            panic!("no zap JSON line 'serving client traffic insecurely' in\n{log}")
        });
    for key in ["level", "ts", "caller"] {
        assert!(ready.get(key).is_some(), "{key} missing from {ready}");
    }
    // The data lives in the bind mount.
    assert!(
        data.path().join("member").is_dir(),
        "no member dir in the bind-mounted data dir: {:?}",
        std::fs::read_dir(data.path())
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
}

/// Seed 003: its 3-member compose file (static IPs, named volumes); etcdctl run inside a node.
#[test]
fn seed_003_docker_compose_three_members_static_ips() {
    let c = Compose::up("ferrokvseed003", "003-docker-compose.yml", &[]);
    let nodes = [
        ("node1", "172.16.238.100"),
        ("node2", "172.16.238.101"),
        ("node3", "172.16.238.102"),
    ];
    for (node, _) in nodes {
        wait_until(READY, &format!("{node} healthy"), || {
            c.exec_etcdctl(node, &["endpoint", "health"])
                .status
                .success()
        });
    }

    // The seed: `docker exec` into a node, `etcdctl member list`.
    let list = ok(c.exec_etcdctl("node1", &["member", "list"]), "member list");
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort_by_key(|l| l.split(", ").nth(2).unwrap_or_default().to_string());
    assert_eq!(lines.len(), 3, "{list}");
    for (line, (node, ip)) in lines.iter().zip(nodes) {
        let fields: Vec<&str> = line.split(", ").collect();
        assert_eq!(
            fields[1..],
            [
                "started",
                node,
                &format!("http://{ip}:2380"),
                &format!("http://{ip}:2379"),
                "false"
            ],
            "{list}"
        );
        assert!(
            u64::from_str_radix(fields[0], 16).is_ok(),
            "member ID {:?} is not hex",
            fields[0]
        );
    }

    ok(
        c.exec_etcdctl("node2", &["put", "foo", "bar"]),
        "put on node2",
    );
    // Named volumes: the data survives removing and recreating the containers.
    ok(
        c.cmd(&["down", "-t", "2"]),
        "docker-compose down (volumes kept)",
    );
    ok(c.cmd(&["up", "-d"]), "docker-compose up -d again");
    wait_until(READY, "node3 serves foo after the restart", || {
        let out = c.exec_etcdctl("node3", &["get", "foo", "--print-value-only"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout) == "bar\n"
    });
}
