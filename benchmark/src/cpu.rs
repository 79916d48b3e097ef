//! CPU time of server processes, read from Linux's `/proc/PID/stat`: `utime` + `stime`
//! (fields 14 and 15, in clock ticks), summed over every thread of the process by the kernel.
//! A [`CpuMeter`] reads every member before a measured phase and again after it; the difference
//! divided by the phase's operations is the server CPU one operation costs, which moves far less
//! than ops/s on a machine shared with other work (a stolen core slows the clock, not the work).
//!
//! The resolution is one clock tick per process (10 ms at the usual 100 Hz), so a phase should
//! cost the servers at least a few hundred ms of CPU for the figure to be worth two digits.
//! The alternative, summing `/proc/PID/task/*/schedstat` (ns), would be finer but misses the
//! threads that exited during the phase; `utime`/`stime` of the process keep them.

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Clock ticks per second of `/proc/PID/stat`'s times (`sysconf(_SC_CLK_TCK)`, 100 on every
/// common Linux build; 100 as well when sysconf cannot tell).
pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions; it reads a constant of the running system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// `utime + stime` of one `/proc/PID/stat` line, in clock ticks.
///
/// The second field (`comm`) is in parentheses and may itself hold spaces or `)`, so the fields
/// are counted from the last `)`: the next one is field 3 (`state`), making `utime` (field 14)
/// the 12th after it.
fn parse_stat_ticks(stat: &str) -> Result<u64> {
    let rest = match stat.rfind(')') {
        Some(i) => &stat[i + 1..],
        None => bail!("no `)` closing comm in {stat:?}"),
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    const UTIME: usize = 14 - 3;
    const STIME: usize = 15 - 3;
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("stat line too short: {stat:?}"))?
            .parse()
            .with_context(|| format!("field {} not a number in {stat:?}", i + 3))
    };
    Ok(field(UTIME)? + field(STIME)?)
}

/// `utime + stime` of process `pid` so far, in clock ticks. Errors when the process is gone.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_stat_ticks(&stat).with_context(|| format!("parse {path}"))
}

/// CPU readings of a set of server processes at the start of a measured phase.
#[derive(Debug)]
pub struct CpuMeter {
    pids: Vec<u32>,
    start_ticks: Vec<u64>,
}

impl CpuMeter {
    /// Reads every pid now. An empty `pids` (a cluster not started here) gives a meter whose
    /// [`CpuMeter::finish`] is `None`.
    pub fn start(pids: &[u32]) -> Result<CpuMeter> {
        Ok(CpuMeter {
            pids: pids.to_vec(),
            start_ticks: pids.iter().map(|&p| cpu_ticks(p)).collect::<Result<_>>()?,
        })
    }

    /// CPU time the processes used since [`CpuMeter::start`], summed over them; `None` when
    /// there are none to read. Errors when one of them is gone.
    pub fn finish(&self) -> Result<Option<Duration>> {
        if self.pids.is_empty() {
            return Ok(None);
        }
        let mut ticks = 0;
        for (&pid, &start) in self.pids.iter().zip(&self.start_ticks) {
            ticks += cpu_ticks(pid)?.saturating_sub(start);
        }
        Ok(Some(Duration::from_secs_f64(
            ticks as f64 / ticks_per_sec() as f64,
        )))
    }
}

/// Server CPU per operation, µs: `cpu` spread over `ops`; `None` without a reading or ops.
pub fn us_per_op(cpu: Option<Duration>, ops: u64) -> Option<f64> {
    match cpu {
        Some(cpu) if ops > 0 => Some(cpu.as_secs_f64() * 1e6 / ops as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_paren_of_comm() {
        // comm "a) b" holds a space and a paren; utime 7, stime 5.
        let line = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 9 0 1000 1 1";
        assert_eq!(parse_stat_ticks(line).unwrap(), 12);
        assert!(parse_stat_ticks("42 (x) S 1").is_err());
    }

    #[test]
    fn this_process_has_a_reading_and_a_missing_pid_errors() {
        assert!(cpu_ticks(std::process::id()).is_ok());
        // Pid numbers wrap below /proc/sys/kernel/pid_max (at most 2^22), so this one is free.
        assert!(cpu_ticks(u32::MAX - 1).is_err());
        assert!(CpuMeter::start(&[]).unwrap().finish().unwrap().is_none());
    }

    #[test]
    fn per_op_needs_a_reading_and_ops() {
        assert_eq!(us_per_op(Some(Duration::from_millis(30)), 1000), Some(30.0));
        assert_eq!(us_per_op(Some(Duration::from_millis(30)), 0), None);
        assert_eq!(us_per_op(None, 1000), None);
    }
}
