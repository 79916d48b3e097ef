//! The watch fan-out workload: many watchers of one key spread over a number of Watch streams,
//! then puts to that key; every (put, watcher) pair's put-to-event latency goes into an HDR
//! histogram (µs). On the way it measures the memory an idle watcher costs the server: the
//! settled RSS of the members holding watchers before and after the watchers are created.
//!
//! Timing: each put's send instant is stored (ns since the phase's base instant) under its
//! sequence number, and the put's value is that number, so a stream reader that sees the event
//! knows which put it belongs to. Latency = arrival at the reader − send of the put; it covers
//! the Raft round trip, apply on the watching member and fan-out to every watcher.
//!
//! The servers' CPU time (all members) is read before the first put and after the put phase,
//! so it covers the commits, applies and fan-out of every event, not the watchers' creation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use etcd_client::{WatchRequestSender, WatchResponseStream};
use hdrhistogram::Histogram;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rand::RngCore;
use tokio::sync::Notify;

use crate::cluster::leader_index;
use crate::cpu::{CpuMeter, us_per_op};
use crate::load::{connect, latency_histogram};
use crate::memory::settled_rss;

/// Where the watch streams' connections go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// Connection `c` goes to member `c % members`: every member fans out a share.
    RoundRobin,
    /// Every connection goes to one follower (the member after the leader): one process does
    /// all the fan-out, and its events arrive after the leader's commit reaches it.
    Follower,
}

/// Shape of one watch run.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// Watchers in total, all on the same key.
    pub watchers: usize,
    /// Watch streams the watchers are spread over (as evenly as possible).
    pub streams: usize,
    /// gRPC connections the streams are spread over (round-robin).
    pub connections: usize,
    /// Puts to the watched key.
    pub puts: u64,
    /// Puts per second; `None` = paced: each put waits until every watcher got the previous.
    pub put_rate: Option<f64>,
    /// Where the watchers live.
    pub placement: Placement,
    /// How long to wait for one put's events (paced) or the last events (fixed rate).
    pub event_timeout: Duration,
    /// At most this long for the RSS to settle before each memory reading.
    pub settle_max: Duration,
}

/// Settled RSS, in bytes, of the members holding watchers, before and after creating them.
#[derive(Debug)]
pub struct MemoryResult {
    /// Member indexes measured (into the endpoint list).
    pub members: Vec<usize>,
    /// RSS per measured member before any watcher existed, bytes.
    pub before: Vec<u64>,
    /// RSS per measured member with every watcher created and idle, bytes.
    pub after: Vec<u64>,
}

impl MemoryResult {
    /// Total RSS growth over the measured members, bytes (negative when the heap shrank).
    pub fn delta_bytes(&self) -> i64 {
        self.after.iter().sum::<u64>() as i64 - self.before.iter().sum::<u64>() as i64
    }
}

/// Result of one watch run against one cluster.
#[derive(Debug)]
pub struct WatchResult {
    /// Where the watchers were, in words.
    pub placement: String,
    /// Memory per idle watcher; `None` when the server's processes are not local.
    pub memory: Option<MemoryResult>,
    /// Puts sent and acknowledged.
    pub puts: u64,
    /// Events received (one per watcher per put when nothing is lost).
    pub events: u64,
    /// `puts × watchers`.
    pub expected: u64,
    /// Responses that were not an expected event: cancellations, unknown values, streams
    /// ended by the server.
    pub errors: u64,
    /// From the first put's send to the last event's arrival.
    pub elapsed: Duration,
    /// Put-to-event latency of every received event, µs.
    pub latency_us: Histogram<u64>,
    /// CPU time of all members during the put phase, summed; `None` when not local.
    pub server_cpu: Option<Duration>,
}

impl WatchResult {
    /// Events received per second over [`WatchResult::elapsed`].
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU per received event, µs (all members together).
    pub fn cpu_us_per_event(&self) -> Option<f64> {
        us_per_op(self.server_cpu, self.events)
    }
}

