//! **The store follows etcd's KV semantics** (etcd 3.4 `applierV3backend`): replaying the
//! committed sequence through the naive [`KvModel`](crate::oracle::KvModel) gives the same
//! revision after every entry as the nodes reached, and the same final key space
//! (value, `create_revision`, `mod_revision`, `version`, `lease` of every live key) and lease
//! table as every node's.
//! Checked once, at the end of the liveness phase, when all nodes have converged.

use ferrokv::pb::peerpb::InternalRequest;
use prost::Message as _;

use super::{Check, Final, History, violated};
use crate::oracle::KvModel;

const NAME: &str = "MVCC state agrees with the etcd KV model";

/// The end-of-run comparison.
#[derive(Debug, Default)]
pub struct KvModelAgreement;

impl KvModelAgreement {
    /// Replays `history.committed` and compares.
    pub fn check(f: &Final<'_>, history: &History) -> Check {
        let mut model = KvModel::default();
        for (i, c) in history.committed.iter().enumerate() {
            let index = i + 1;
            if !c.data.is_empty() {
                let request =
                    InternalRequest::decode(c.data.as_slice()).map_err(|e| super::Violation {
                        invariant: NAME,
                        detail: format!("committed entry {index} does not decode: {e}"),
                    })?;
                model.apply(&request).map_err(|e| super::Violation {
                    invariant: NAME,
                    detail: format!("index {index}: {e}"),
                })?;
            }
            if model.revision != c.revision {
                return violated(
                    NAME,
                    format!(
                        "after index {index} the nodes are at revision {}, the model at {}",
                        c.revision, model.revision
                    ),
                );
            }
        }
        let expected = model.key_values();
        for (node, got) in f.key_spaces {
            if *got != expected {
                let first_diff = got
                    .iter()
                    .zip(&expected)
                    .find(|(g, e)| g != e)
                    .map(|(g, e)| format!("node has {g:?}, model has {e:?}"))
                    .unwrap_or_else(|| {
                        format!("node has {} keys, model has {}", got.len(), expected.len())
                    });
                return violated(
                    NAME,
                    format!("n{node}'s final key space differs: {first_diff}"),
                );
            }
        }
        let leases: Vec<(i64, i64)> = model.leases.into_iter().collect();
        for (node, got) in f.lease_tables {
            if *got != leases {
                return violated(
                    NAME,
                    format!("n{node}'s lease table is {got:?}, the model's {leases:?}"),
                );
            }
        }
        Ok(())
    }
}
