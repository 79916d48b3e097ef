//! The KV workloads — `put`, `range` and `txn-put` — as rows of the closed-loop load in
//! [`crate::load`], and their tables. Rows run in order with the servers interleaved within a
//! row, so both see similar machine conditions; each row has its own connections, a warm-up
//! and then the measured phase, whose server CPU time is read from `/proc`.
//!
//! How connections reach the members:
//! - `put`, `txn-put`: each connection balances over every member's endpoint (the etcd
//!   client's default); followers forward writes to the leader, as etcd's do.
//! - `range`: connection *c* goes to member *c* mod *members* (8 connections on 3 members:
//!   3, 3 and 2 of them, each with 8 of the 64 clients). Balancing would leave the spread to
//!   the client's load balancer, which need not split reads evenly nor the same way for both
//!   servers; pinning fixes every member's share, so the followers' read path (a ReadIndex
//!   round trip to the leader for a linearizable read, their own store for a serializable one)
//!   carries the same part of the row for both servers and in every run, as with the watch
//!   workload's round-robin placement.

use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar};
use rand::RngCore;

use crate::Target;
use crate::check::{Figures, Observed};
use crate::load::{self, Budget, LevelResult, Op};
use crate::report::{Table, ratio};

/// How a row's connections reach the members.
#[derive(Clone, Copy, Debug)]
pub enum Spread {
    /// Every connection balances over all endpoints.
    Balanced,
    /// Connection `c` goes to member `c % members` only.
    Pinned,
}

/// One row of a KV workload: what each client does, how many clients, over what connections.
#[derive(Clone, Debug)]
pub struct Level {
    /// The row's name within its workload (`linearizable`); empty when clients tell rows apart.
    pub name: &'static str,
    pub op: Op,
    pub clients: usize,
    pub connections: usize,
    pub spread: Spread,
}

/// A KV workload: its rows and how each is measured.
#[derive(Clone, Debug)]
pub struct KvWorkload {
    /// `put`, `range`, `txn-put`.
    pub name: &'static str,
    /// Table title, without the ratio note.
    pub title: String,
    /// Header of the `Level::name` column; `None` hides the column.
    pub name_header: Option<&'static str>,
    pub levels: Vec<Level>,
    pub budget: Budget,
    /// Unmeasured ops before each row.
    pub warmup_ops: u64,
}

/// One server's result in one row (index into [`KvWorkload::levels`]).
pub struct RowResult {
    pub server: String,
    pub level: usize,
    pub result: Result<LevelResult>,
}

/// Opens `level`'s connections to `t`.
async fn connect(t: &Target, level: &Level) -> Result<Vec<etcd_client::Client>> {
    match level.spread {
        Spread::Balanced => load::connect_all(&t.endpoints, level.connections).await,
        Spread::Pinned => {
            let mut conns = Vec::new();
            for c in 0..level.connections.max(1) {
                let m = c % t.endpoints.len();
                conns.push(load::connect_all(&t.endpoints[m..=m], 1).await?.remove(0));
            }
            Ok(conns)
        }
    }
}

/// Warm-up and measured phase of one row against one server.
async fn run_one(
    w: &KvWorkload,
    level: &Level,
    t: &Target,
    bars: &MultiProgress,
) -> Result<LevelResult> {
    let conns = connect(t, level).await?;
    if w.warmup_ops > 0 {
        let bar = bars.add(ProgressBar::hidden());
        let budget = Budget::Ops(w.warmup_ops);
        load::run_level(&conns, &[], level.clients, &level.op, budget, bar).await?;
    }
    let bar = bars.add(ProgressBar::new(0));
    bar.set_prefix(format!("{} {} x{}", t.label, w.name, level.clients));
    load::run_level(&conns, &t.pids, level.clients, &level.op, w.budget, bar).await
}

/// Runs every row of `w` against every target; a failure is that server's row, not the run's.
pub async fn run(w: &KvWorkload, targets: &[&Target], bars: &MultiProgress) -> Vec<RowResult> {
    let mut rows = Vec::new();
    for (i, level) in w.levels.iter().enumerate() {
        for t in targets {
            let result = run_one(w, level, t, bars).await;
            let line = match &result {
                Ok(r) => format!(
                    "{:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  cpu {} µs/op  ({} ops, {} errors)",
                    r.ops_per_sec(),
                    r.quantile_ms(0.50),
                    r.quantile_ms(0.99),
                    fmt_opt(r.cpu_us_per_op(), 1),
                    r.ops,
                    r.errors
                ),
                Err(e) => format!("error: {e:#}"),
            };
            let _ = bars.println(format!("{:<8} {}: {line}", t.label, row_words(w, level)));
            rows.push(RowResult {
                server: t.label.clone(),
                level: i,
                result,
            });
        }
    }
    rows
}

