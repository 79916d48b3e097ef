//! **A store never goes back** (Raft Figure 2: `lastApplied` "increases monotonically"; etcd:
//! a member's revision never decreases), across snapshot installs and restarts.
//!
//! - Within an incarnation: applying an entry or installing an image never lowers the store's
//!   applied index or revision, and an image is installed only if it is strictly ahead of the
//!   store (installing one at or below the applied index would move it back — the `StoreActor`
//!   refuses, and so must the simulator's transport).
//! - Across crashes: a reopened store is at or past the highest applied index and revision it
//!   ever held *durably* (its synced batches before any crash, and every installed image,
//!   which is written synced). It may be below what it held in memory: unsynced batches are
//!   lost and replayed from the log (`durable_apply.rs`).

use std::collections::BTreeMap;

use ferrokv::raft::NodeId;

use super::{Applied, Check, Installed, Restarted, violated};

const NAME: &str = "store never goes back (Raft Figure 2)";

#[derive(Debug, Default)]
struct Seen {
    /// Applied index and revision in this incarnation.
    applied_index: u64,
    revision: i64,
    /// The highest applied index and revision ever durable.
    durable_applied_index: u64,
    durable_revision: i64,
}

/// Highest store positions seen per node.
#[derive(Debug, Default)]
pub struct StoreProgress {
    nodes: BTreeMap<NodeId, Seen>,
}

impl StoreProgress {
    /// One applied entry.
    pub fn on_applied(&mut self, a: &Applied<'_>) -> Check {
        let seen = self.nodes.entry(a.node).or_default();
        if a.applied_index_after < seen.applied_index || a.revision_after < seen.revision {
            return violated(
                NAME,
                format!(
                    "n{} went from applied index {} / revision {} to {} / {} applying index {}",
                    a.node,
                    seen.applied_index,
                    seen.revision,
                    a.applied_index_after,
                    a.revision_after,
                    a.entry.index
                ),
            );
        }
        seen.applied_index = a.applied_index_after;
        seen.revision = a.revision_after;
        Ok(())
    }

    /// One installed image (durable at once).
    pub fn on_installed(&mut self, i: &Installed<'_>) -> Check {
        let seen = self.nodes.entry(i.node).or_default();
        if i.applied_index_after <= i.applied_index_before || i.revision_after < i.revision_before {
            return violated(
                NAME,
                format!(
                    "n{} installed an image that moved its store from applied index {} / \
                     revision {} to {} / {}",
                    i.node,
                    i.applied_index_before,
                    i.revision_before,
                    i.applied_index_after,
                    i.revision_after
                ),
            );
        }
        seen.applied_index = i.applied_index_after;
        seen.revision = i.revision_after;
        seen.durable_applied_index = seen.durable_applied_index.max(i.applied_index_after);
        seen.durable_revision = seen.durable_revision.max(i.revision_after);
        Ok(())
    }

    /// A crash: what the store kept durably.
    pub fn on_crash(&mut self, node: NodeId, durable_applied_index: u64, durable_revision: i64) {
        let seen = self.nodes.entry(node).or_default();
        seen.durable_applied_index = seen.durable_applied_index.max(durable_applied_index);
        seen.durable_revision = seen.durable_revision.max(durable_revision);
    }

    /// A reopened store.
    pub fn on_restart(&mut self, r: &Restarted) -> Check {
        let seen = self.nodes.entry(r.node).or_default();
        if r.kv_applied_index < seen.durable_applied_index || r.kv_revision < seen.durable_revision
        {
            return violated(
                NAME,
                format!(
                    "n{} reopened its store at applied index {} / revision {}, below the {} / \
                     {} it once held durably",
                    r.node,
                    r.kv_applied_index,
                    r.kv_revision,
                    seen.durable_applied_index,
                    seen.durable_revision
                ),
            );
        }
        seen.applied_index = r.kv_applied_index;
        seen.revision = r.kv_revision;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::{ConfState, HardState, SnapshotMeta};

    #[test]
    fn an_install_behind_the_store_or_a_restart_below_a_durable_image_is_caught() {
        let meta = SnapshotMeta {
            index: 10,
            term: 1,
            conf_state: ConfState::from_voters([1]),
        };
        let installed = |before, after| Installed {
            node: 1,
            meta: &meta,
            applied_index_before: before,
            revision_before: 3,
            applied_index_after: after,
            revision_after: 5,
            key_space: &[],
            leases: &[],
        };
        let mut inv = StoreProgress::default();
        assert!(inv.on_installed(&installed(10, 10)).is_err(), "not ahead");
        assert!(inv.on_installed(&installed(4, 10)).is_ok());
        inv.on_crash(1, 7, 4);
        let restarted = |applied, revision| Restarted {
            node: 1,
            durable: HardState::default(),
            kv_applied_index: applied,
            kv_synced_applied_index: applied,
            kv_revision: revision,
        };
        assert!(
            inv.on_restart(&restarted(9, 5)).is_err(),
            "the image was durable"
        );
        assert!(inv.on_restart(&restarted(10, 5)).is_ok());
    }
}
