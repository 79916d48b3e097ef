//! The Prometheus metrics ferrokv reports, under etcd's names, help texts and types, so
//! dashboards and alerts written for etcd work unchanged. `api::http` serves them as
//! `GET /metrics` on every client URL (etcd serves `/metrics` on the client port too).
//!
//! Only metrics whose value ferrokv knows exactly are exported:
//!
//! | metric | type | value |
//! | --- | --- | --- |
//! | `etcd_debugging_mvcc_watcher_total` | gauge | watchers over all Watch streams |
//! | `etcd_debugging_mvcc_watch_stream_total` | gauge | open Watch streams |
//! | `etcd_debugging_mvcc_current_revision` | gauge | the store revision |
//! | `etcd_mvcc_db_total_size_in_bytes` | gauge | bytes the data dir's database occupies |
//! | `etcd_server_has_leader` | gauge | 1 when this member knows a leader |
//! | `etcd_server_is_leader` | gauge | 1 when this member is the leader |
//! | `etcd_server_proposals_committed_total` | gauge | the Raft commit index (etcd reports the same) |
//! | `etcd_server_proposals_applied_total` | gauge | the applied index |
//! | `etcd_server_id{server_id}` | gauge | 1, labelled with the member id in hex |
//! | `etcd_server_health_success`, `etcd_server_health_failures` | counter | `/health` verdicts |
//! | `etcd_network_snapshot_send_success`, `_send_failures` | counter | store images sent to followers, per peer (`To`, hex id), and `_send_total_duration_seconds` |
//! | `etcd_network_snapshot_receive_success`, `_receive_failures` | counter | store images received and installed, per sender (`From`), and `_receive_total_duration_seconds` |
//! | `etcd_server_snapshot_apply_in_progress_total` | gauge | 1 while a received image is being installed |
//!
//! Values are read from their owners when scraped (a [`Sample`]) instead of being updated on
//! every change: no actor carries metric handles, and a gauge cannot drift from its source.
//! The alternative, the `WatchHub` bumping gauges itself, would put metrics code on the hot
//! path of every stream open and close for a number read every 15 s or so.

use prometheus::{IntCounter, IntGauge, Opts, Registry, TextEncoder};

/// The values behind the gauges at one scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Watchers over all Watch streams.
    pub watchers: usize,
    /// Open Watch streams.
    pub streams: usize,
    /// The leader this member knows, 0 when none.
    pub leader_id: u64,
    /// This member is the leader.
    pub is_leader: bool,
    /// Raft commit index.
    pub commit_index: u64,
    /// Index of the last applied entry.
    pub applied_index: u64,
    /// Store revision.
    pub revision: i64,
    /// Database size on disk, bytes.
    pub db_size_bytes: i64,
}

/// The registry and its metrics; cheap to share behind an `Arc` (metrics are atomics).
pub struct Metrics {
    registry: Registry,
    watchers: IntGauge,
    streams: IntGauge,
    current_revision: IntGauge,
    db_total_size_bytes: IntGauge,
    has_leader: IntGauge,
    is_leader: IntGauge,
    proposals_committed: IntGauge,
    proposals_applied: IntGauge,
    health_success: IntCounter,
    health_failures: IntCounter,
}

