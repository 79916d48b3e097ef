//! Resident memory of server processes, read from Linux's `/proc/PID/status` (`VmRSS`), and a
//! "settled" reading: sampled until it stops moving, so a measurement taken right after a burst
//! of work does not catch allocations still in flight.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Resident set size of process `pid`, in bytes (the kernel reports `VmRSS` in KiB).
///
/// Errors when the process is gone or the line is missing (non-Linux systems).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .with_context(|| format!("no VmRSS line in {path}"))?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad VmRSS line in {path}: {line:?}"))?;
    Ok(kib * 1024)
}

/// Samples the RSS of every pid each `SAMPLE_INTERVAL` and returns the first reading whose
/// total moved less than `STABLE_FRACTION` over the last `STABLE_SAMPLES` samples, or the last
/// reading once `max_wait` has passed. One value per pid, in bytes.
pub async fn settled_rss(pids: &[u32], max_wait: Duration) -> Result<Vec<u64>> {
    const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);
    const STABLE_SAMPLES: usize = 3;
    const STABLE_FRACTION: f64 = 0.005;
    if pids.is_empty() {
        bail!("no server process to measure");
    }
    let deadline = Instant::now() + max_wait;
    let mut totals: Vec<u64> = Vec::new();
    loop {
        let reading = pids
            .iter()
            .map(|&p| rss_bytes(p))
            .collect::<Result<Vec<u64>>>()?;
        totals.push(reading.iter().sum());
        let recent = &totals[totals.len().saturating_sub(STABLE_SAMPLES)..];
        let (lo, hi) = (
            *recent.iter().min().unwrap_or(&0),
            *recent.iter().max().unwrap_or(&0),
        );
        let stable =
            recent.len() == STABLE_SAMPLES && (hi - lo) as f64 <= hi as f64 * STABLE_FRACTION;
        if stable || Instant::now() >= deadline {
            return Ok(reading);
        }
        tokio::time::sleep(SAMPLE_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_of_this_process_is_positive_and_missing_pid_errors() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        // Pid numbers wrap below /proc/sys/kernel/pid_max (at most 2^22), so this one is free.
        assert!(rss_bytes(u32::MAX - 1).is_err());
    }
}
