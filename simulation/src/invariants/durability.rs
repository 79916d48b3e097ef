//! **Durability of acknowledged writes** (etcd's guarantee: a write the client saw succeed
//! is committed and survives any minority of failures).
//!
//! At the end of the liveness phase, for every acknowledged request:
//! - the committed sequence holds exactly that request at the index it was acknowledged at,
//!   and the revision the client was told is the revision reached there;
//! - for an acknowledged Put: unless a later committed entry may write the same key (a Put,
//!   a DeleteRange covering it, or either branch of a Txn touching it — acknowledged or not,
//!   since an unacknowledged request may still have committed), and no later revoke of the
//!   Put's lease, every node's final value of the key is the Put's value.

use ferrokv::pb::peerpb::{InternalRequest, internal_request::Request};
use prost::Message as _;

use super::{Check, Final, History, violated};
use crate::oracle::{covers, keys_written};

const NAME: &str = "durability of acknowledged writes";

/// The end-of-run check.
#[derive(Debug, Default)]
pub struct Durability;

impl Durability {
    /// Checks every acknowledgement in `f` against `history` and the final key spaces.
    pub fn check(f: &Final<'_>, history: &History) -> Check {
        let decoded: Vec<Option<InternalRequest>> = history
            .committed
            .iter()
            .map(|c| InternalRequest::decode(c.data.as_slice()).ok())
            .collect();
        for ack in f.acks {
            let id = ack.request.id;
            let at = ack.index as usize;
            let committed = at
                .checked_sub(1)
                .and_then(|i| decoded.get(i))
                .and_then(|d| d.as_ref());
            if committed != Some(&ack.request) {
                return violated(
                    NAME,
                    format!(
                        "request {id} was acknowledged by n{} at index {at}, but the committed \
                         entry there is {committed:?}",
                        ack.node
                    ),
                );
            }
            if let Ok(revision) = ack.result {
                let reached = history.revision_at(ack.index);
                if reached != Some(revision) {
                    return violated(
                        NAME,
                        format!(
                            "request {id} was answered with revision {revision}, but index {at} \
                             reached {reached:?}"
                        ),
                    );
                }
            }
            let (Some(Request::Put(put)), Ok(_)) = (&ack.request.request, &ack.result) else {
                continue;
            };
            // A revoke of the put's lease deletes the key if no later put replaced it.
            let overwritten = decoded[at..].iter().flatten().any(|later| {
                matches!(&later.request, Some(Request::LeaseRevoke(r)) if put.lease != 0 && r.id == put.lease)
                    || keys_written(later)
                        .iter()
                        .any(|(start, end)| covers(start, end, &put.key))
            });
            if overwritten {
                continue;
            }
            for (node, kvs) in f.key_spaces {
                let value = kvs.iter().find(|kv| kv.key == put.key).map(|kv| &kv.value);
                if value != Some(&put.value) {
                    return violated(
                        NAME,
                        format!(
                            "acknowledged put {id} of {} = {} (index {at}) is lost on n{node}: \
                             it holds {:?}",
                            String::from_utf8_lossy(&put.key),
                            String::from_utf8_lossy(&put.value),
                            value.map(|v| String::from_utf8_lossy(v).into_owned())
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}
