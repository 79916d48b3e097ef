//! [`WatcherGroup`]: watchers indexed by what they watch (etcd `mvcc.watcherGroup`), so
//! "which watchers does a change of this key concern" costs the answer, not the group.
//!
//! ```text
//!   single key  ──► keys:   BTreeMap<key, BTreeSet<W>>       one lookup
//!   range / prefix / from-key ──► ranges: IntervalTree<W>     a stabbing query
//! ```
//!
//! etcd splits the same way (`watcherGroup.keyWatchers` + `watcherGroup.ranges`). Both maps
//! are ordered, so nothing here depends on a hasher's seed (STYLE: determinism); a `HashMap`
//! for the keys would be O(1) instead of O(log n) but buys nothing measurable.

use super::interval_tree::{End, IntervalTree};
use crate::mvcc::index::KeyRange;
use std::collections::{BTreeMap, BTreeSet};

/// Watchers identified by `W`, each under its key range; see the module docs.
///
/// Invariant: a `W` is held at most once, under the range it was inserted with.
#[derive(Debug)]
pub struct WatcherGroup<W> {
    keys: BTreeMap<Vec<u8>, BTreeSet<W>>,
    ranges: IntervalTree<W>,
    /// Watchers held in `keys`.
    key_watchers: usize,
}

impl<W> Default for WatcherGroup<W> {
    fn default() -> Self {
        WatcherGroup {
            keys: BTreeMap::new(),
            ranges: IntervalTree::default(),
            key_watchers: 0,
        }
    }
}

impl<W: Ord + Copy> WatcherGroup<W> {
    /// Adds watcher `w` on `range` (an empty range is never matched, so not held).
    pub fn insert(&mut self, w: W, range: KeyRange<'_>) {
        match range {
            KeyRange::Single(key) => {
                let set = self.keys.entry(key.to_vec()).or_default();
                self.key_watchers += usize::from(set.insert(w));
            }
            KeyRange::From(start) => self.ranges.insert(start.to_vec(), End::Unbounded, w),
            KeyRange::Between(start, end) => {
                self.ranges
                    .insert(start.to_vec(), End::Key(end.to_vec()), w);
            }
            KeyRange::Empty => {}
        }
    }

    /// Removes watcher `w`, held under `range`; false if it was not held.
    pub fn remove(&mut self, w: W, range: KeyRange<'_>) -> bool {
        match range {
            KeyRange::Single(key) => {
                let Some(set) = self.keys.get_mut(key) else {
                    return false;
                };
                let found = set.remove(&w);
                if set.is_empty() {
                    self.keys.remove(key);
                }
                self.key_watchers -= usize::from(found);
                found
            }
            KeyRange::From(start) | KeyRange::Between(start, _) => self.ranges.remove(start, &w),
            KeyRange::Empty => false,
        }
    }

    /// Calls `f` with every watcher whose range contains `key`, each once: the watchers of
    /// exactly that key, then the ranges in start order.
    pub fn matching(&self, key: &[u8], mut f: impl FnMut(W)) {
        if let Some(set) = self.keys.get(key) {
            set.iter().copied().for_each(&mut f);
        }
        self.ranges.stab(key, f);
    }

    /// True when watcher `w` is held under `range` (for invariant checks).
    pub fn contains(&self, w: W, range: KeyRange<'_>) -> bool {
        let first = match range {
            KeyRange::Single(k) | KeyRange::From(k) | KeyRange::Between(k, _) => k,
            KeyRange::Empty => return false,
        };
        let mut found = false;
        self.matching(first, |x| found |= x == w);
        found
    }

    /// Number of watchers held.
    pub fn len(&self) -> usize {
        self.key_watchers + self.ranges.len()
    }

    /// True when no watcher is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::index::prefix_range_end;

    fn matching(g: &WatcherGroup<u32>, key: &[u8]) -> Vec<u32> {
        let mut v = Vec::new();
        g.matching(key, |w| v.push(w));
        v.sort();
        v
    }

    #[test]
    fn key_prefix_from_key_and_range_watchers_match_their_keys_only() {
        let mut g = WatcherGroup::default();
        let prefix_end = prefix_range_end(b"p/");
        g.insert(1, KeyRange::new(b"a", b""));
        g.insert(2, KeyRange::new(b"p/", &prefix_end));
        g.insert(3, KeyRange::new(b"m", b"\0"));
        g.insert(4, KeyRange::new(b"b", b"d"));
        g.insert(5, KeyRange::new(b"a", b""));
        g.insert(6, KeyRange::new(b"b", b"a")); // empty: never held
        assert_eq!(g.len(), 5);
        assert_eq!(matching(&g, b"a"), vec![1, 5]);
        assert_eq!(matching(&g, b"a\0"), Vec::<u32>::new());
        assert_eq!(matching(&g, b"c"), vec![4]);
        assert_eq!(matching(&g, b"d"), Vec::<u32>::new(), "range end excluded");
        assert_eq!(matching(&g, b"p/x"), vec![2, 3]);
        assert_eq!(matching(&g, b"p0"), vec![3], "past the prefix");
        assert!(g.remove(1, KeyRange::new(b"a", b"")));
        assert!(!g.remove(1, KeyRange::new(b"a", b"")));
        assert!(g.remove(3, KeyRange::new(b"m", b"\0")));
        assert_eq!(matching(&g, b"a"), vec![5]);
        assert_eq!(matching(&g, b"p/x"), vec![2]);
        assert!(g.remove(5, KeyRange::new(b"a", b"")));
        assert!(g.remove(2, KeyRange::new(b"p/", &prefix_end)));
        assert!(g.remove(4, KeyRange::new(b"b", b"d")));
        assert!(g.is_empty());
    }
}
