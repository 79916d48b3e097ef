//! `deploy/systemd/ferrokv.service` (issue 12, packaging): `systemd-analyze verify` accepts the
//! unit without a warning, and the server speaks Type=notify: started with `$NOTIFY_SOCKET`, it
//! sends `READY=1` once it serves clients (etcd does the same; the readiness test also passes
//! against etcd with `FERROKV_TEST_SERVER=etcd`).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PortReservation, ServerKind, describe};

#[test]
fn the_unit_file_verifies_cleanly() {
    if ServerKind::under_test() == ServerKind::Etcd {
        eprintln!("the unit packages ferrokv: nothing to verify against etcd");
        return;
    }
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/ferrokv.service"),
    )
    .unwrap();
    assert!(unit.contains("Type=notify"), "the unit relies on READY=1");
    // The installed path does not exist here: point ExecStart at the binary under test.
    let bin = ServerKind::Ferrokv.binary();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrokv.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/ferrokv", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ferrokv.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {}",
        describe(&out)
    );
}

#[test]
fn the_server_notifies_systemd_once_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (client, peer) = (PortReservation::new(), PortReservation::new());
    let client_url = format!("http://127.0.0.1:{}", client.port);
    let peer_url = format!("http://127.0.0.1:{}", peer.port);
    let mut child = Command::new(ServerKind::under_test().binary())
        .args(["--name", "m", "--data-dir"])
        .arg(dir.path().join("m.etcd"))
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("m={peer_url}")])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    let ready = loop {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let ready = text.lines().any(|l| l == "READY=1");
            messages.push(text);
            if ready {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    // READY=1 means clients are served: a request succeeds right away.
    let served = ready
        && common::run_etcdctl(std::slice::from_ref(&client_url), &["put", "k", "v"], None)
            .status
            .success();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "no READY=1 within 30 s; got {messages:?}");
    assert!(served, "READY=1 came before the member served");
}
