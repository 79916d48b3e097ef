//! Local clusters for the benchmark: n server processes on 127.0.0.1 with etcd's server flags
//! (ferrokv takes the same ones), data dirs and logs in a temp dir. Dropping a [`LocalCluster`]
//! SIGKILLs and reaps every process it started.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running local cluster.
pub struct LocalCluster {
    /// Label for reports (`etcd`, `ferrokv`).
    pub label: String,
    /// Client URLs, one per member.
    pub endpoints: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

/// Picks `n` distinct free TCP ports on 127.0.0.1 (binds port 0 while picking, so the picks
/// do not repeat, then releases them for the servers).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<_>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?)
}

impl LocalCluster {
    /// Starts `n` members of `binary` (heartbeat 100 ms, election timeout 1000 ms, etcd's
    /// defaults) and waits until every member answers a Range, up to `ready_timeout`.
    pub async fn start(
        label: &str,
        binary: &Path,
        n: usize,
        ready_timeout: Duration,
    ) -> Result<LocalCluster> {
        if !binary.exists() {
            bail!("{label} binary {} not found", binary.display());
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("ferrokv-bench-{label}-"))
            .tempdir()?;
        let ports = free_ports(2 * n)?;
        let client_urls: Vec<String> = (0..n)
            .map(|i| format!("http://127.0.0.1:{}", ports[2 * i]))
            .collect();
        let peer_urls: Vec<String> = (0..n)
            .map(|i| format!("http://127.0.0.1:{}", ports[2 * i + 1]))
            .collect();
        let initial_cluster = (0..n)
            .map(|i| format!("m{i}={}", peer_urls[i]))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = LocalCluster {
            label: label.to_string(),
            endpoints: client_urls.clone(),
            children: Vec::new(),
            dir,
        };
        for i in 0..n {
            let log = File::create(cluster.log_path(i))?;
            let mut cmd = Command::new(binary);
            cmd.arg(format!("--name=m{i}"))
                .arg(format!(
                    "--data-dir={}",
                    cluster.dir.path().join(format!("m{i}.data")).display()
                ))
                .arg(format!("--listen-client-urls={}", client_urls[i]))
                .arg(format!("--advertise-client-urls={}", client_urls[i]))
                .arg(format!("--listen-peer-urls={}", peer_urls[i]))
                .arg(format!("--initial-advertise-peer-urls={}", peer_urls[i]))
                .arg(format!("--initial-cluster={initial_cluster}"))
                .arg("--initial-cluster-state=new")
                .arg(format!(
                    "--initial-cluster-token=bench-{label}-{}",
                    std::process::id()
                ))
                .arg("--heartbeat-interval=100")
                .arg("--election-timeout=1000")
                .arg("--log-level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log));
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("ETCD_") {
                    cmd.env_remove(k);
                }
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("spawn {}", binary.display()))?;
            cluster.children.push(child);
        }
        cluster.wait_ready(ready_timeout).await?;
        Ok(cluster)
    }

    /// Process ids of the members, in member order (the same order as `endpoints`).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.log"))
    }

    /// Polls a Range on every member until all answer.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for (i, ep) in self.endpoints.clone().iter().enumerate() {
            loop {
                if let Ok(Some(status)) = self.children[i].try_wait() {
                    bail!(
                        "{} member m{i} exited ({status}); log {}",
                        self.label,
                        self.log_path(i).display()
                    );
                }
                let opts = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(1))
                    .with_timeout(Duration::from_secs(2));
                let ok = match etcd_client::Client::connect([ep.as_str()], Some(opts)).await {
                    Ok(mut c) => c.get("ready-probe", None).await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} member m{i} at {ep} not ready after {timeout:?}; log {}",
                        self.label,
                        self.log_path(i).display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// SIGKILLs and reaps every member (also done on drop).
    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

/// Index in `endpoints` of the member that is Raft leader, asked through Maintenance.Status
/// (`leader` against each member's own `header.member_id`); polls until the members agree on
/// a leader that is one of them, up to `timeout`.
pub async fn leader_index(endpoints: &[String], timeout: Duration) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for ep in endpoints {
            let status = match crate::load::connect(std::slice::from_ref(ep), Some(timeout)).await {
                Ok(mut c) => c.status().await.ok(),
                Err(_) => None,
            };
            ids.push(
                status
                    .as_ref()
                    .and_then(|s| s.header())
                    .map(|h| h.member_id()),
            );
            leaders.push(status.map(|s| s.leader()));
        }
        let agreed = leaders[0].filter(|&l| l != 0 && leaders.iter().all(|x| *x == Some(l)));
        if let Some(i) = agreed.and_then(|l| ids.iter().position(|id| *id == Some(l))) {
            return Ok(i);
        }
        if Instant::now() > deadline {
            bail!("no agreed leader among {endpoints:?} after {timeout:?} (leaders {leaders:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