/// `range linearizable x64`, `put x16`.
fn row_words(w: &KvWorkload, level: &Level) -> String {
    match level.name {
        "" => format!("{} x{}", w.name, level.clients),
        name => format!("{} {name} x{}", w.name, level.clients),
    }
}

/// `v` with `decimals` decimals, or `n/a`.
fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

/// `label`'s successful result in row `level`.
fn find<'a>(rows: &'a [RowResult], label: &str, level: usize) -> Option<&'a LevelResult> {
    rows.iter()
        .find(|r| r.server == label && r.level == level)
        .and_then(|r| r.result.as_ref().ok())
}

/// The workload's table: one line per server and row, ratios on ferrokv's lines.
pub fn table(w: &KvWorkload, rows: &[RowResult]) -> String {
    let mut header = vec!["server"];
    header.extend(w.name_header);
    header.extend([
        "clients",
        "ops",
        "errors",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "cpu µs/op",
        "client µs/op",
        "ops/s",
        "cpu/op",
    ]);
    let mut table = Table::new(format!("{} (ratios ferrokv/etcd)", w.title), &header);
    for (i, level) in w.levels.iter().enumerate() {
        let (f, e) = (find(rows, "ferrokv", i), find(rows, "etcd", i));
        for row in rows.iter().filter(|r| r.level == i) {
            let r = match &row.result {
                Ok(r) => r,
                Err(err) => {
                    table.note_row(&row.server, format!("error: {err:#}"));
                    continue;
                }
            };
            let mut cells = vec![row.server.clone()];
            cells.extend(w.name_header.map(|_| level.name.to_string()));
            cells.extend([
                level.clients.to_string(),
                r.ops.to_string(),
                r.errors.to_string(),
                format!("{:.0}", r.ops_per_sec()),
                format!("{:.2}", r.quantile_ms(0.50)),
                format!("{:.2}", r.quantile_ms(0.99)),
                fmt_opt(r.cpu_us_per_op(), 1),
                fmt_opt(r.client_us_per_op(), 1),
            ]);
            if row.server == "ferrokv" {
                cells.push(ratio(
                    f.map(LevelResult::ops_per_sec),
                    e.map(LevelResult::ops_per_sec),
                ));
                cells.push(ratio(
                    f.and_then(LevelResult::cpu_us_per_op),
                    e.and_then(LevelResult::cpu_us_per_op),
                ));
            }
            table.row(cells);
        }
    }
    table.render()
}

/// The rows as `--check` sees them; only `range` rows have a p50 bound (they are reads).
pub fn observed(w: &KvWorkload, rows: &[RowResult]) -> Vec<Observed> {
    let figures = |r: &LevelResult| Figures {
        rate: r.ops_per_sec(),
        p50_ms: r.quantile_ms(0.50),
    };
    let of = |label: &str, i: usize| rows.iter().find(|r| r.server == label && r.level == i);
    w.levels
        .iter()
        .enumerate()
        .map(|(i, level)| Observed {
            row: row_words(w, level),
            unit: "ops/s",
            p50_bounded: matches!(level.op, Op::Get { .. }),
            ferrokv: of("ferrokv", i).map(|r| match &r.result {
                Ok(r) => Ok(figures(r)),
                Err(e) => Err(format!("{e:#}")),
            }),
            etcd: find(rows, "etcd", i).map(figures),
        })
        .collect()
}

/// The keys `range` reads: `bench/range/<6 digits>`, the same for every server.
pub fn range_keys(n: usize) -> Arc<Vec<String>> {
    Arc::new((0..n).map(|i| format!("bench/range/{i:06}")).collect())
}

/// Puts every key of `keys` with a random `value_bytes` value, 16 at a time, through one
/// connection balanced over `t`'s members.
pub async fn populate(t: &Target, keys: &Arc<Vec<String>>, value_bytes: usize) -> Result<()> {
    const WRITERS: usize = 16;
    let client = load::connect_all(&t.endpoints, 1).await?.remove(0);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (mut client, keys) = (client.clone(), keys.clone());
        tasks.spawn(async move {
            let mut value = vec![0u8; value_bytes];
            for key in keys.iter().skip(w).step_by(WRITERS) {
                rand::rng().fill_bytes(&mut value);
                client
                    .put(key.as_str(), value.clone(), None)
                    .await
                    .with_context(|| format!("populate {key}"))?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    for r in tasks.join_all().await {
        r?;
    }
    Ok(())
}
