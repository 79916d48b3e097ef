//! Splitting one large watch response into fragments (etcd 3.4 v3rpc `sendFragments`), for
//! watches created with `WatchCreateRequest.fragment = true`.
//!
//! ```text
//!   response (events e1 … e9, encoded ≥ limit)
//!     ├─ fragment = true   e1 e2 e3      each part: as many events as stay below the limit,
//!     ├─ fragment = true   e4 e5 e6 e7   at least one; header, watch id, … copied
//!     └─ fragment = false  e8 e9         the last part closes the response
//! ```
//!
//! A client that asked for fragments concatenates the events of consecutive responses of a
//! watch until one has `fragment = false` (clientv3 does this). A watch that did not ask gets
//! every response whole, however large (etcd does the same); the client's receive limit is
//! then its problem.

use crate::pb::etcdserverpb::WatchResponse;
use crate::pb::mvccpb::Event;
use prost::Message as _;

/// Bytes of the protobuf key of `WatchResponse.events` (field 11, length-delimited).
const EVENTS_KEY_BYTES: usize = 1;

/// Encoded size of `event` as one element of `WatchResponse.events`, bytes.
fn event_field_bytes(event: &Event) -> usize {
    let len = event.encoded_len();
    EVENTS_KEY_BYTES + prost::length_delimiter_len(len) + len
}

/// The responses to send for `response` on a watch that asked for fragments.
///
/// `limit_bytes` is the size a response must stay below (etcd: `--max-request-bytes` plus its
/// 512 KiB gRPC overhead). A response whose encoding is below it, or that has fewer than two
/// events, goes whole. Otherwise its events are cut into consecutive runs, each the longest
/// that keeps the encoded fragment (header and `fragment = true` included) below
/// `limit_bytes`, but at least one event; every fragment but the last has `fragment = true`.
/// All other fields (header, watch id, …) are copied into every fragment.
///
/// Invariant: concatenating the events of the result gives `response.events`.
pub fn split(mut response: WatchResponse, limit_bytes: usize) -> Vec<WatchResponse> {
    if response.events.len() < 2 || response.encoded_len() < limit_bytes {
        return vec![response];
    }
    let events = std::mem::take(&mut response.events);
    let template = WatchResponse {
        fragment: true,
        ..response
    };
    // A protobuf message is the concatenation of its fields, so a fragment's size is the
    // template's plus each event's field: no re-encoding per event (etcd re-encodes).
    let base_bytes = template.encoded_len();
    let mut out = Vec::new();
    let mut current = template.clone();
    let mut current_bytes = base_bytes;
    for event in events {
        let bytes = event_field_bytes(&event);
        if !current.events.is_empty() && current_bytes + bytes >= limit_bytes {
            out.push(std::mem::replace(&mut current, template.clone()));
            current_bytes = base_bytes;
        }
        current_bytes += bytes;
        current.events.push(event);
    }
    current.fragment = false;
    out.push(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::etcdserverpb::ResponseHeader;
    use crate::pb::mvccpb::KeyValue;

    fn response(value_lens: &[usize]) -> WatchResponse {
        WatchResponse {
            header: Some(ResponseHeader {
                cluster_id: 0x1234_5678_9abc_def0,
                member_id: 42,
                revision: 77,
                raft_term: 3,
            }),
            watch_id: 5,
            events: value_lens
                .iter()
                .enumerate()
                .map(|(i, len)| Event {
                    kv: Some(KeyValue {
                        key: format!("k{i}").into_bytes(),
                        value: vec![b'v'; *len],
                        mod_revision: 70 + i as i64,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn small_response_or_single_event_goes_whole() {
        let r = response(&[10, 10, 10]);
        assert_eq!(split(r.clone(), r.encoded_len() + 1), vec![r]);
        let one = response(&[1000]);
        assert_eq!(
            split(one.clone(), 100),
            vec![one],
            "one event is never split"
        );
    }

    #[test]
    fn at_the_limit_it_splits_like_etcd() {
        // etcd sends whole only when the size is *below* the limit.
        let r = response(&[10, 10, 10]);
        let parts = split(r.clone(), r.encoded_len());
        assert!(parts.len() > 1);
    }

    #[test]
    fn fragments_are_the_longest_runs_below_the_limit_and_reassemble() {
        let r = response(&[100, 100, 100, 300, 50, 50, 50, 500, 20]);
        let limit = 400;
        let parts = split(r.clone(), limit);
        let flags: Vec<bool> = parts.iter().map(|p| p.fragment).collect();
        assert_eq!(flags.last(), Some(&false));
        assert!(flags[..flags.len() - 1].iter().all(|f| *f));
        let mut all = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert_eq!((p.header, p.watch_id), (r.header, r.watch_id));
            // The size accounting is exact: measured with fragment = true, as etcd does.
            let measured = WatchResponse {
                fragment: true,
                ..p.clone()
            }
            .encoded_len();
            assert!(
                measured < limit || p.events.len() == 1,
                "part {i}: {measured}"
            );
            if let Some(next) = parts.get(i + 1) {
                let mut longer = WatchResponse {
                    fragment: true,
                    ..p.clone()
                };
                longer.events.push(next.events[0].clone());
                assert!(
                    longer.encoded_len() >= limit,
                    "part {i} could take one more"
                );
            }
            all.extend(p.events.iter().cloned());
        }
        assert_eq!(all, r.events);
        // The 500-byte value is above the limit on its own: a fragment of one event.
        assert!(parts.iter().any(|p| p.events.len() == 1
            && p.events[0].kv.as_ref().unwrap().value.len() == 500));
    }
}
