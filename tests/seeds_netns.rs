//! Seed 000's "four VMs" flow (issue 9), with each VM a network namespace this test makes: the
//! seed's command lines verbatim (its addresses 192.168.0.156–159 included, `ferrokv` for
//! `etcd`), every member also listening on its own `127.0.0.1:2379`, and etcdctl run "on a VM"
//! (inside its namespace) against that default endpoint, as the seed's readers do.
//!
//! The four namespaces hang off a bridge that lives in a fifth namespace, so nothing is added
//! to the machine's own network (no address, no route, no firewall rule) and the host's
//! netfilter (docker's FORWARD policy) never sees the traffic. Names carry the test's pid;
//! members are stopped (by the pids this test started) and the namespaces deleted when the
//! test ends, passed or failed. Needs root and iproute2's `ip`. Against real etcd 3.4 with
//! `FERROKV_TEST_SERVER=etcd`.

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{ServerKind, describe, etcdctl_bin, tail, wait_until};

const VMS: [&str; 4] = [
    "192.168.0.156",
    "192.168.0.157",
    "192.168.0.158",
    "192.168.0.159",
];
const READY: Duration = Duration::from_secs(60);

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn ip {args:?}: {e} (iproute2 installed?)"));
    assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
}

/// Four "VMs" (namespaces on one bridge) and the members running in them.
struct Lan {
    prefix: String,
    dirs: tempfile::TempDir,
    members: Vec<Option<Child>>,
}

impl Lan {
    fn new() -> Lan {
        assert!(
            is_root(),
            "seed 000's VM flow makes network namespaces: run the tests as root (scripts/test)"
        );
        let prefix = format!("fkv{}", std::process::id());
        let lan = Lan {
            dirs: tempfile::tempdir().unwrap(),
            members: Vec::new(),
            prefix,
        };
        let switch = lan.ns("lan");
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for (i, addr) in VMS.iter().enumerate() {
            let vm = lan.ns(&i.to_string());
            let port = format!("{}h{i}", lan.prefix);
            ip(&["netns", "add", &vm]);
            ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &vm,
            ]);
            ip(&["link", "set", &port, "netns", &switch]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &vm,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &vm, "link", "set", "eth0", "up"]);
            ip(&["-n", &vm, "link", "set", "lo", "up"]);
        }
        lan
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn dir(&self, i: usize) -> PathBuf {
        let dir = self.dirs.path().join(format!("vm{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts the seed's command line on VM `i`, in its own working directory (the seed sets
    /// no --data-dir: etcd's default `<name>.etcd` lands there).
    fn start(&mut self, i: usize) {
        let me = VMS[i];
        let cluster = VMS
            .iter()
            .enumerate()
            .map(|(j, a)| format!("infra{j}=http://{a}:2380"))
            .collect::<Vec<_>>()
            .join(",");
        let args = [
            "--name".to_string(),
            format!("infra{i}"),
            "--initial-advertise-peer-urls".into(),
            format!("http://{me}:2380"),
            "--listen-peer-urls".into(),
            format!("http://{me}:2380"),
            "--listen-client-urls".into(),
            format!("http://{me}:2379,http://127.0.0.1:2379"),
            "--advertise-client-urls".into(),
            format!("http://{me}:2379"),
            "--initial-cluster-token".into(),
            "etcd-cluster-1".into(),
            "--initial-cluster".into(),
            cluster,
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        let dir = self.dir(i);
        let log = File::create(dir.join("member.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(&i.to_string())])
            .arg(ServerKind::under_test().binary())
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn the member");
        if self.members.len() <= i {
            self.members.resize_with(i + 1, || None);
        }
        self.members[i] = Some(child);
    }

    fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `etcdctl <args>` on VM `i`, against its default endpoint 127.0.0.1:2379.
    fn etcdctl(&self, i: usize, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(&i.to_string())])
            .arg(etcdctl_bin())
            .args(args)
            .env("ETCDCTL_API", "3")
            .env_remove("ETCDCTL_ENDPOINTS")
            .stdin(Stdio::null())
            .output()
            .expect("spawn etcdctl")
    }

    #[track_caller]
    fn etcdctl_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.etcdctl(i, args);
        assert!(
            out.status.success(),
            "etcdctl on vm{i} {args:?}: {}\n{}",
            describe(&out),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn logs(&self) -> String {
        (0..VMS.len())
            .map(|i| {
                format!(
                    "--- vm{i}\n{}\n",
                    tail(&self.dirs.path().join(format!("vm{i}/member.log")), 15)
                )
            })
            .collect()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
        for i in 0..VMS.len() {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(&i.to_string())])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns("lan")])
            .status();
    }
}

/// Whether this process's effective uid is 0 (`/proc/self/status`, `Uid:` real effective …).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn seed_000_four_vms_in_network_namespaces() {
    let mut lan = Lan::new();
    for i in 0..VMS.len() {
        lan.start(i);
    }
    for i in 0..VMS.len() {
        wait_until(
            READY,
            &format!("vm{i}'s member healthy on 127.0.0.1:2379"),
            || lan.etcdctl(i, &["endpoint", "health"]).status.success(),
        );
    }

    // Members publish their attributes through the log once up: wait for all four.
    let mut list = String::new();
    wait_until(READY, "every member published", || {
        list = lan.etcdctl_ok(0, &["member", "list"]);
        !list.contains("unstarted")
    });
    for (j, addr) in VMS.iter().enumerate() {
        assert!(
            list.contains(&format!(
                ", started, infra{j}, http://{addr}:2380, http://{addr}:2379, false"
            )),
            "infra{j} missing from\n{list}"
        );
    }
    // The seed's put/get/del, on different VMs, each through its own 127.0.0.1:2379.
    assert_eq!(
        lan.etcdctl_ok(0, &["put", "greeting", "hello, world!"]),
        "OK\n"
    );
    assert_eq!(
        lan.etcdctl_ok(3, &["get", "greeting"]),
        "greeting\nhello, world!\n"
    );
    // A member reached on the VM's address from another VM.
    let remote = format!("--endpoints=http://{}:2379", VMS[1]);
    assert_eq!(
        lan.etcdctl_ok(
            2,
            &[remote.as_str(), "get", "greeting", "--print-value-only"]
        ),
        "hello, world!\n"
    );
    assert_eq!(lan.etcdctl_ok(1, &["del", "greeting"]), "1\n");

    // Two of four VMs down: no quorum (3), no write.
    lan.stop(2);
    lan.stop(3);
    let refused = lan.etcdctl(0, &["--command-timeout=3s", "put", "k", "during"]);
    assert!(
        !refused.status.success(),
        "a write with 2 of 4 members must fail: {}",
        describe(&refused)
    );
    lan.start(2);
    wait_until(READY, "a write with 3 of 4 members up", || {
        lan.etcdctl(0, &["--command-timeout=3s", "put", "k", "after"])
            .status
            .success()
    });
    assert_eq!(
        lan.etcdctl_ok(2, &["get", "k", "--print-value-only"]),
        "after\n"
    );
}
