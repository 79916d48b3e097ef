//! **Linearizable reads** (Raft thesis §6.4, etcd's default `Range` consistency): a read
//! served through ReadIndex reflects every write acknowledged before the read began.
//!
//! When a read starts, the workload notes the highest index of any acknowledged write (its
//! *floor*). The read index Raft confirms must be at least that floor, and the node must
//! serve the read from a store that applied at least the read index, at the revision the
//! committed sequence has there. A stale leader answering from its own commit index, or a new
//! leader answering before it committed an entry of its term, fails the first check.

use super::{Check, History, violated};
use crate::workload::PendingRead;

const NAME: &str = "linearizable reads (Raft thesis §6.4)";

/// A read the moment it is served.
#[derive(Debug)]
pub struct ServedRead<'a> {
    /// Read id (its ReadIndex context).
    pub id: u64,
    /// The read, with its floor and confirmed read index.
    pub read: &'a PendingRead,
    /// The serving store's applied index.
    pub applied_index: u64,
    /// The revision the serving store answered at.
    pub revision: i64,
}

/// Stateless: checks each served read.
#[derive(Debug, Default)]
pub struct LinearizableReads;

impl LinearizableReads {
    /// Checks one served read.
    pub fn check(s: &ServedRead<'_>, history: &History) -> Check {
        let read_index = s.read.read_index.unwrap_or(0);
        if read_index < s.read.acked_floor {
            return violated(
                NAME,
                format!(
                    "read {} on n{} got read index {read_index}, below index {} of a write \
                     acknowledged before the read began",
                    s.id, s.read.node, s.read.acked_floor
                ),
            );
        }
        if s.applied_index < read_index {
            return violated(
                NAME,
                format!(
                    "read {} on n{} served at applied index {} before its read index {read_index}",
                    s.id, s.read.node, s.applied_index
                ),
            );
        }
        let expected = history.revision_at(s.applied_index);
        if expected != Some(s.revision) {
            return violated(
                NAME,
                format!(
                    "read {} on n{} answered at revision {}; the committed sequence has \
                     {expected:?} at applied index {}",
                    s.id, s.read.node, s.revision, s.applied_index
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
    fn a_read_index_below_an_acknowledged_write_is_caught() {
        let history = History::default();
        let read = PendingRead {
            node: 1,
            incarnation: 1,
            key: b"k".to_vec(),
            acked_floor: 5,
            read_index: Some(4),
            started_at: 0,
        };
        let served = ServedRead {
            id: 1,
            read: &read,
            applied_index: 0,
            revision: 1,
        };
        assert!(LinearizableReads::check(&served, &history).is_err());
        let covered = PendingRead {
            acked_floor: 0,
            read_index: Some(0),
            ..read.clone()
        };
        let served = ServedRead {
            read: &covered,
            ..served
        };
        assert!(LinearizableReads::check(&served, &history).is_ok());
    }
}
