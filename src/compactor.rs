//! Automatic compaction (`--auto-compaction-mode`, `--auto-compaction-retention`), with etcd
//! 3.4's rules (`etcdserver/api/v3compactor`): only the leader compacts; a member that is not
//! leader pauses and resumes where it was when it leads again.
//!
//! - **periodic** (retention a duration `P`; a bare integer means hours): every `P/10` (at most
//!   6 min) the current revision is sampled, keeping the last `P/(P/10) + 1` samples, so the
//!   oldest is the revision of about `P` ago. Once `P` has passed since start (later: since the
//!   last success, capped at 1 h), the leader compacts to the oldest sample. A failure retries
//!   at the next sample.
//! - **revision** (retention `R` revisions): every 5 minutes the leader compacts to
//!   `current − R`, unless that is ≤ 0 or what it compacted last time.
//!
//! A compaction that fails because the revision is already compacted counts as done, as in
//! etcd. [`AutoCompactor`] is the pure core (time passed in as a `Duration` since start);
//! [`run`] drives it from a tokio task and proposes through [`Api::compact`]'s path.

use std::collections::VecDeque;
use std::time::Duration;

use crate::api::Api;
use crate::mvcc::MvccError;
use crate::pb::etcdserverpb::CompactionRequest;
use crate::pb::peerpb::internal_request;

/// How the retention is counted (etcd `CompactorModePeriodic` / `CompactorModeRevision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep about this much history in time.
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(i64),
}

/// etcd's `v3compactor.revInterval`: how often revision mode looks.
pub const REVISION_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Periodic mode's compaction interval is the retention, capped at this (etcd).
const PERIODIC_INTERVAL_CAP: Duration = Duration::from_secs(3600);
/// Periodic mode samples the revision this many times per compaction interval (etcd).
const RETRY_DIVISOR: u32 = 10;

/// The decisions of automatic compaction; see the module docs.
#[derive(Debug)]
pub struct AutoCompactor {
    mode: AutoCompaction,
    /// Periodic: the sampled revisions, oldest first.
    revs: VecDeque<i64>,
    /// Periodic: when the last compaction succeeded (start counts as one).
    last_success: Duration,
    /// Periodic: how long after `last_success` the next compaction is due: the retention
    /// until the first one, then the (capped) compaction interval.
    base_interval: Duration,
    /// Revision: the revision last compacted.
    prev: i64,
}

impl AutoCompactor {
    /// A compactor started at time zero. `Periodic(0)` / `Revision(0)` are not automatic
    /// compaction at all: the caller does not create one (etcd: retention 0 disables).
    pub fn new(mode: AutoCompaction) -> AutoCompactor {
        let base_interval = match mode {
            AutoCompaction::Periodic(period) => period,
            AutoCompaction::Revision(_) => REVISION_INTERVAL,
        };
        AutoCompactor {
            mode,
            revs: VecDeque::new(),
            last_success: Duration::ZERO,
            base_interval,
            prev: 0,
        }
    }

    /// How often [`AutoCompactor::step`] is to be called: periodic `min(P, 1 h) / 10`,
    /// revision 5 min.
    pub fn interval(&self) -> Duration {
        match self.mode {
            AutoCompaction::Periodic(period) => period.min(PERIODIC_INTERVAL_CAP) / RETRY_DIVISOR,
            AutoCompaction::Revision(_) => REVISION_INTERVAL,
        }
    }

    fn retentions(&self, period: Duration) -> usize {
        let interval = self.interval().as_nanos().max(1);
        (period.as_nanos() / interval) as usize + 1
    }

    /// Records that `current_revision` was the store's revision one interval ago (periodic
    /// mode samples at the start of each interval, as etcd does before it waits). Call once
    /// per interval, before [`AutoCompactor::step`].
    pub fn sample(&mut self, current_revision: i64) {
        if let AutoCompaction::Periodic(period) = self.mode {
            self.revs.push_back(current_revision);
            while self.revs.len() > self.retentions(period) {
                self.revs.pop_front();
            }
        }
    }

    /// At `now` (since start), with the store at `current_revision`: the revision to compact
    /// to, if one is due and this member leads. Report the outcome with
    /// [`AutoCompactor::compacted`] or [`AutoCompactor::failed`].
    pub fn step(&mut self, now: Duration, current_revision: i64, is_leader: bool) -> Option<i64> {
        if !is_leader {
            return None; // paused (etcd `Pause` on losing leadership); samples go on
        }
        match self.mode {
            AutoCompaction::Periodic(period) => {
                if now.saturating_sub(self.last_success) < self.base_interval {
                    return None;
                }
                if self.base_interval == period {
                    self.base_interval = period.min(PERIODIC_INTERVAL_CAP);
                }
                self.revs.front().copied()
            }
            AutoCompaction::Revision(retention) => {
                let rev = current_revision - retention;
                (rev > 0 && rev != self.prev).then_some(rev)
            }
        }
    }

    /// The compaction to `rev` succeeded, or failed as already compacted (both are done).
    pub fn compacted(&mut self, now: Duration, rev: i64) {
        match self.mode {
            AutoCompaction::Periodic(_) => self.last_success = now,
            AutoCompaction::Revision(_) => self.prev = rev,
        }
    }

    /// The compaction failed otherwise (no leader, timeout): retried at the next interval.
    pub fn failed(&mut self) {}