impl Metrics {
    /// Registers every metric for member `member_id` (its `etcd_server_id` label).
    pub fn new(member_id: u64) -> Self {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric name");
            registry
                .register(Box::new(g.clone()))
                .expect("metric names are unique");
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric name");
            registry
                .register(Box::new(c.clone()))
                .expect("metric names are unique");
            c
        };
        let server_id = IntGauge::with_opts(
            Opts::new(
                "etcd_server_id",
                "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
            )
            .const_label("server_id", format!("{member_id:x}")),
        )
        .expect("valid metric name");
        server_id.set(1);
        registry
            .register(Box::new(server_id))
            .expect("metric names are unique");
        // The snapshot transfer metrics live with the transport (one process-wide set).
        for collector in crate::snapshot::TRANSFERS.collectors() {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            watchers: gauge(
                "etcd_debugging_mvcc_watcher_total",
                "Total number of watchers.",
            ),
            streams: gauge(
                "etcd_debugging_mvcc_watch_stream_total",
                "Total number of watch streams.",
            ),
            current_revision: gauge(
                "etcd_debugging_mvcc_current_revision",
                "The current revision of store.",
            ),
            db_total_size_bytes: gauge(
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
            ),
            has_leader: gauge(
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
            ),
            is_leader: gauge(
                "etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            ),
            proposals_committed: gauge(
                "etcd_server_proposals_committed_total",
                "The total number of consensus proposals committed.",
            ),
            proposals_applied: gauge(
                "etcd_server_proposals_applied_total",
                "The total number of consensus proposals applied.",
            ),
            health_success: counter(
                "etcd_server_health_success",
                "The total number of successful health checks",
            ),
            health_failures: counter(
                "etcd_server_health_failures",
                "The total number of failed health checks",
            ),
            registry,
        }
    }

    /// Counts one `/health` verdict.
    pub fn record_health(&self, healthy: bool) {
        if healthy {
            self.health_success.inc();
        } else {
            self.health_failures.inc();
        }
    }

    /// The text exposition (Prometheus format 0.0.4) of every metric with the gauges set
    /// from `sample`; metric families sorted by name.
    pub fn render(&self, sample: &Sample) -> String {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let index = |i: u64| i64::try_from(i).unwrap_or(i64::MAX);
        self.watchers.set(count(sample.watchers));
        self.streams.set(count(sample.streams));
        self.current_revision.set(sample.revision);
        self.db_total_size_bytes.set(sample.db_size_bytes);
        self.has_leader.set(i64::from(sample.leader_id != 0));
        self.is_leader.set(i64::from(sample.is_leader));
        self.proposals_committed.set(index(sample.commit_index));
        self.proposals_applied.set(index(sample.applied_index));
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("text encoding of int gauges and counters cannot fail")
    }

    /// The `Content-Type` of [`Metrics::render`]'s output.
    pub fn content_type(&self) -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

/// The JSON body of etcd's `/health` answer (etcd 3.4 `etcdhttp.Health`).
pub fn health_json(healthy: bool) -> &'static str {
    if healthy {
        r#"{"health":"true"}"#
    } else {
        r#"{"health":"false"}"#
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_uses_etcds_names_help_and_types() {
        let m = Metrics::new(0xbdae_9bbc_11dd_390d);
        m.record_health(true);
        let text = m.render(&Sample {
            watchers: 20,
            streams: 3,
            leader_id: 7,
            is_leader: true,
            commit_index: 6,
            applied_index: 5,
            revision: 4,
            db_size_bytes: 20480,
        });
        for block in [
            "# HELP etcd_debugging_mvcc_watcher_total Total number of watchers.\n\
             # TYPE etcd_debugging_mvcc_watcher_total gauge\n\
             etcd_debugging_mvcc_watcher_total 20\n",
            "# TYPE etcd_debugging_mvcc_watch_stream_total gauge\n\
             etcd_debugging_mvcc_watch_stream_total 3\n",
            "# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.\n\
             # TYPE etcd_server_has_leader gauge\netcd_server_has_leader 1\n",
            "etcd_server_is_leader 1\n",
            "etcd_server_proposals_committed_total 6\n",
            "etcd_server_proposals_applied_total 5\n",
            "etcd_debugging_mvcc_current_revision 4\n",
            "etcd_mvcc_db_total_size_in_bytes 20480\n",
            "etcd_server_id{server_id=\"bdae9bbc11dd390d\"} 1\n",
            "# TYPE etcd_server_health_success counter\netcd_server_health_success 1\n",
            "etcd_server_health_failures 0\n",
        ] {
            assert!(text.contains(block), "missing {block:?} in\n{text}");
        }
        let no_leader = m.render(&Sample::default());
        assert!(no_leader.contains("etcd_server_has_leader 0\n"));
        assert!(no_leader.contains("etcd_debugging_mvcc_watcher_total 0\n"));
    }
}
