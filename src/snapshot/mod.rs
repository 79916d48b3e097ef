//! Snapshots: the state-machine half of Raft log compaction (docs/snapshots.md).
//!
//! The Raft core only knows a snapshot's metadata (`SnapshotMeta`: index, term, conf state).
//! What a follower needs besides is the store at that index: the [`image`] the leader cuts from
//! a consistent view of its keyspaces and streams over the peer transport.
//!
//! Backups are another format: [`etcd_file`] lays the store out in the buckets etcd 3.4 keeps
//! and [`bbolt`] writes them as a bbolt file, what `Maintenance.Snapshot` streams to
//! `etcdctl snapshot save` (docs/snapshots.md §4). The way back in is [`restore`] (reading such
//! a file, from ferrokv or from etcd, with [`bbolt_reader`]) behind the `ferrokv snapshot`
//! commands of [`cli`] (docs/snapshots.md §5).

pub mod bbolt;
pub mod bbolt_reader;
pub mod cli;
pub mod etcd_file;
pub mod image;
pub mod restore;

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};
use std::sync::LazyLock;
use std::time::Duration;

/// Image transfers since the process started, per peer, as etcd's `rafthttp` metrics name them
/// (`etcd_network_snapshot_send_success{To}`, `_send_failures{To}`,
/// `_send_total_duration_seconds{To}`, and the `receive` ones labelled `From`; peers by hex id)
/// plus `etcd_server_snapshot_apply_in_progress_total`. Process-wide (one member per process):
/// the transport counts here, and [`crate::metrics::Metrics`] registers these collectors.
pub struct TransferStats {
    send_success: IntCounterVec,
    send_failures: IntCounterVec,
    send_seconds: HistogramVec,
    receive_success: IntCounterVec,
    receive_failures: IntCounterVec,
    receive_seconds: HistogramVec,
    /// Images being installed right now (0 or 1: one store).
    applying: IntGauge,
}

/// This process's transfer counts.
pub static TRANSFERS: LazyLock<TransferStats> = LazyLock::new(TransferStats::new);

impl TransferStats {
    fn new() -> Self {
        let counter = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
        };
        // etcd's buckets for both durations: 0.1 s doubling 14 times (to ~27 min).
        let seconds = |name: &str, help: &str, label: &str| {
            let buckets = prometheus::exponential_buckets(0.1, 2.0, 14).expect("valid buckets");
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &[label])
                .expect("valid metric")
        };
        TransferStats {
            send_success: counter(
                "etcd_network_snapshot_send_success",
                "Total number of successful snapshot sends",
                "To",
            ),
            send_failures: counter(
                "etcd_network_snapshot_send_failures",
                "Total number of snapshot send failures",
                "To",
            ),
            send_seconds: seconds(
                "etcd_network_snapshot_send_total_duration_seconds",
                "Total latency distributions of v3 snapshot sends",
                "To",
            ),
            receive_success: counter(
                "etcd_network_snapshot_receive_success",
                "Total number of successful snapshot receives",
                "From",
            ),
            receive_failures: counter(
                "etcd_network_snapshot_receive_failures",
                "Total number of snapshot receive failures",
                "From",
            ),
            receive_seconds: seconds(
                "etcd_network_snapshot_receive_total_duration_seconds",
                "Total latency distributions of v3 snapshot receives",
                "From",
            ),
            applying: IntGauge::new(
                "etcd_server_snapshot_apply_in_progress_total",
                "1 if the server is applying the incoming snapshot. 0 if none.",
            )
            .expect("valid metric"),
        }
    }

    /// Counts one image sent to `to` (`ok`, taking `elapsed`) or one send that failed.
    pub fn sent(&self, to: u64, ok: bool, elapsed: Duration) {
        let peer = format!("{to:x}");
        if ok {
            self.send_success.with_label_values(&[&peer]).inc();
            self.send_seconds
                .with_label_values(&[&peer])
                .observe(elapsed.as_secs_f64());
        } else {
            self.send_failures.with_label_values(&[&peer]).inc();
        }
    }

    /// Counts one image received from `from` and installed (`ok`, taking `elapsed`) or one
    /// receive that failed (`from` = 0 when the stream failed before naming its sender).
    pub fn received(&self, from: u64, ok: bool, elapsed: Duration) {
        let peer = format!("{from:x}");
        if ok {
            self.receive_success.with_label_values(&[&peer]).inc();
            self.receive_seconds
                .with_label_values(&[&peer])
                .observe(elapsed.as_secs_f64());
        } else {
            self.receive_failures.with_label_values(&[&peer]).inc();
        }
    }

    /// Marks an image install under way until the guard drops.
    pub fn applying(&'static self) -> impl Drop {
        struct Applying(&'static IntGauge);
        impl Drop for Applying {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        self.applying.inc();
        Applying(&self.applying)
    }

    /// Whether an image is being installed now.
    pub fn is_applying(&self) -> bool {
        self.applying.get() > 0
    }

    /// The collectors, for a registry to serve.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.send_success.clone()),
            Box::new(self.send_failures.clone()),
            Box::new(self.send_seconds.clone()),
            Box::new(self.receive_success.clone()),
            Box::new(self.receive_failures.clone()),
            Box::new(self.receive_seconds.clone()),
            Box::new(self.applying.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_are_counted_per_peer_with_etcds_labels() {
        let stats = TransferStats::new();
        stats.sent(0xab, true, Duration::from_millis(300));
        stats.sent(0xab, false, Duration::ZERO);
        stats.received(0xcd, true, Duration::from_secs(2));
        let registry = prometheus::Registry::new();
        for c in stats.collectors() {
            registry.register(c).unwrap();
        }
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        for line in [
            "etcd_network_snapshot_send_success{To=\"ab\"} 1",
            "etcd_network_snapshot_send_failures{To=\"ab\"} 1",
            "etcd_network_snapshot_send_total_duration_seconds_count{To=\"ab\"} 1",
            "etcd_network_snapshot_receive_success{From=\"cd\"} 1",
            "etcd_network_snapshot_receive_total_duration_seconds_sum{From=\"cd\"} 2",
            "etcd_server_snapshot_apply_in_progress_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let guard = TRANSFERS.applying();
        assert!(TRANSFERS.is_applying());
        drop(guard);
        assert!(!TRANSFERS.is_applying());
    }
}
