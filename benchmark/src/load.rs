//! The closed-loop KV load behind the `put`, `range` and `txn-put` workloads: `clients`
//! concurrent tasks, each issuing one [`Op`] at a time, until a shared op budget or a deadline
//! is used up. Latencies go into per-task HDR histograms (µs), merged at the end; the servers'
//! CPU time is read before the first op and after the last ([`crate::cpu`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, RngCore};

use crate::cpu::{CpuMeter, us_per_op};

/// What each client does, one at a time.
#[derive(Clone, Debug)]
pub enum Op {
    /// `KV.Put` of a random key (`bench/<16 hex>`) with `value_bytes` random bytes.
    Put { value_bytes: usize },
    /// `KV.Range` of one key picked at random from `keys` (all present); a linearizable read
    /// unless `serializable` (then the member answers from its own store). An answer without
    /// the key counts as an error.
    Get {
        keys: Arc<Vec<String>>,
        serializable: bool,
    },
    /// `KV.Txn` without compares whose success branch puts `puts` random keys of
    /// `value_bytes` random bytes each.
    TxnPut { puts: usize, value_bytes: usize },
}

impl Op {
    /// Issues one operation on `client`. `value` is the client's scratch buffer for values.
    async fn issue(&self, client: &mut etcd_client::Client, value: &mut [u8]) -> Result<()> {
        match self {
            Op::Put { .. } => {
                rand::rng().fill_bytes(value);
                client.put(random_key(), value.to_vec(), None).await?;
            }
            Op::Get { keys, serializable } => {
                let key = keys[rand::rng().random_range(0..keys.len())].as_str();
                let opts = serializable.then(|| etcd_client::GetOptions::new().with_serializable());
                let resp = client.get(key, opts).await?;
                if resp.kvs().is_empty() {
                    anyhow::bail!("range of {key}: key missing");
                }
            }
            Op::TxnPut { puts, .. } => {
                let ops: Vec<etcd_client::TxnOp> = (0..*puts)
                    .map(|_| {
                        rand::rng().fill_bytes(value);
                        etcd_client::TxnOp::put(random_key(), value.to_vec(), None)
                    })
                    .collect();
                client.txn(etcd_client::Txn::new().and_then(ops)).await?;
            }
        }
        Ok(())
    }

    /// Size of the client's value buffer.
    fn value_bytes(&self) -> usize {
        match self {
            Op::Put { value_bytes } | Op::TxnPut { value_bytes, .. } => *value_bytes,
            Op::Get { .. } => 0,
        }
    }
}

/// A fresh random key under `bench/`.
fn random_key() -> String {
    format!("bench/{:016x}", rand::rng().next_u64())
}

/// When a level ends.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// After this many acknowledged puts (over all clients).
    Ops(u64),
    /// After this long.
    Duration(Duration),
}

/// Result of one load level against one cluster.
#[derive(Debug)]
pub struct LevelResult {
    /// Acknowledged operations.
    pub ops: u64,
    /// Failed operations (each client retries with a fresh key after 10 ms).
    pub errors: u64,
    /// Wall time of the level.
    pub elapsed: Duration,
    /// Latency of acknowledged operations, µs.
    pub latency_us: Histogram<u64>,
    /// CPU time of the server's members during the level, summed over them; `None` when they
    /// are not local processes.
    pub server_cpu: Option<Duration>,
    /// CPU time of this benchmark process (the clients) during the level: on a machine the
    /// clients share with the servers, what is left for the servers.
    pub client_cpu: Duration,
}

impl LevelResult {
    /// Acknowledged operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU per acknowledged operation, µs (all members together).
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        us_per_op(self.server_cpu, self.ops)
    }

    /// Client (this process's) CPU per acknowledged operation, µs.
    pub fn client_us_per_op(&self) -> Option<f64> {
        us_per_op(Some(self.client_cpu), self.ops)
    }

    /// Latency quantile in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

/// An empty latency histogram: 1 µs to 60 s, 3 significant digits (the unit is the caller's).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Opens one gRPC connection (its own channel) balanced over `endpoints`. `request_timeout`
/// bounds each unary call; streaming clients (Watch, LeaseKeepAlive) pass `None` so a
/// long-lived stream is never cut by it.
pub async fn connect(
    endpoints: &[String],
    request_timeout: Option<Duration>,
) -> Result<etcd_client::Client> {
    let mut opts = etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(2));
    if let Some(t) = request_timeout {
        opts = opts.with_timeout(t);
    }
    etcd_client::Client::connect(endpoints, Some(opts))
        .await
        .with_context(|| format!("connect {endpoints:?}"))
}

