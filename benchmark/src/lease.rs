//! The lease keep-alive workload: grant `leases` leases, then keep them alive over `streams`
//! LeaseKeepAlive streams for a fixed time. Each stream carries its share of the leases (as
//! etcd's Go client multiplexes all of a client's leases on one stream) and keeps one request
//! per lease in flight: a lease's next keep-alive goes out as soon as its answer is back.
//! Latency (µs, HDR histogram) is from a request's send to its answer, so it includes waiting
//! behind the stream's other requests. The servers' CPU time (all members) is read at the start
//! and end of the keep-alive phase.
//!
//! A server without the Lease service answers `Unimplemented`; that is reported as
//! [`LeaseOutcome::Unsupported`], not as a failure of the run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cpu::{CpuMeter, us_per_op};
use crate::load::{connect, latency_histogram};

/// Shape of one lease run.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Leases granted and kept alive.
    pub leases: usize,
    /// Keep-alive streams; stream `s` connects to member `s % members`.
    pub streams: usize,
    /// How long the keep-alive phase runs.
    pub duration: Duration,
    /// TTL asked for each lease, seconds (long enough that none expires during the run).
    pub ttl_secs: i64,
}

/// Result of one lease run against one cluster.
#[derive(Debug)]
pub struct LeaseResult {
    /// Keep-alive answers with a positive TTL received within the phase.
    pub responses: u64,
    /// Answers with TTL ≤ 0 (lease not found) or for an id this stream did not send.
    pub errors: u64,
    /// Length of the keep-alive phase.
    pub elapsed: Duration,
    /// Send-to-answer latency of each counted response, µs.
    pub latency_us: Histogram<u64>,
    /// CPU time of all members during the keep-alive phase, summed; `None` when not local.
    pub server_cpu: Option<Duration>,
}

impl LeaseResult {
    /// Counted answers per second.
    pub fn responses_per_sec(&self) -> f64 {
        self.responses as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU per counted response, µs (all members together).
    pub fn cpu_us_per_response(&self) -> Option<f64> {
        us_per_op(self.server_cpu, self.responses)
    }
}

/// A measured run, or the server's reason for not serving leases.
#[derive(Debug)]
pub enum LeaseOutcome {
    /// The workload ran.
    Measured(LeaseResult),
    /// The server answered `Unimplemented` (its message attached).
    Unsupported(String),
}

/// `Some(message)` when `e` is a gRPC `Unimplemented` status.
fn unimplemented(e: &anyhow::Error) -> Option<String> {
    match e.downcast_ref::<etcd_client::Error>() {
        Some(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::Unimplemented => {
            Some(format!("Unimplemented: {}", s.message()))
        }
        _ => None,
    }
}

/// Runs the workload against the cluster at `endpoints`; `pids` are its member processes
/// (empty when not local: no CPU reading then).
pub async fn run(
    label: &str,
    endpoints: &[String],
    pids: &[u32],
    cfg: &LeaseConfig,
    bars: &MultiProgress,
) -> Result<LeaseOutcome> {
    if cfg.leases == 0 || cfg.streams == 0 || cfg.streams > cfg.leases {
        bail!("--leases and --lease-streams must be positive, with at least one lease per stream");
    }
    let unary = connect(endpoints, Some(Duration::from_secs(10))).await?;
    let grant_bar = bars.add(ProgressBar::new(cfg.leases as u64));
    grant_bar.set_style(
        ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} leases granted")?
            .progress_chars("=> "),
    );
    grant_bar.set_prefix(format!("{label} lease"));
    let granted = grant(&unary, cfg, &grant_bar).await;
    grant_bar.finish_and_clear();
    let chunks = match granted {
        Ok(chunks) => chunks,
        Err(e) => {
            return match unimplemented(&e) {
                Some(msg) => Ok(LeaseOutcome::Unsupported(msg)),
                None => Err(e.context("grant leases")),
            };
        }
    };

    let bar = bars.add(ProgressBar::new(cfg.duration.as_secs().max(1)));
    bar.set_style(
        ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} s keep-alive")?
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{label} lease"));
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                bar.inc(1);
            }
        })
    };
    let mut clients = Vec::new();
    for s in 0..chunks.len() {
        let m = s % endpoints.len();
        clients.push(connect(&endpoints[m..=m], None).await?);
    }
    let cpu = CpuMeter::start(pids)?;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = Vec::new();
    for (client, ids) in clients.into_iter().zip(&chunks) {
        tasks.push(tokio::spawn(keep_alive_stream(
            client,
            ids.clone(),
            deadline,
        )));
    }
    let mut outcome = Ok(LeaseResult {
        responses: 0,
        errors: 0,
        elapsed: cfg.duration,
        latency_us: latency_histogram(),
        server_cpu: None,
    });
    for t in tasks {
        match (t.await?, &mut outcome) {
            (Ok((hist, responses, errors)), Ok(r)) => {
                r.latency_us.add(hist)?;
                r.responses += responses;
                r.errors += errors;
            }
            (Err(e), Ok(_)) => outcome = Err(e),
            (_, Err(_)) => {}
        }
    }
    let server_cpu = cpu.finish();
    ticker.abort();
    bar.finish_and_clear();
    revoke(&unary, &chunks).await;
    if let Ok(r) = &mut outcome {
        r.server_cpu = server_cpu.context("server CPU reading")?;
    }
    match outcome {
        Ok(r) => Ok(LeaseOutcome::Measured(r)),
        Err(e) => match unimplemented(&e) {
            Some(msg) => Ok(LeaseOutcome::Unsupported(msg)),
            None => Err(e.context("keep-alive")),
        },
    }
}

