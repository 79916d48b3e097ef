//! The in-memory tree index: every key's [`KeyIndex`], ordered by key (etcd `mvcc/index.go`).
//!
//! The index answers "which revision of which keys does a read at revision R see"; values live
//! in the backend under those revisions. It is rebuilt from the backend on open.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::key_index::{KeyAt, KeyIndex, NotLive};
use super::revision::Revision;

/// The key interval of an etcd request, decoded from `(key, range_end)` by etcd's rules
/// (etcd `rpc.proto` RangeRequest doc):
/// - empty `range_end`: the single key `key`;
/// - `range_end == "\0"`: every key ≥ `key` (with `key == "\0"`: all keys);
/// - otherwise the half-open interval `[key, range_end)`, which is empty when
///   `key ≥ range_end` (a reversed range matches nothing; it must never reach
///   `BTreeMap::range`, which panics on reversed bounds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange<'a> {
    /// Exactly one key.
    Single(&'a [u8]),
    /// Every key ≥ the bound.
    From(&'a [u8]),
    /// `[start, end)` with `start < end`.
    Between(&'a [u8], &'a [u8]),
    /// No key (a reversed or empty interval).
    Empty,
}

/// `(start, end)` bounds for `BTreeMap::range`.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

impl<'a> KeyRange<'a> {
    /// Decodes etcd's `(key, range_end)` pair.
    pub fn new(key: &'a [u8], range_end: &'a [u8]) -> Self {
        match range_end {
            [] => KeyRange::Single(key),
            [0] => KeyRange::From(key),
            end if key < end => KeyRange::Between(key, end),
            _ => KeyRange::Empty,
        }
    }

    /// True when `key` lies in the interval.
    pub fn contains(&self, key: &[u8]) -> bool {
        match *self {
            KeyRange::Single(k) => k == key,
            KeyRange::From(start) => key >= start,
            KeyRange::Between(start, end) => key >= start && key < end,
            KeyRange::Empty => false,
        }
    }

    fn bounds(&self) -> Option<KeyBounds<'a>> {
        match *self {
            KeyRange::Single(k) => Some((Bound::Included(k), Bound::Included(k))),
            KeyRange::From(start) => Some((Bound::Included(start), Bound::Unbounded)),
            KeyRange::Between(start, end) => Some((Bound::Included(start), Bound::Excluded(end))),
            KeyRange::Empty => None,
        }
    }
}

/// The `range_end` that selects every key with prefix `prefix` (etcd `clientv3.GetPrefixRangeEnd`):
/// the prefix with trailing 0xff bytes dropped and its last byte incremented; `"\0"` (all keys
/// from `prefix`) when the prefix is empty or all 0xff.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The ordered map key → [`KeyIndex`].
///
/// Invariant: no stored `KeyIndex` is empty.
#[derive(Clone, Debug, Default)]
pub struct TreeIndex {
    keys: BTreeMap<Vec<u8>, KeyIndex>,
}

impl TreeIndex {
    /// Number of keys with retained history (live or deleted-but-not-compacted).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key has retained history.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// What a read at `at_rev` sees of `key`.
    pub fn get(&self, key: &[u8], at_rev: i64) -> Option<KeyAt> {
        self.keys.get(key)?.get(at_rev)
    }

    /// The history of one key, if retained.
    pub fn key_index(&self, key: &[u8]) -> Option<&KeyIndex> {
        self.keys.get(key)
    }

