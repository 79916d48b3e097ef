//! **Revisions rise without gaps** (etcd MVCC: "the revision is a global logical clock,
//! incremented by one for each modification of the key space"; etcd `mvcc/kvstore.go`).
//!
//! On every node, applying one entry leaves the store revision unchanged (a no-op, a read, a
//! request error, a delete of nothing, a transaction that wrote nothing) or raises it by
//! exactly one; the revision before an entry is the revision after the previous one; and a
//! store reopened after a crash is at the revision the committed sequence had at its applied
//! index. An installed snapshot image continues the sequence from its revision (checked
//! against the committed sequence by `snapshot_image.rs`).

use std::collections::BTreeMap;

use ferrokv::raft::NodeId;

use super::{Applied, Check, History, Installed, Restarted, violated};

const NAME: &str = "revisions rise without gaps (etcd MVCC)";

/// Last revision seen per node.
#[derive(Debug, Default)]
pub struct RevisionSequence {
    last: BTreeMap<NodeId, i64>,
}

impl RevisionSequence {
    /// One applied entry.
    pub fn on_applied(&mut self, a: &Applied<'_>) -> Check {
        let last = self.last.entry(a.node).or_insert(1);
        if a.revision_before != *last {
            return violated(
                NAME,
                format!(
                    "n{} was at revision {} after its previous entry but {} before index {}",
                    a.node, last, a.revision_before, a.entry.index
                ),
            );
        }
        let step = a.revision_after - a.revision_before;
        if !(0..=1).contains(&step) {
            return violated(
                NAME,
                format!(
                    "n{} went from revision {} to {} applying index {}",
                    a.node, a.revision_before, a.revision_after, a.entry.index
                ),
            );
        }
        *last = a.revision_after;
        Ok(())
    }

    /// An installed image.
    pub fn on_installed(&mut self, i: &Installed<'_>) {
        self.last.insert(i.node, i.revision_after);
    }

    /// A reopened store.
    pub fn on_restart(&mut self, r: &Restarted, history: &History) -> Check {
        let expected = history.revision_at(r.kv_applied_index);
        if expected != Some(r.kv_revision) {
            return violated(
                NAME,
                format!(
                    "n{} reopened at applied index {} with revision {}; the committed sequence \
                     has {expected:?} there",
                    r.node, r.kv_applied_index, r.kv_revision
                ),
            );
        }
        self.last.insert(r.node, r.kv_revision);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::Entry;

    #[test]
    fn a_jump_of_two_or_a_discontinuity_is_caught() {
        let entry = Entry {
            term: 1,
            index: 1,
            ..Default::default()
        };
        let applied = |before, after| Applied {
            node: 1,
            entry: &entry,
            revision_before: before,
            revision_after: after,
            applied_index_after: 1,
        };
        let mut inv = RevisionSequence::default();
        assert!(inv.on_applied(&applied(1, 2)).is_ok());
        assert!(inv.on_applied(&applied(2, 2)).is_ok());
        assert!(inv.on_applied(&applied(3, 4)).is_err());
        let mut inv = RevisionSequence::default();
        assert!(inv.on_applied(&applied(1, 3)).is_err());
    }
}
