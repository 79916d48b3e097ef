//! **The store never runs ahead of the durable log** (`docs/durable-log.md`): after a crash
//! the MVCC store's applied index is at most the durable commit index, and it is not below
//! what the store had durably applied before the crash.
//!
//! The server's store batches are not fsynced; they share one fjall journal with the Raft
//! log, so they become durable with the next synced log write, and an entry is applied only
//! after the hard state committing it was written. So whatever store batch survives a crash
//! was committed in the durable log, and a restart replays the lost tail from there
//! (`Config::applied`). Log compaction will rely on exactly this: the log may be truncated
//! only below what the store has durably applied.

use super::{Check, Restarted, violated};

const NAME: &str = "durable apply (docs/durable-log.md)";

/// Checks each restart; see the module docs.
#[derive(Debug, Default)]
pub struct DurableApply;

impl DurableApply {
    /// A node restarted from its disks.
    pub fn on_restart(&mut self, r: &Restarted) -> Check {
        if r.kv_applied_index > r.durable.commit {
            return violated(
                NAME,
                format!(
                    "n{} reopened its store at applied index {}, beyond its durable commit {}",
                    r.node, r.kv_applied_index, r.durable.commit
                ),
            );
        }
        if r.kv_applied_index < r.kv_synced_applied_index {
            return violated(
                NAME,
                format!(
                    "n{} reopened its store at applied index {}, below the {} it had made durable",
                    r.node, r.kv_applied_index, r.kv_synced_applied_index
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::HardState;

    fn restarted(commit: u64, applied: u64, synced: u64) -> Restarted {
        Restarted {
            node: 1,
            durable: HardState {
                term: 1,
                vote: 1,
                commit,
            },
            kv_applied_index: applied,
            kv_synced_applied_index: synced,
            kv_revision: 1,
        }
    }

    #[test]
    fn a_store_ahead_of_the_durable_commit_or_behind_its_sync_is_caught() {
        let mut inv = DurableApply;
        assert!(inv.on_restart(&restarted(5, 3, 3)).is_ok());
        assert!(inv.on_restart(&restarted(5, 5, 2)).is_ok());
        assert!(inv.on_restart(&restarted(5, 6, 2)).is_err());
        assert!(inv.on_restart(&restarted(5, 1, 2)).is_err());
    }
}
