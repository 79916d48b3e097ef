//! **Leases** (etcd `lessor`; docs/lease.md rules 1 and 2):
//!
//! - *No early expiry*: when a leader's `LeaseClock::take_expired` hands out lease `L` at time
//!   `t`, `t ≥ r + TTL` for the latest keep-alive `r` of `L` that any node's clock
//!   acknowledged — no lease expires before its TTL, measured from its last keep-alive on any
//!   leader, deposed or not. Keep-alives count per *grant*: an id revoked and granted again
//!   is a new lease, told apart by the index of the grant entry (a node's grant of `L` is the
//!   last successful grant of `L` at or below its applied index).
//! - *Revoked means gone*: after a node applies a LeaseRevoke, the lease is not in its
//!   `Kv::leases()` and no live key carries it; after a grant it is there; at the end every
//!   live key's lease (≠ 0) is in its node's table.
//! - *Convergence*: at the end every node holds the same lease table (the KV model check
//!   compares it with the model's).

use std::collections::BTreeMap;

use ferrokv::mvcc::LeaseTable;
use ferrokv::pb::mvccpb::KeyValue;
use ferrokv::raft::NodeId;

use super::{Check, violated};

const NAME: &str = "lease expiry (etcd lessor, docs/lease.md)";

/// A keep-alive a clock acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Renewal {
    node: NodeId,
    at_ms: u64,
    ttl_ms: u64,
}

/// The record the lease checks need.
#[derive(Debug, Default)]
pub struct LeaseExpiry {
    /// Per lease id, the indexes of the entries that granted it successfully, ascending.
    grants: BTreeMap<i64, Vec<u64>>,
    /// Latest acknowledged keep-alive per (lease id, grant index).
    renewals: BTreeMap<(i64, u64), Renewal>,
    /// Smallest `t - (r + TTL)` seen at an expiry that had a keep-alive, ms (how much room
    /// the rule had; negative = violated).
    pub margin_min_ms: Option<i64>,
    /// The same, counting only expiries whose last keep-alive another node acknowledged (a
    /// former leader): the room the promotion's `extend` left.
    pub margin_min_other_ms: Option<i64>,
}

impl LeaseExpiry {
    /// The grant of `id` a node that applied through `applied_index` holds.
    fn grant_index(&self, id: i64, applied_index: u64) -> Option<u64> {
        let g = self.grants.get(&id)?;
        let n = g.partition_point(|&i| i <= applied_index);
        n.checked_sub(1).map(|k| g[k])
    }

    /// A node applied a successful grant of `id` at `index`; returns whether it is the first
    /// node to (for counting).
    pub fn on_granted(&mut self, id: i64, index: u64) -> bool {
        let g = self.grants.entry(id).or_default();
        if g.last().is_some_and(|&last| last >= index) {
            return false;
        }
        g.push(index);
        true
    }

    /// `node` (applied through `applied_index`) acknowledged a keep-alive of `id` at `now_ms`.
    pub fn on_renewed(
        &mut self,
        node: NodeId,
        applied_index: u64,
        id: i64,
        ttl_secs: i64,
        now_ms: u64,
    ) {
        let Some(grant) = self.grant_index(id, applied_index) else {
            return;
        };
        let r = Renewal {
            node,
            at_ms: now_ms,
            ttl_ms: ttl_secs as u64 * 1000,
        };
        let e = self.renewals.entry((id, grant)).or_insert(r);
        if e.at_ms <= now_ms {
            *e = r;
        }
    }

    /// `node`'s clock handed out `id` as expired at `now_ms`.
    pub fn on_expired(&mut self, node: NodeId, applied_index: u64, id: i64, now_ms: u64) -> Check {
        let Some(grant) = self.grant_index(id, applied_index) else {
            return violated(
                NAME,
                format!("n{node} expired lease {id}, which no entry ≤ {applied_index} granted"),
            );
        };
        let Some(r) = self.renewals.get(&(id, grant)) else {
            return Ok(());
        };
        let margin = now_ms as i64 - (r.at_ms + r.ttl_ms) as i64;
        self.margin_min_ms = Some(self.margin_min_ms.map_or(margin, |m| m.min(margin)));
        if r.node != node {
            self.margin_min_other_ms =
                Some(self.margin_min_other_ms.map_or(margin, |m| m.min(margin)));
        }
        if margin < 0 {
            return violated(
                NAME,
                format!(
                    "n{node} expired lease {id} (granted at index {grant}) at {now_ms} ms, but \
                     n{} renewed it at {} ms with TTL {} ms: {} ms early",
                    r.node, r.at_ms, r.ttl_ms, -margin
                ),
            );
        }
        Ok(())
    }

