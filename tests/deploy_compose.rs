//! `deploy/docker-compose.yml` (issue 12, packaging): the 3-member compose cluster comes up
//! from `deploy/Dockerfile` with `up -d --build`, serves on its published ports, and a member
//! killed with `docker-compose kill` and started again keeps its data (named volume) and
//! catches up. ferrokv's own packaging, so it runs on ferrokv only. Uses host ports 14379,
//! 14479 and 14579, as the compose file publishes them; everything is taken down at the end.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{ServerKind, describe, run_etcdctl, wait_until};

const PROJECT: &str = "ferrokvdeploytest";
const PORTS: [u16; 3] = [14379, 14479, 14579];

struct Deploy {
    dir: tempfile::TempDir,
}

impl Deploy {
    fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .args(["-p", PROJECT, "-f"])
            .arg(self.dir.path().join("docker-compose.yml"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker-compose")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?}: {}",
            describe(&out)
        );
    }
}

impl Drop for Deploy {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "2"]);
    }
}

fn ctl(port: u16, args: &[&str]) -> Output {
    run_etcdctl(&[format!("http://127.0.0.1:{port}")], args, None)
}

#[test]
fn compose_cluster_comes_up_and_a_killed_member_catches_up() {
    if ServerKind::under_test() == ServerKind::Etcd {
        eprintln!("deploy/ packages ferrokv: nothing to run against etcd");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for file in ["Dockerfile", "docker-compose.yml"] {
        std::fs::copy(repo.join("deploy").join(file), dir.path().join(file)).unwrap();
    }
    let staged = Command::new(repo.join("scripts/docker-image"))
        .arg("--binary")
        .arg(ServerKind::Ferrokv.binary())
        .arg("--stage")
        .arg(dir.path().join("rootfs"))
        .output()
        .unwrap();
    assert!(staged.status.success(), "{}", describe(&staged));
    let d = Deploy { dir };
    let _ = d.compose(&["down", "-v", "--remove-orphans", "-t", "1"]);
    d.ok(&["up", "-d", "--build"]);
    for port in PORTS {
        wait_until(
            Duration::from_secs(60),
            &format!("member on :{port}"),
            || ctl(port, &["endpoint", "health"]).status.success(),
        );
    }
    let list = String::from_utf8(ctl(PORTS[0], &["member", "list"]).stdout).unwrap();
    assert_eq!(list.lines().count(), 3, "{list}");

    assert!(ctl(PORTS[0], &["put", "before", "1"]).status.success());
    d.ok(&["kill", "ferrokv2"]);
    wait_until(
        Duration::from_secs(30),
        "a write with ferrokv2 killed",
        || {
            ctl(PORTS[0], &["--command-timeout=3s", "put", "during", "2"])
                .status
                .success()
        },
    );
    d.ok(&["start", "ferrokv2"]);
    wait_until(Duration::from_secs(60), "ferrokv2 caught up", || {
        let out = ctl(PORTS[1], &["get", "during", "--print-value-only"]);
        out.status.success() && out.stdout == b"2\n"
    });
    let before = ctl(PORTS[1], &["get", "before", "--print-value-only"]);
    assert_eq!(
        before.stdout, b"1\n",
        "it has what was written before the kill"
    );
}
