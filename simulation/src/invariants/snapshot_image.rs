//! **An installed image is the committed state at its index** (Raft §7: "the snapshot
//! replaces the state machine's state up to the last included index"; state machine safety,
//! §5.4.3, for a store that did not apply entries one by one).
//!
//! When a node installs a leader's store image for snapshot point (`index`, `term`):
//! - `term` is the term of the committed entry at `index`;
//! - the reopened store's applied index is `index` and its revision is the one the committed
//!   sequence reached there ([`History::revision_at`]);
//! - its live key space (value, `create_revision`, `mod_revision`, `version`, `lease` of every
//!   key) and lease table equal the naive [`KvModel`](crate::oracle::KvModel)'s after replaying
//!   the committed sequence through `index` — the same oracle the final check uses, so an
//!   image that lost, kept or invented a write is caught at the install, not only at the end.

use ferrokv::pb::peerpb::InternalRequest;
use prost::Message as _;

use super::{Check, History, Installed, Violation, violated};
use crate::oracle::KvModel;

const NAME: &str = "snapshot image is the committed state (Raft §7)";

/// Stateless: replays [`History::committed`] on each install.
#[derive(Debug, Default)]
pub struct SnapshotImage;

impl SnapshotImage {
    /// Checks one install; see the module docs.
    pub fn check(i: &Installed<'_>, history: &History) -> Check {
        let index = i.meta.index;
        let Some(committed) = history.committed.get(..index as usize) else {
            return violated(
                NAME,
                format!(
                    "n{} installed an image of index {index}, but the applied sequence ends \
                     at {}",
                    i.node,
                    history.committed.len()
                ),
            );
        };
        let at = committed.last().map_or(0, |c| c.term);
        if at != i.meta.term {
            return violated(
                NAME,
                format!(
                    "n{} installed snapshot {}/{index}, but the committed entry there has term \
                     {at}",
                    i.node, i.meta.term
                ),
            );
        }
        let revision = history.revision_at(index);
        if i.applied_index_after != index || Some(i.revision_after) != revision {
            return violated(
                NAME,
                format!(
                    "n{}'s store holds applied index {} and revision {} after installing the \
                     image of index {index}; the committed sequence has revision {revision:?} \
                     there",
                    i.node, i.applied_index_after, i.revision_after
                ),
            );
        }
        let mut model = KvModel::default();
        for (k, c) in committed
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.data.is_empty())
        {
            let request = InternalRequest::decode(c.data.as_slice()).map_err(|e| Violation {
                invariant: NAME,
                detail: format!("committed entry {} does not decode: {e}", k + 1),
            })?;
            model.apply(&request).map_err(|e| Violation {
                invariant: NAME,
                detail: format!("index {}: {e}", k + 1),
            })?;
        }
        let expected = model.key_values();
        if i.key_space != expected.as_slice() {
            let diff = i
                .key_space
                .iter()
                .zip(&expected)
                .find(|(g, e)| g != e)
                .map(|(g, e)| format!("image has {g:?}, model has {e:?}"))
                .unwrap_or_else(|| {
                    format!(
                        "image has {} keys, model {}",
                        i.key_space.len(),
                        expected.len()
                    )
                });
            return violated(
                NAME,
                format!(
                    "n{}'s installed image of index {index} differs: {diff}",
                    i.node
                ),
            );
        }
        let leases: Vec<(i64, i64)> = model.leases.into_iter().collect();
        if i.leases != leases.as_slice() {
            return violated(
                NAME,
                format!(
                    "n{}'s installed image of index {index} has leases {:?}, the model {leases:?}",
                    i.node, i.leases
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::CommittedEntry;
    use ferrokv::pb::mvccpb::KeyValue;
    use ferrokv::raft::{ConfState, SnapshotMeta};

    #[test]
    fn an_image_ahead_of_or_different_from_the_committed_state_is_caught() {
        let mut history = History::default();
        history.committed.push(CommittedEntry {
            term: 2,
            data: vec![],
            revision: 1,
        });
        let meta = SnapshotMeta {
            index: 1,
            term: 2,
            conf_state: ConfState::from_voters([1]),
        };
        let installed = |meta, revision_after, key_space| Installed {
            node: 2,
            meta,
            applied_index_before: 0,
            revision_before: 1,
            applied_index_after: 1,
            revision_after,
            key_space,
            leases: &[],
        };
        assert!(SnapshotImage::check(&installed(&meta, 1, &[]), &history).is_ok());
        assert!(SnapshotImage::check(&installed(&meta, 2, &[]), &history).is_err());
        let stray = [KeyValue {
            key: b"k".to_vec(),
            ..Default::default()
        }];
        assert!(SnapshotImage::check(&installed(&meta, 1, &stray), &history).is_err());
        let ahead = SnapshotMeta {
            index: 2,
            ..meta.clone()
        };
        assert!(SnapshotImage::check(&installed(&ahead, 1, &[]), &history).is_err());
        let other_term = SnapshotMeta {
            term: 3,
            ..meta.clone()
        };
        assert!(SnapshotImage::check(&installed(&other_term, 1, &[]), &history).is_err());
    }
}
