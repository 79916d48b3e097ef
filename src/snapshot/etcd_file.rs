//! The buckets etcd 3.4 keeps in its backend, as `etcdctl snapshot save` receives them, built
//! from a consistent view of this member's store, and the `Maintenance.Snapshot` stream of
//! the resulting file.
//!
//! What etcd 3.4.23 writes (checked against a file saved from a real etcd 3.4.23 after the
//! same history; sources named per bucket):
//!
//! | bucket | keys → values | source |
//! |---|---|---|
//! | `alarm` | `AlarmMember` protobuf → empty | `etcdserver/api/v3alarm/alarms.go` |
//! | `auth` | `authRevision` → u64 BE (1 for a store whose auth never changed) | `auth/store.go` |
//! | `authRoles`, `authUsers` | empty (ferrokv has no auth) | `auth/store.go` |
//! | `cluster` | `clusterVersion` → `3.4.0` | `etcdserver/api/membership/store.go` |
//! | `key` | revision key (17 bytes, 18 with `t`) → `mvccpb.KeyValue` | `mvcc/kvstore.go` |
//! | `lease` | lease id u64 BE → `leasepb.Lease{ID, TTL}` | `lease/lessor.go` |
//! | `members` | member id in hex → member JSON | `etcdserver/api/membership/store.go` |
//! | `members_removed` | empty | idem |
//! | `meta` | `consistent_index` u64 BE; after a compaction `finishedCompactRev` and `scheduledCompactRev` as 17-byte revisions | `mvcc/kvstore.go`, `mvcc/kvstore_compaction.go` |
//!
//! etcd 3.4 keeps no `term` or `confState` in `meta` (3.5 does), nor `authEnabled` until
//! auth is first enabled; writing them would change what `snapshot status` counts.

use super::bbolt::{BboltError, Bucket, write_db};
use crate::cluster::{MEMBERS_KEYSPACE, Member};
use crate::mvcc::Revision;
use crate::mvcc::backend::{
    ALARM_PREFIX, KV_KEYSPACE, LEASE_KEYSPACE, META_KEYSPACE, STATE_KEY, decode_alarm,
    decode_lease, decode_state, unframe,
};
use crate::pb::etcdserverpb::{AlarmMember, SnapshotResponse};
use fjall::{KeyspaceCreateOptions, Readable};
use prost::Message;
use sha2::{Digest, Sha256};

/// The cluster version etcd 3.4 records (`membership` `clusterVersion`, major.minor.0).
pub const CLUSTER_VERSION: &str = "3.4.0";
/// Bytes of file per `SnapshotResponse` (etcd 3.4 `v3rpc/maintenance.go`
/// `snapshotSendBufferSize`, 32 KiB).
pub const CHUNK_BYTES: usize = 32 * 1024;

/// etcd's `leasepb.Lease` (`lease/leasepb/lease.proto`): the record of the `lease` bucket.
/// Defined here rather than in `proto/` because nothing else speaks it.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LeaseRecord {
    /// Lease id.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Granted TTL, seconds.
    #[prost(int64, tag = "2")]
    pub ttl: i64,
    /// TTL left at the last checkpoint, seconds (0: none; etcd 3.4 without checkpoints).
    #[prost(int64, tag = "3")]
    pub remaining_ttl: i64,
}

/// A consistent view of one member's store, taken by the `StoreActor` between two applied
/// batches, plus what the actor holds in memory at that moment.
pub struct StoreView {
    /// The member's database (to open keyspaces by name).
    pub db: fjall::Database,
    /// The cross-keyspace view.
    pub view: fjall::Snapshot,
    /// The member table at the view, ordered by id.
    pub members: Vec<Member>,
}

/// Why the etcd file could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the view failed.
    #[error("etcd snapshot: storage: {0}")]
    Storage(#[from] fjall::Error),
    /// A stored record failed its checks.
    #[error("etcd snapshot: {0}")]
    Corrupt(#[from] crate::mvcc::MvccError),
    /// The buckets could not be laid out (a bug: our keys are sorted by construction).
    #[error("etcd snapshot: {0}")]
    Layout(#[from] BboltError),
}

/// etcd's JSON for a member (`membership/member.go`: `id`, the embedded
/// `RaftAttributes` then `Attributes`, empty optional fields omitted).
#[derive(serde::Serialize)]
struct MemberJson<'a> {
    id: u64,
    #[serde(rename = "peerURLs")]
    peer_urls: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(rename = "clientURLs", skip_serializing_if = "<[String]>::is_empty")]
    client_urls: &'a [String],
    #[serde(rename = "isLearner", skip_serializing_if = "std::ops::Not::not")]
    is_learner: bool,
}

