//! The put load: `clients` concurrent tasks, each issuing one KV.Put at a time (random 16-hex
//! key under `bench/`, `value_bytes` random bytes), until a shared op budget or a deadline is
//! used up. Latencies go into per-task HDR histograms (µs), merged at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngCore;

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
    /// Concurrent clients.
    pub clients: usize,
    /// Acknowledged puts.
    pub ops: u64,
    /// Failed puts (retried with a new key).
    pub errors: u64,
    /// Wall time of the level.
    pub elapsed: Duration,
    /// Latency of acknowledged puts, µs.
    pub latency_us: Histogram<u64>,
}

impl LevelResult {
    /// Acknowledged puts per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
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

/// Runs one level: `clients` tasks over `conns`, `value_bytes`-byte values, until `budget`.
pub async fn run_level(
    conns: &[etcd_client::Client],
    clients: usize,
    value_bytes: usize,
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
                    "{prefix:>22} [{bar:30}] {pos}/{len} puts {per_sec} eta {eta}",
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
    let start = Instant::now();
    let deadline = match budget {
        Budget::Duration(d) => Some(start + d),
        Budget::Ops(_) => None,
    };
    let mut tasks = Vec::new();
    for t in 0..clients {
        let mut client = conns[t % conns.len()].clone();
        let (claimed, done, errors) = (claimed.clone(), done.clone(), errors.clone());
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = latency_histogram();
            let mut value = vec![0u8; value_bytes];
            loop {
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
                let key = format!("bench/{:016x}", rand::rng().next_u64());
                rand::rng().fill_bytes(&mut value);
                let t0 = Instant::now();
                match client.put(key, value.clone(), None).await {
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
                        // The op budget slot is given back so the level still does n puts.
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
                progress.set_message(format!("{} puts", done.load(Ordering::Relaxed)));
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
    if let Some(t) = ticker {
        t.abort();
    }
    progress.finish_and_clear();
    Ok(LevelResult {
        clients,
        ops: done.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        latency_us,
    })
}