/// Opens `connections` gRPC connections to `endpoints` (each `Client::connect` is its own
/// channel); clients are then spread over them round-robin.
pub async fn connect_all(
    endpoints: &[String],
    connections: usize,
) -> Result<Vec<etcd_client::Client>> {
    let mut out = Vec::new();
    for _ in 0..connections.max(1) {
        out.push(connect(endpoints, Some(Duration::from_secs(10))).await?);
    }
    Ok(out)
}

/// Runs one level: `clients` tasks doing `op` over `conns`, until `budget`. `pids` are the
/// server's member processes whose CPU the level reads (empty: none).
///
/// A level stops early once it has seen as many errors as its op budget (or 10,000 in
/// duration mode), so a dead server ends it instead of spinning.
pub async fn run_level(
    conns: &[etcd_client::Client],
    pids: &[u32],
    clients: usize,
    op: &Op,
    budget: Budget,
    progress: ProgressBar,
) -> Result<LevelResult> {
    let claimed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    match budget {
        Budget::Ops(n) => {
            progress.set_length(n);
            progress.set_style(
                ProgressStyle::with_template(
                    "{prefix:>22} [{bar:30}] {pos}/{len} ops {per_sec} eta {eta}",
                )?
                .progress_chars("=> "),
            );
        }
        Budget::Duration(d) => {
            progress.set_length(d.as_secs().max(1));
            progress.set_style(
                ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} s {msg}")?
                    .progress_chars("=> "),
            );
        }
    }
    let errors_max = match budget {
        Budget::Ops(n) => n.max(1),
        Budget::Duration(_) => 10_000,
    };
    let cpu = CpuMeter::start(pids)?;
    let client_cpu = CpuMeter::start(&[std::process::id()])?;
    let start = Instant::now();
    let deadline = match budget {
        Budget::Duration(d) => Some(start + d),
        Budget::Ops(_) => None,
    };
    let mut tasks = Vec::new();
    for t in 0..clients {
        let mut client = conns[t % conns.len()].clone();
        let (claimed, done, errors) = (claimed.clone(), done.clone(), errors.clone());
        let (progress, op) = (progress.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = latency_histogram();
            let mut value = vec![0u8; op.value_bytes()];
            loop {
                if errors.load(Ordering::Relaxed) >= errors_max {
                    break;
                }
                match budget {
                    Budget::Ops(n) => {
                        if claimed.fetch_add(1, Ordering::Relaxed) >= n {
                            break;
                        }
                    }
                    Budget::Duration(_) => {
                        if Instant::now() >= deadline.unwrap() {
                            break;
                        }
                    }
                }
                let t0 = Instant::now();
                match op.issue(&mut client, &mut value).await {
                    Ok(_) => {
                        let us = t0.elapsed().as_micros().max(1) as u64;
                        hist.saturating_record(us);
                        done.fetch_add(1, Ordering::Relaxed);
                        if matches!(budget, Budget::Ops(_)) {
                            progress.inc(1);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        // The op budget slot is given back so the level still does n ops.
                        if matches!(budget, Budget::Ops(_)) {
                            claimed.fetch_sub(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            hist
        }));
    }
    // Duration mode: tick the bar once a second.
    let ticker = if let Budget::Duration(d) = budget {
        let progress = progress.clone();
        let done = done.clone();
        Some(tokio::spawn(async move {
            for s in 1..=d.as_secs() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress.set_position(s);
                progress.set_message(format!("{} ops", done.load(Ordering::Relaxed)));
            }
        }))
    } else {
        None
    };
    let mut latency_us = latency_histogram();
    for t in tasks {
        latency_us.add(t.await?)?;
    }
    let elapsed = start.elapsed();
    let server_cpu = cpu.finish()?;
    let client_cpu = client_cpu.finish()?.unwrap_or_default();
    if let Some(t) = ticker {
        t.abort();
    }
    progress.finish_and_clear();
    Ok(LevelResult {
        ops: done.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        latency_us,
        server_cpu,
        client_cpu,
    })
}