/// The buckets etcd 3.4 would hold for the store in `view` (see the module table), each
/// record checked as it is read. Errors: [`ExportError`].
pub fn buckets(view: &StoreView) -> Result<Vec<Bucket>, ExportError> {
    let open = |name: &str| view.db.keyspace(name, KeyspaceCreateOptions::default);
    let mut key = Bucket::new(b"key");
    for item in view.view.iter(&open(KV_KEYSPACE)?) {
        let (k, v) = item.into_inner()?;
        Revision::from_key(&k)?;
        key.push(k.to_vec(), unframe(&k, &v)?.to_vec());
    }
    let mut meta = Bucket::new(b"meta");
    let mut alarm_records = Vec::new();
    let mut state = None;
    for item in view.view.iter(&open(META_KEYSPACE)?) {
        let (k, v) = item.into_inner()?;
        if &*k == STATE_KEY {
            state = Some(decode_state(&v)?);
        } else if k.starts_with(ALARM_PREFIX) {
            let (member_id, alarm) = decode_alarm(&k, &v)?;
            alarm_records.push(AlarmMember { member_id, alarm }.encode_to_vec());
        }
    }
    let state = state.unwrap_or_default();
    meta.push("consistent_index", state.applied_index.to_be_bytes());
    if state.compact_revision > 0 {
        let rev = Revision::new(state.compact_revision, 0).to_key(false);
        meta.push("finishedCompactRev", rev.clone());
        meta.push("scheduledCompactRev", rev);
    }
    let mut lease = Bucket::new(b"lease");
    for item in view.view.iter(&open(LEASE_KEYSPACE)?) {
        let (k, v) = item.into_inner()?;
        let (id, ttl) = decode_lease(&k, &v)?;
        let record = LeaseRecord {
            id,
            ttl,
            remaining_ttl: 0,
        };
        lease.push(k.to_vec(), record.encode_to_vec());
    }
    let mut alarm = Bucket::new(b"alarm");
    alarm_records.sort();
    for a in alarm_records {
        alarm.push(a, Vec::new());
    }
    let mut auth = Bucket::new(b"auth");
    auth.push("authRevision", 1u64.to_be_bytes());
    let mut cluster = Bucket::new(b"cluster");
    cluster.push("clusterVersion", CLUSTER_VERSION);
    Ok(vec![
        alarm,
        auth,
        Bucket::new(b"authRoles"),
        Bucket::new(b"authUsers"),
        cluster,
        key,
        lease,
        members_bucket(&view.members),
        Bucket::new(b"members_removed"),
        meta,
    ])
}

/// `members`: hex id (no leading zeros, `types.ID.String`) → etcd's member JSON, sorted by
/// that key. The name of the keyspace ferrokv keeps them in is the bucket's own.
fn members_bucket(members: &[Member]) -> Bucket {
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = members
        .iter()
        .map(|m| {
            let json = MemberJson {
                id: m.id,
                peer_urls: &m.peer_urls,
                name: &m.name,
                client_urls: &m.client_urls,
                is_learner: m.is_learner,
            };
            let value = serde_json::to_vec(&json).expect("plain data serializes");
            (format!("{:x}", m.id).into_bytes(), value)
        })
        .collect();
    records.sort();
    Bucket {
        name: MEMBERS_KEYSPACE.as_bytes().to_vec(),
        entries: records,
    }
}

/// The whole etcd-format file of `view`. Errors: [`ExportError`].
pub fn export(view: &StoreView) -> Result<Vec<u8>, ExportError> {
    Ok(write_db(&buckets(view)?)?)
}

/// The `Maintenance.Snapshot` responses for `file`, as etcd 3.4 sends them
/// (`v3rpc/maintenance.go`): chunks of [`CHUNK_BYTES`] with `remaining_bytes` = bytes still
/// to come after this one, then one message whose blob is the file's 32-byte SHA-256 and
/// `remaining_bytes` 0. No header (etcd 3.4 sends none on this stream).
pub fn responses(file: &[u8]) -> impl Iterator<Item = SnapshotResponse> + '_ {
    let total = file.len();
    let chunks = file.chunks(CHUNK_BYTES).scan(0usize, move |sent, chunk| {
        *sent += chunk.len();
        Some(SnapshotResponse {
            header: None,
            remaining_bytes: (total - *sent) as u64,
            blob: chunk.to_vec(),
        })
    });
    let digest = SnapshotResponse {
        header: None,
        remaining_bytes: 0,
        blob: Sha256::digest(file).to_vec(),
    };
    chunks.chain(std::iter::once(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_count_down_then_carry_the_sha256() {
        use sha2::{Digest, Sha256};
        let file = vec![5u8; CHUNK_BYTES * 2 + 100];
        let msgs: Vec<_> = responses(&file).collect();
        let remaining: Vec<u64> = msgs.iter().map(|m| m.remaining_bytes).collect();
        assert_eq!(remaining, vec![CHUNK_BYTES as u64 + 100, 100, 0, 0]);
        let body: Vec<u8> = msgs[..3].iter().flat_map(|m| m.blob.clone()).collect();
        assert_eq!(body, file);
        assert_eq!(msgs[3].blob, Sha256::digest(&file).to_vec());
        assert!(msgs.iter().all(|m| m.header.is_none()));
    }
}
