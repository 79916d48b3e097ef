//! **Compact the log only below what the store has durably applied** (docs/snapshots.md §1,
//! docs/durable-log.md §7): the entries a durable compaction removed can no longer be
//! replayed, so a crash must find the store at or past the compaction point. The server
//! orders the compaction batch after the store batch of its snapshot point in one journal and
//! lets a later fsync make both durable; a compaction that became durable on its own (fsynced
//! early, or written before the store's batch) could outlive the store state it summarised.
//!
//! Checked whenever a node's durable log or store changed (a write or compaction made durable,
//! a restart's repair) and at every crash: durable compaction point ≤ the store's durable
//! applied index.

use super::{Check, DurableNode, violated};

const NAME: &str = "compaction below the durable applied index (docs/snapshots.md §1)";

/// Stateless: compares the two durable indexes of [`DurableNode`].
#[derive(Debug, Default)]
pub struct CompactionSafety;

impl CompactionSafety {
    /// Checks one node's durable state.
    pub fn check(&mut self, d: &DurableNode) -> Check {
        if d.compacted_through > d.store_durable_applied_index {
            return violated(
                NAME,
                format!(
                    "n{}'s durable log is compacted through {}, but its store has durably \
                     applied only {}: a crash now cannot replay the entries between",
                    d.node, d.compacted_through, d.store_durable_applied_index
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compaction_past_the_durable_store_is_caught() {
        let d = |compacted_through, store_durable_applied_index| DurableNode {
            node: 1,
            compacted_through,
            store_durable_applied_index,
        };
        let mut inv = CompactionSafety;
        assert!(inv.check(&d(0, 0)).is_ok());
        assert!(inv.check(&d(20, 20)).is_ok());
        assert!(inv.check(&d(21, 20)).is_err());
    }
}