/// What the stream readers and the putter share.
struct Shared {
    /// Zero point of every `*_ns` value.
    base: Instant,
    /// Send instant of put `i`, ns after `base`.
    sent_ns: Vec<AtomicU64>,
    /// Events received for put `i`.
    received: Vec<AtomicU64>,
    /// Events received in total.
    total: AtomicU64,
    /// Arrival of the latest event, ns after `base`.
    last_ns: AtomicU64,
    /// See [`WatchResult::errors`].
    errors: AtomicU64,
    /// Signalled when a put's events are complete.
    put_done: Notify,
    /// Watchers in total (events per put).
    watchers: u64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// `total` split into `parts` shares differing by at most one (the first ones larger).
fn spread(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid progress template")
        .progress_chars("=> ")
}

/// Runs the workload against the cluster at `endpoints`; `pids` are its members' processes in
/// the same order (empty for a cluster not started here: no memory reading then).
pub async fn run(
    label: &str,
    endpoints: &[String],
    pids: &[u32],
    cfg: &WatchConfig,
    bars: &MultiProgress,
) -> Result<WatchResult> {
    if cfg.watchers == 0 || cfg.streams == 0 || cfg.connections == 0 {
        bail!("--watchers, --watch-streams and --watch-connections must be positive");
    }
    let leader = leader_index(endpoints, Duration::from_secs(10)).await?;
    let (members, placement) = match cfg.placement {
        Placement::RoundRobin => {
            let used = endpoints.len().min(cfg.connections);
            (
                (0..used).collect::<Vec<_>>(),
                format!("round-robin over {used} members"),
            )
        }
        Placement::Follower => {
            if endpoints.len() < 2 {
                bail!("--watch-placement follower needs at least 2 members");
            }
            let f = (leader + 1) % endpoints.len();
            (vec![f], format!("all on follower {}", endpoints[f]))
        }
    };
    let measured_pids: Vec<u32> = members
        .iter()
        .filter_map(|&m| pids.get(m).copied())
        .collect();
    let key = format!("bench/watch/{:016x}", rand::rng().next_u64());
    let mut put_client =
        connect(&endpoints[leader..=leader], Some(Duration::from_secs(10))).await?;

    let before = if measured_pids.is_empty() {
        None
    } else {
        Some(settled_rss(&measured_pids, cfg.settle_max).await?)
    };

    let mut conns = Vec::new();
    for c in 0..cfg.connections {
        let m = members[c % members.len()];
        conns.push(connect(&endpoints[m..=m], None).await?);
    }
    let create_bar = bars.add(ProgressBar::new(cfg.watchers as u64));
    create_bar.set_style(bar_style(
        "{prefix:>22} [{bar:30}] {pos}/{len} watchers created {per_sec}",
    ));
    create_bar.set_prefix(format!("{label} watch"));
    let streams = create_watchers(&key, &conns, cfg, &create_bar).await?;
    create_bar.finish_and_clear();

    let memory = match before {
        Some(before) => Some(MemoryResult {
            members: members.clone(),
            before,
            after: settled_rss(&measured_pids, cfg.settle_max).await?,
        }),
        None => None,
    };

    let shared = Arc::new(Shared {
        base: Instant::now(),
        sent_ns: (0..cfg.puts).map(|_| AtomicU64::new(0)).collect(),
        received: (0..cfg.puts).map(|_| AtomicU64::new(0)).collect(),
        total: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        put_done: Notify::new(),
        watchers: cfg.watchers as u64,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for (tx, rx) in streams {
        senders.push(tx);
        readers.push(tokio::spawn(read_events(
            rx,
            shared.clone(),
            stop_rx.clone(),
        )));
    }

    let put_bar = bars.add(ProgressBar::new(cfg.puts));
    put_bar.set_style(bar_style(
        "{prefix:>22} [{bar:30}] {pos}/{len} puts fanned out {msg}",
    ));
    put_bar.set_prefix(format!("{label} watch"));
    let cpu = CpuMeter::start(pids)?;
    let put_outcome = match cfg.put_rate {
        None => put_paced(&mut put_client, &key, &shared, cfg.event_timeout, &put_bar).await,
        Some(rate) => {
            put_at_rate(
                &put_client,
                &key,
                &shared,
                rate,
                cfg.event_timeout,
                &put_bar,
            )
            .await
        }
    };
    let server_cpu = cpu.finish();
    put_bar.finish_and_clear();

    let _ = stop_tx.send(true);
    let mut latency_us = latency_histogram();
    for r in readers {
        latency_us.add(r.await?)?;
    }
    // Closing the request side ends each stream (etcd and ferrokv cancel its watchers).
    drop(senders);
    let _ = put_client.delete(key.as_str(), None).await;
    let puts = put_outcome?;
    let server_cpu = server_cpu?;
    let first_ns = shared
        .sent_ns
        .first()
        .map_or(0, |s| s.load(Ordering::Acquire));
    let last_ns = shared.last_ns.load(Ordering::Acquire);
    Ok(WatchResult {
        placement,
        memory,
        puts,
        events: shared.total.load(Ordering::Acquire),
        expected: puts * cfg.watchers as u64,
        errors: shared.errors.load(Ordering::Acquire),
        elapsed: Duration::from_nanos(last_ns.saturating_sub(first_ns)),
        latency_us,
        server_cpu,
    })
}

/// Opens `cfg.streams` Watch streams over `conns` and creates the watchers on them, all on
/// `key` from the next revision; returns once every watcher is confirmed `created`.
async fn create_watchers(
    key: &str,
    conns: &[etcd_client::Client],
    cfg: &WatchConfig,
    bar: &ProgressBar,
) -> Result<Vec<(WatchRequestSender, WatchResponseStream)>> {
    const CREATE_TIMEOUT: Duration = Duration::from_secs(120);
    let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
    let mut tasks = Vec::new();
    for (s, n) in spread(cfg.watchers, cfg.streams).into_iter().enumerate() {
        if n == 0 {
            continue;
        }
        let mut client = conns[s % conns.len()].clone();
        let (key, bar) = (key.to_string(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = client
                .watch(key.as_str(), None)
                .await
                .context("open watch stream")?
                .split();
            // The remaining creates go out from their own task while this one reads the
            // `created` answers, so neither side's flow-control window can stall the other.
            let more = tokio::spawn(async move {
                for _ in 1..n {
                    tx.watch(key.as_str(), None).await?;
                }
                Ok::<_, etcd_client::Error>(tx)
            });
            let mut created = 0;
            while created < n {
                let resp = tokio::time::timeout_at(deadline, rx.message())
                    .await
                    .with_context(|| format!("watchers not created within {CREATE_TIMEOUT:?}"))??
                    .context("watch stream ended while creating watchers")?;
                if resp.canceled() {
                    bail!("watch canceled on create: {}", resp.cancel_reason());
                }
                if resp.created() {
                    created += 1;
                    bar.inc(1);
                }
            }
            Ok((more.await??, rx))
        }));
    }
    let mut streams = Vec::new();
    for t in tasks {
        streams.push(t.await??);
    }
    Ok(streams)
}

/// Reads one stream until `stop`: records each event's put-to-event latency (µs).
async fn read_events(
    mut rx: WatchResponseStream,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut hist = latency_histogram();
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            m = rx.message() => m,
        };
        let resp = match msg {
            Ok(Some(resp)) => resp,
            Ok(None) | Err(_) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        if resp.canceled() {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let now_ns = shared.now_ns();
        for event in resp.events() {
            let seq = event
                .kv()
                .and_then(|kv| std::str::from_utf8(kv.value()).ok())
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&i| i < shared.sent_ns.len());
            let Some(seq) = seq else {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let sent_ns = shared.sent_ns[seq].load(Ordering::Acquire);
            hist.saturating_record((now_ns.saturating_sub(sent_ns) / 1000).max(1));
            shared.total.fetch_add(1, Ordering::AcqRel);
            shared.last_ns.fetch_max(now_ns, Ordering::AcqRel);
            if shared.received[seq].fetch_add(1, Ordering::AcqRel) + 1 == shared.watchers {
                shared.put_done.notify_one();
            }
        }
    }
    hist
}

/// Waits until `done()` holds or `timeout` passes; true when it holds. Woken by `put_done`.
async fn wait_for(shared: &Shared, timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        if tokio::time::timeout_at(deadline, shared.put_done.notified())
            .await
            .is_err()
        {
            return done();
        }
    }
    true
}

/// One put at a time; the next goes once every watcher has the previous one's event. Stops
/// early (missing events) when a put's events do not all arrive within `event_timeout`.
/// Returns the puts sent.
async fn put_paced(
    client: &mut etcd_client::Client,
    key: &str,
    shared: &Shared,
    event_timeout: Duration,
    bar: &ProgressBar,
) -> Result<u64> {
    for seq in 0..shared.sent_ns.len() {
        shared.sent_ns[seq].store(shared.now_ns(), Ordering::Release);
        client
            .put(key, seq.to_string(), None)
            .await
            .with_context(|| format!("put {seq}"))?;
        let complete = wait_for(shared, event_timeout, || {
            shared.received[seq].load(Ordering::Acquire) >= shared.watchers
        })
        .await;
        bar.inc(1);
        if !complete {
            bar.println(format!(
                "put {seq}: only {} of {} events within {event_timeout:?}; stopping",
                shared.received[seq].load(Ordering::Acquire),
                shared.watchers
            ));
            return Ok(seq as u64 + 1);
        }
    }
    Ok(shared.sent_ns.len() as u64)
}

/// Puts at `rate` per second (each put its own task, so a slow answer does not delay the
/// schedule), then waits up to `event_timeout` for the remaining events. Returns the puts sent.
async fn put_at_rate(
    client: &etcd_client::Client,
    key: &str,
    shared: &Arc<Shared>,
    rate: f64,
    event_timeout: Duration,
    bar: &ProgressBar,
) -> Result<u64> {
    if !(rate > 0.0 && rate.is_finite()) {
        bail!("--watch-put-rate must be a positive number");
    }
    let start = tokio::time::Instant::now();
    let mut puts = Vec::new();
    for seq in 0..shared.sent_ns.len() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(seq as f64 / rate)).await;
        shared.sent_ns[seq].store(shared.now_ns(), Ordering::Release);
        let (mut client, key) = (client.clone(), key.to_string());
        puts.push(tokio::spawn(async move {
            client.put(key, seq.to_string(), None).await
        }));
        bar.inc(1);
    }
    for (seq, p) in puts.into_iter().enumerate() {
        p.await?.with_context(|| format!("put {seq}"))?;
    }
    let expected = shared.watchers * shared.sent_ns.len() as u64;
    bar.set_message("waiting for the last events");
    wait_for(shared, event_timeout, || {
        shared.total.load(Ordering::Acquire) >= expected
    })
    .await;
    Ok(shared.sent_ns.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_even_and_sums_to_total() {
        assert_eq!(spread(10_000, 100), vec![100; 100]);
        assert_eq!(spread(7, 3), vec![3, 2, 2]);
        assert_eq!(spread(2, 4), vec![1, 1, 0, 0]);
    }
}
