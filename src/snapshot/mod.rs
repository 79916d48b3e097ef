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

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of image transfers since the process started, for `/metrics` (etcd's
/// `etcd_network_snapshot_send_success` / `_failures` and `_receive_success` / `_failures`, here
/// summed over peers). Process-wide: one member per process.
#[derive(Debug, Default)]
pub struct TransferStats {
    send_success: AtomicU64,
    send_failures: AtomicU64,
    receive_success: AtomicU64,
    receive_failures: AtomicU64,
    /// Images being installed right now (0 or 1: one store).
    applying: AtomicU64,
}

/// This process's transfer counts.
pub static TRANSFERS: TransferStats = TransferStats {
    send_success: AtomicU64::new(0),
    send_failures: AtomicU64::new(0),
    receive_success: AtomicU64::new(0),
    receive_failures: AtomicU64::new(0),
    applying: AtomicU64::new(0),
};

impl TransferStats {
    /// Counts one image sent (`ok`) or one send that failed.
    pub fn sent(&self, ok: bool) {
        let c = if ok {
            &self.send_success
        } else {
            &self.send_failures
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one image received and installed (`ok`) or one receive that failed.
    pub fn received(&self, ok: bool) {
        let c = if ok {
            &self.receive_success
        } else {
            &self.receive_failures
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks an image install under way until the guard drops.
    pub fn applying(&'static self) -> impl Drop {
        struct Applying(&'static AtomicU64);
        impl Drop for Applying {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.applying.fetch_add(1, Ordering::Relaxed);
        Applying(&self.applying)
    }

    /// Whether an image is being installed now.
    pub fn is_applying(&self) -> bool {
        self.applying.load(Ordering::Relaxed) > 0
    }

    /// (send success, send failures, receive success, receive failures).
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        (
            self.send_success.load(Ordering::Relaxed),
            self.send_failures.load(Ordering::Relaxed),
            self.receive_success.load(Ordering::Relaxed),
            self.receive_failures.load(Ordering::Relaxed),
        )
    }
}