    /// The mode it was made with.
    pub fn mode(&self) -> AutoCompaction {
        self.mode
    }
}

/// Runs `compactor` for the life of the member: every interval, sample the store revision,
/// and when a compaction is due and this member leads, propose `Compaction{revision}` through
/// Raft like a client's `KV.Compact`. Logs etcd's messages ("starting auto periodic
/// compaction", "completed auto periodic compaction", "failed auto periodic compaction", and
/// the revision-mode equivalents).
pub async fn run(mut compactor: AutoCompactor, api: Api) {
    let start = tokio::time::Instant::now();
    let (kind, retention) = match compactor.mode() {
        AutoCompaction::Periodic(p) => ("periodic", format!("{p:?}")),
        AutoCompaction::Revision(r) => ("revision", r.to_string()),
    };
    tracing::info!(
        mode = kind,
        retention = %retention,
        interval = ?compactor.interval(),
        "auto compaction enabled"
    );
    loop {
        compactor.sample(api.current_revision());
        tokio::time::sleep(compactor.interval()).await;
        let now = start.elapsed();
        let status = api.raft_status();
        let Some(rev) = compactor.step(now, api.current_revision(), status.is_leader) else {
            continue;
        };
        tracing::info!(revision = rev, mode = kind, retention = %retention, "starting auto {kind} compaction");
        let request = internal_request::Request::Compaction(CompactionRequest {
            revision: rev,
            physical: false,
        });
        match api.apply(request).await {
            Ok(_) => {
                tracing::info!(revision = rev, "completed auto {kind} compaction");
                compactor.compacted(now, rev);
            }
            Err(e) if e.message() == MvccError::Compacted.to_string() => {
                tracing::info!(
                    revision = rev,
                    "completed auto {kind} compaction (already compacted)"
                );
                compactor.compacted(now, rev);
            }
            Err(e) => {
                tracing::warn!(
                    revision = rev,
                    retry_interval = ?compactor.interval(),
                    error = %e.message(),
                    "failed auto {kind} compaction"
                );
                compactor.failed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Drives a periodic compactor like [`run`] with the store revision at `rev(t)` and this
    /// member leading while `leads(t)`; returns `(time, revision)` of each compaction.
    fn simulate(
        mode: AutoCompaction,
        until: Duration,
        rev: impl Fn(Duration) -> i64,
        leads: impl Fn(Duration) -> bool,
    ) -> Vec<(Duration, i64)> {
        let mut c = AutoCompactor::new(mode);
        let mut now = Duration::ZERO;
        let mut done = Vec::new();
        while now < until {
            c.sample(rev(now));
            now += c.interval();
            if let Some(r) = c.step(now, rev(now), leads(now)) {
                c.compacted(now, r);
                done.push((now, r));
            }
        }
        done
    }

    #[test]
    fn periodic_compacts_to_the_revision_of_one_period_ago() {
        // 10 s retention, one revision per second: samples every 1 s; the first compaction
        // once 10 s have passed, to the revision sampled 10 s earlier; then every 10 s.
        let done = simulate(
            AutoCompaction::Periodic(secs(10)),
            secs(35),
            |t| 1 + t.as_secs() as i64,
            |_| true,
        );
        assert_eq!(done, [(secs(10), 1), (secs(20), 10), (secs(30), 20)]);
    }

    #[test]
    fn periodic_over_an_hour_compacts_hourly_keeping_the_whole_period() {
        // 3 h retention: samples every 6 min, the last 31 kept (3 h of history); the first
        // compaction after 3 h, then hourly, each to the oldest sample kept.
        let minute = |m: u64| Duration::from_secs(60 * m);
        let done = simulate(
            AutoCompaction::Periodic(minute(180)),
            minute(300),
            |t| 1 + (t.as_secs() / 60) as i64, // one revision a minute
            |_| true,
        );
        assert_eq!(
            done,
            [(minute(180), 1), (minute(240), 55), (minute(300), 115)]
        );
    }

    #[test]
    fn only_the_leader_compacts_and_a_new_leader_resumes() {
        // Not leading from 10 s to 25 s: nothing then; compaction resumes at the next
        // interval it leads, to the sample of about one period before.
        let done = simulate(
            AutoCompaction::Periodic(secs(10)),
            secs(30),
            |t| 1 + t.as_secs() as i64,
            |t| !(secs(10)..secs(25)).contains(&t),
        );
        assert_eq!(done, [(secs(25), 15)]);
    }

    #[test]
    fn revision_mode_keeps_the_last_retention_revisions() {
        let mut c = AutoCompactor::new(AutoCompaction::Revision(100));
        assert_eq!(c.interval(), REVISION_INTERVAL);
        assert_eq!(c.step(secs(300), 50, true), None, "nothing to compact yet");
        assert_eq!(
            c.step(secs(300), 150, false),
            None,
            "followers never compact"
        );
        assert_eq!(c.step(secs(300), 150, true), Some(50));
        c.failed();
        assert_eq!(
            c.step(secs(600), 150, true),
            Some(50),
            "a failure is retried"
        );
        c.compacted(secs(600), 50);
        assert_eq!(
            c.step(secs(900), 150, true),
            None,
            "no writes: already there"
        );
        assert_eq!(c.step(secs(1200), 400, true), Some(300));
    }
}
