//! `--check`: after the run, ferrokv's rows against two bounds, so a regression fails a script
//! or CI job instead of hiding in a table.
//!
//! - A read (`range`) or watch p50 of [`P50_MS_MAX`] or more. ferrokv once had every read wait
//!   ~44 ms: with Nagle's algorithm on, a connection carrying several small responses held the
//!   next one back until the client's delayed ACK (~40 ms) came in. TCP_NODELAY on accepted
//!   connections fixed it; a p50 near 40 ms is that stall's signature, while a healthy read on
//!   127.0.0.1 is well under 10 ms even on a loaded 2-core machine.
//! - A throughput below [`RATE_RATIO_MIN`] times etcd's in the same row (same run, same
//!   machine conditions), for every row with a throughput: put, range, txn-put, watch, lease.
//!
//! A ferrokv row that failed or was unsupported fails the check too: a check that passes
//! because the workload never ran would hide exactly what it guards.

/// A ferrokv read or watch p50 at or above this fails the check, ms.
pub const P50_MS_MAX: f64 = 30.0;

/// A ferrokv throughput below this fraction of etcd's fails the check.
pub const RATE_RATIO_MIN: f64 = 0.5;

/// One server's figures in one row.
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    /// Throughput, in the row's unit per second.
    pub rate: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
}

/// One table row as the check sees it.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The row, in words (`range linearizable x64`).
    pub row: String,
    /// What `rate` counts (`ops/s`, `events/s`).
    pub unit: &'static str,
    /// Whether the p50 bound applies (reads and watch events).
    pub p50_bounded: bool,
    /// ferrokv's figures, or why there are none; `None` when ferrokv was not run.
    pub ferrokv: Option<Result<Figures, String>>,
    /// etcd's figures; `None` when etcd was not run or failed (then no ratio is checked).
    pub etcd: Option<Figures>,
}

/// Every bound `rows` break, one message each; empty when the check passes. A run without a
/// single ferrokv row fails as well (nothing was checked).
pub fn failures(rows: &[Observed]) -> Vec<String> {
    let mut out = Vec::new();
    for o in rows {
        let f = match &o.ferrokv {
            None => continue,
            Some(Err(why)) => {
                out.push(format!("{}: ferrokv has no figures ({why})", o.row));
                continue;
            }
            Some(Ok(f)) => f,
        };
        if o.p50_bounded && f.p50_ms >= P50_MS_MAX {
            out.push(format!(
                "{}: ferrokv p50 {:.2} ms >= {P50_MS_MAX} ms (the ~44 ms stall of Nagle's \
                 algorithm + delayed ACK is back? accepted connections need TCP_NODELAY)",
                o.row, f.p50_ms
            ));
        }
        if let Some(e) = o.etcd.filter(|e| e.rate > 0.0)
            && f.rate < RATE_RATIO_MIN * e.rate
        {
            out.push(format!(
                "{}: ferrokv {:.0} {} is {:.2}x etcd's {:.0} (below {RATE_RATIO_MIN}x)",
                o.row,
                f.rate,
                o.unit,
                f.rate / e.rate,
                e.rate
            ));
        }
    }
    if !rows.iter().any(|o| o.ferrokv.is_some()) {
        out.push("no ferrokv results to check (run with --servers both or ferrokv)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p50_bounded: bool, f: Option<Result<Figures, String>>, e: Option<f64>) -> Observed {
        Observed {
            row: "r".into(),
            unit: "ops/s",
            p50_bounded,
            ferrokv: f,
            etcd: e.map(|rate| Figures { rate, p50_ms: 1.0 }),
        }
    }

    fn fig(rate: f64, p50_ms: f64) -> Option<Result<Figures, String>> {
        Some(Ok(Figures { rate, p50_ms }))
    }

    #[test]
    fn healthy_rows_pass() {
        let rows = [
            row(true, fig(1000.0, 2.0), Some(1500.0)),
            row(false, fig(800.0, 60.0), Some(1000.0)),
        ];
        assert!(failures(&rows).is_empty(), "{:?}", failures(&rows));
    }

    #[test]
    fn a_44_ms_read_fails_but_a_slow_put_does_not() {
        assert_eq!(failures(&[row(true, fig(1000.0, 44.0), None)]).len(), 1);
        assert_eq!(failures(&[row(true, fig(1000.0, 30.0), None)]).len(), 1);
        assert!(failures(&[row(false, fig(1000.0, 44.0), None)]).is_empty());
    }

    #[test]
    fn half_of_etcds_rate_is_the_floor() {
        assert!(failures(&[row(false, fig(500.0, 1.0), Some(1000.0))]).is_empty());
        assert_eq!(
            failures(&[row(false, fig(499.0, 1.0), Some(1000.0))]).len(),
            1
        );
        // etcd failed or idle: no ratio to check.
        assert!(failures(&[row(false, fig(1.0, 1.0), None)]).is_empty());
        assert!(failures(&[row(false, fig(1.0, 1.0), Some(0.0))]).is_empty());
    }

    #[test]
    fn a_failed_ferrokv_row_or_no_ferrokv_at_all_fails() {
        assert_eq!(
            failures(&[row(false, Some(Err("boom".into())), None)]).len(),
            1
        );
        assert_eq!(failures(&[row(false, None, Some(1.0))]).len(), 1);
        assert_eq!(failures(&[]).len(), 1);
    }
}