    /// Every key of `range` with retained history (live or deleted), in key order, with its
    /// [`KeyIndex`]; read-only, for the watch hub's history catch-up.
    pub fn histories<'s>(
        &'s self,
        range: &KeyRange<'s>,
    ) -> impl Iterator<Item = (&'s [u8], &'s KeyIndex)> + 's {
        range
            .bounds()
            .into_iter()
            .flat_map(move |b| self.keys.range::<[u8], _>(b))
            .map(|(k, ki)| (k.as_slice(), ki))
    }

    /// Visits, in key order, every key of `range` visible at `at_rev`; `visit` returns false
    /// to stop early.
    pub fn visit(
        &self,
        range: &KeyRange<'_>,
        at_rev: i64,
        mut visit: impl FnMut(&[u8], KeyAt) -> bool,
    ) {
        let Some(bounds) = range.bounds() else { return };
        for (key, ki) in self.keys.range::<[u8], _>(bounds) {
            if let Some(found) = ki.get(at_rev)
                && !visit(key, found)
            {
                return;
            }
        }
    }

    /// The first `limit` keys (0 = no limit) of `range` visible at `at_rev`, in key order, and
    /// the total number of visible keys in the range (etcd RangeResponse `count`).
    pub fn range(
        &self,
        range: &KeyRange<'_>,
        at_rev: i64,
        limit: usize,
    ) -> (Vec<(Vec<u8>, KeyAt)>, usize) {
        let mut out = Vec::new();
        let mut total = 0;
        self.visit(range, at_rev, |key, found| {
            if limit == 0 || out.len() < limit {
                out.push((key.to_vec(), found));
            }
            total += 1;
            true
        });
        (out, total)
    }

    /// Records a put of `key` at `rev`; returns `(create_revision, version)` of the new version.
    pub fn put(&mut self, key: &[u8], rev: Revision) -> (i64, i64) {
        self.keys.entry(key.to_vec()).or_default().put(rev)
    }

    /// Records a put read back from the backend (see [`KeyIndex::restore_put`]).
    pub fn restore_put(&mut self, key: &[u8], rev: Revision, create_revision: i64, version: i64) {
        self.keys
            .entry(key.to_vec())
            .or_default()
            .restore_put(rev, create_revision, version);
    }

    /// Records a delete of `key` at `rev`; errors if the key is not live.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) -> Result<(), NotLive> {
        self.keys.get_mut(key).ok_or(NotLive)?.tombstone(rev)
    }

    /// Every record compaction at `at_rev` removes, as `(key, revision, is_tombstone)`, in key
    /// order. Read-only (see [`KeyIndex::compaction_removes`]).
    pub fn compaction_removes(&self, at_rev: i64) -> Vec<(Vec<u8>, Revision, bool)> {
        let mut out = Vec::new();
        for (key, ki) in &self.keys {
            out.extend(
                ki.compaction_removes(at_rev)
                    .into_iter()
                    .map(|(r, t)| (key.clone(), r, t)),
            );
        }
        out
    }

    /// The revisions a compaction at `at_rev` keeps among those ≤ `at_rev`: per key, the
    /// newest put ≤ `at_rev` of the generation alive at `at_rev` (etcd `treeIndex.Keep`, which
    /// leaves tombstones out). HashKV skips compacted-away records by it.
    pub fn keep(&self, at_rev: i64) -> BTreeSet<Revision> {
        self.keys
            .values()
            .filter_map(|ki| ki.kept_at(at_rev))
            .collect()
    }

    /// Compacts every key at `at_rev` and drops keys left without history.
    pub fn compact(&mut self, at_rev: i64) {
        self.keys.retain(|_, ki| {
            ki.compact(at_rev);
            !ki.is_empty()
        });
    }

    /// Undoes the changes at main revision `main` of the given keys (an aborted transaction).
    pub fn rollback<'k>(&mut self, keys: impl IntoIterator<Item = &'k [u8]>, main: i64) {
        for key in keys {
            if let Some(ki) = self.keys.get_mut(key) {
                ki.rollback(main);
                if ki.is_empty() {
                    self.keys.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_abc() -> TreeIndex {
        let mut ti = TreeIndex::default();
        for (i, k) in [b"a".as_slice(), b"b", b"c", b"d\xff"].iter().enumerate() {
            ti.put(k, Revision::new(2 + i as i64, 0));
        }
        ti.tombstone(b"b", Revision::new(10, 0)).unwrap();
        ti
    }

    fn keys(ti: &TreeIndex, key: &[u8], end: &[u8], at: i64) -> Vec<Vec<u8>> {
        ti.range(&KeyRange::new(key, end), at, 0)
            .0
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn range_rules() {
        let ti = index_abc();
        assert_eq!(
            keys(&ti, b"a", b"", 20),
            vec![b"a".to_vec()],
            "empty range_end = one key"
        );
        assert_eq!(
            keys(&ti, b"a", b"c", 20),
            vec![b"a".to_vec()],
            "deleted b is invisible"
        );
        assert_eq!(keys(&ti, b"a", b"c", 9), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(
            keys(&ti, b"b", b"\0", 20),
            vec![b"c".to_vec(), b"d\xff".to_vec()],
            "\\0 = from key"
        );
        assert_eq!(keys(&ti, b"\0", b"\0", 20).len(), 3, "\\0,\\0 = all keys");
        assert!(
            keys(&ti, b"c", b"a", 20).is_empty(),
            "reversed range is empty, no panic"
        );
        assert!(
            keys(&ti, b"c", b"c", 20).is_empty(),
            "key == range_end is empty"
        );
        assert!(keys(&ti, b"zz", b"", 20).is_empty());
        assert_eq!(
            keys(&ti, b"a", b"z", 3),
            vec![b"a".to_vec(), b"b".to_vec()],
            "at revision 3"
        );
    }

    #[test]
    fn range_limit_keeps_total_count() {
        let ti = index_abc();
        let (kvs, total) = ti.range(&KeyRange::new(b"\0", b"\0"), 20, 2);
        assert_eq!(kvs.len(), 2);
        assert_eq!(total, 3);
    }

    #[test]
    fn prefix_end() {
        assert_eq!(prefix_range_end(b"ab"), b"ac");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_range_end(b""), b"\0");
        let ti = index_abc();
        assert_eq!(
            keys(&ti, b"d", &prefix_range_end(b"d"), 20),
            vec![b"d\xff".to_vec()]
        );
    }

    #[test]
    fn compaction_drops_dead_keys() {
        let mut ti = index_abc();
        let removed = ti.compaction_removes(10);
        assert_eq!(
            removed,
            vec![
                (b"b".to_vec(), Revision::new(3, 0), false),
                (b"b".to_vec(), Revision::new(10, 0), true)
            ]
        );
        ti.compact(10);
        assert_eq!(ti.len(), 3);
        assert!(ti.key_index(b"b").is_none());
    }
}