/// Grants `cfg.leases` leases, one granting task per stream; returns each stream's ids.
async fn grant(
    client: &etcd_client::Client,
    cfg: &LeaseConfig,
    bar: &ProgressBar,
) -> Result<Vec<Vec<i64>>> {
    let mut tasks = Vec::new();
    for s in 0..cfg.streams {
        let n = cfg.leases / cfg.streams + usize::from(s < cfg.leases % cfg.streams);
        let (mut client, bar, ttl) = (client.clone(), bar.clone(), cfg.ttl_secs);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(client.lease_grant(ttl, None).await?.id());
                bar.inc(1);
            }
            Ok::<_, etcd_client::Error>(ids)
        }));
    }
    let mut chunks = Vec::new();
    for t in tasks {
        chunks.push(t.await??);
    }
    Ok(chunks)
}

/// Keeps `ids` alive on one stream until `deadline`: one request per lease in flight. Returns
/// the latency histogram (µs), the counted answers and the errors.
async fn keep_alive_stream(
    client: etcd_client::Client,
    ids: Vec<i64>,
    deadline: Instant,
) -> Result<(Histogram<u64>, u64, u64)> {
    // Opening the stream sends (and awaits) a first keep-alive for ids[0]; not measured.
    let (mut keeper, mut stream) = client.lease_client().keep_alive(ids[0]).await?;
    let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut sent_at = vec![Instant::now(); ids.len()];
    let (mut hist, mut responses, mut errors) = (latency_histogram(), 0u64, 0u64);
    for (i, &id) in ids.iter().enumerate() {
        // `LeaseKeeper` sends for its `id`; pointing it at each lease in turn multiplexes
        // them on this stream.
        keeper.id = id;
        sent_at[i] = Instant::now();
        keeper.keep_alive().await?;
    }
    let sleep_deadline = tokio::time::Instant::from_std(deadline);
    loop {
        let msg = tokio::select! {
            m = stream.message() => m?,
            _ = tokio::time::sleep_until(sleep_deadline) => break,
        };
        let resp = msg.context("server ended the keep-alive stream")?;
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let Some(&i) = index.get(&resp.id()) else {
            errors += 1;
            continue;
        };
        if resp.ttl() > 0 {
            hist.saturating_record((now - sent_at[i]).as_micros().max(1) as u64);
            responses += 1;
        } else {
            errors += 1;
        }
        keeper.id = resp.id();
        sent_at[i] = now;
        keeper.keep_alive().await?;
    }
    Ok((hist, responses, errors))
}

/// Revokes the granted leases (best effort, bounded): an existing cluster is left as found.
async fn revoke(client: &etcd_client::Client, chunks: &[Vec<i64>]) {
    let mut tasks = tokio::task::JoinSet::new();
    for ids in chunks {
        let (mut client, ids) = (client.clone(), ids.clone());
        tasks.spawn(async move {
            for id in ids {
                let _ = client.lease_revoke(id).await;
            }
        });
    }
    // Dropping the set on timeout aborts whatever is left.
    let _ = tokio::time::timeout(Duration::from_secs(30), tasks.join_all()).await;
}