    /// `node` applied a successful revoke of `id`: the lease and every key it held are gone.
    pub fn check_revoked(node: NodeId, id: i64, table: &LeaseTable, kvs: &[KeyValue]) -> Check {
        if table.get(id).is_some() {
            return violated(
                NAME,
                format!("n{node} still holds lease {id} after revoking it"),
            );
        }
        if let Some(kv) = kvs.iter().find(|kv| kv.lease == id) {
            return violated(
                NAME,
                format!(
                    "n{node} revoked lease {id} but key {} still carries it",
                    String::from_utf8_lossy(&kv.key)
                ),
            );
        }
        Self::check_attached(node, table, kvs)
    }

    /// `node` applied a successful grant of `id`.
    pub fn check_granted(node: NodeId, id: i64, table: &LeaseTable) -> Check {
        if table.get(id).is_none() {
            return violated(
                NAME,
                format!("n{node} granted lease {id} but does not hold it"),
            );
        }
        Ok(())
    }

    /// Every live key's lease (≠ 0) is granted on `node`, and holds the key.
    pub fn check_attached(node: NodeId, table: &LeaseTable, kvs: &[KeyValue]) -> Check {
        for kv in kvs.iter().filter(|kv| kv.lease != 0) {
            if !table
                .get(kv.lease)
                .is_some_and(|l| l.keys.contains(&kv.key))
            {
                return violated(
                    NAME,
                    format!(
                        "n{node}: live key {} carries lease {}, which its table does not list \
                         as holding it",
                        String::from_utf8_lossy(&kv.key),
                        kv.lease
                    ),
                );
            }
        }
        Ok(())
    }

    /// At the end: every node's lease table is the same.
    pub fn check_final(tables: &BTreeMap<NodeId, Vec<(i64, i64)>>) -> Check {
        let Some((first_node, first)) = tables.iter().next() else {
            return Ok(());
        };
        if let Some((node, table)) = tables.iter().find(|(_, t)| *t != first) {
            return violated(
                NAME,
                format!("n{node}'s lease table {table:?} differs from n{first_node}'s {first:?}"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_before_ttl_after_the_last_keep_alive_is_caught() {
        let mut c = LeaseExpiry::default();
        assert!(c.on_granted(3, 10));
        assert!(
            !c.on_granted(3, 10),
            "a second node applying the same grant"
        );
        c.on_renewed(1, 12, 3, 5, 20_000);
        assert!(c.on_expired(2, 12, 3, 25_000).is_ok(), "exactly TTL later");
        c.on_renewed(1, 12, 3, 5, 21_000);
        let v = c.on_expired(2, 12, 3, 25_500).unwrap_err();
        assert!(v.detail.contains("500 ms early"), "{v}");
        assert_eq!(c.margin_min_other_ms, Some(-500));
    }

    #[test]
    fn keep_alives_of_an_earlier_grant_of_the_id_do_not_count() {
        let mut c = LeaseExpiry::default();
        c.on_granted(3, 10);
        c.on_renewed(1, 15, 3, 5, 20_000);
        c.on_granted(3, 30);
        assert!(c.on_expired(2, 30, 3, 21_000).is_ok(), "a new lease");
        assert!(c.on_expired(2, 29, 3, 21_000).is_err(), "the renewed one");
        assert!(
            c.on_expired(2, 5, 3, 21_000).is_err(),
            "never granted there"
        );
    }

    #[test]
    fn a_key_left_behind_by_a_revoke_is_caught() {
        let kv = |key: &str, lease| KeyValue {
            key: key.into(),
            lease,
            ..Default::default()
        };
        let empty = LeaseTable::default();
        assert!(LeaseExpiry::check_revoked(1, 4, &empty, &[kv("a", 0)]).is_ok());
        assert!(LeaseExpiry::check_revoked(1, 4, &empty, &[kv("a", 4)]).is_err());
        assert!(LeaseExpiry::check_attached(1, &empty, &[kv("a", 5)]).is_err());
        assert!(LeaseExpiry::check_granted(1, 4, &empty).is_err());
        let tables = BTreeMap::from([(1, vec![(4, 5)]), (2, vec![])]);
        assert!(LeaseExpiry::check_final(&tables).is_err());
    }
}
