//! [`IntervalTree`]: half-open key intervals `[start, end)` (the end possibly unbounded), and
//! the stabbing query "which intervals contain this key" in O(log n + m log n) for m answers
//! (etcd `pkg/adt.IntervalTree`, which `mvcc.watcherGroup` uses for range watchers).
//!
//! An AVL tree ordered by `(start, value)`, each node augmented with the largest `end` in its
//! subtree (Cormen et al., *Introduction to Algorithms*, 3rd ed., §14.3 "Interval trees"). A
//! subtree whose largest end is ≤ the key holds no answer and is skipped; a node whose start
//! is above the key has no answer to its right.
//!
//! ```text
//!              [b, d)  max ∞           stab("c"): [b,d) ✓, [a,c) ✗ (end c ≤ c),
//!             /       \                           [c,∞) ✓; right of a node with
//!   [a, c) max c     [c, ∞) max ∞                 start > "c" is never visited
//! ```
//!
//! Why not a crate: `interavl` (AVL, maintained) fits, but an unbounded end needs a wrapper
//! type and a new dependency for ~150 lines did not pay; `store-interval-tree` and
//! `unbounded-interval-tree` have had no release since 2022. Why not a sorted `BTreeMap` of
//! starts scanned up to the key: that visits every range starting below the key, matching or
//! not, which is the O(all watchers) this replaces. Deterministic: no hashing, no randomness;
//! answers come in `(start, value)` order.

use std::cmp::Ordering;

/// The end of an interval: a key (excluded) or none (every key from the start on).
///
/// Derived order: every `Key` sorts before `Unbounded`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    /// The interval ends before this key.
    Key(Vec<u8>),
    /// The interval has no end (etcd `range_end = "\0"`).
    Unbounded,
}

impl End {
    /// True when the interval reaches past `key` (`key < end`).
    fn after(&self, key: &[u8]) -> bool {
        match self {
            End::Key(end) => key < end.as_slice(),
            End::Unbounded => true,
        }
    }
}

type Link<V> = Option<Box<Node<V>>>;

#[derive(Debug)]
struct Node<V> {
    start: Vec<u8>,
    value: V,
    end: End,
    /// Invariant: the largest `end` of this node and its subtrees.
    max_end: End,
    /// Invariant: 1 + the larger child height; children's heights differ by at most 1.
    height: u32,
    left: Link<V>,
    right: Link<V>,
}

fn height<V>(link: &Link<V>) -> u32 {
    link.as_ref().map_or(0, |n| n.height)
}

impl<V: Ord + Copy> Node<V> {
    fn cmp_to(&self, start: &[u8], value: &V) -> Ordering {
        (start, value).cmp(&(self.start.as_slice(), &self.value))
    }

    /// Recomputes `height` and `max_end` from the children.
    fn update(&mut self) {
        self.height = 1 + height(&self.left).max(height(&self.right));
        let mut max = &self.end;
        for child in [&self.left, &self.right].into_iter().flatten() {
            if child.max_end > *max {
                max = &child.max_end;
            }
        }
        if *max != self.max_end {
            self.max_end = max.clone();
        }
    }
}

fn rotate_right<V: Ord + Copy>(mut n: Box<Node<V>>) -> Box<Node<V>> {
    let mut l = n.left.take().expect("rotate_right needs a left child");
    n.left = l.right.take();
    n.update();
    l.right = Some(n);
    l.update();
    l
}

fn rotate_left<V: Ord + Copy>(mut n: Box<Node<V>>) -> Box<Node<V>> {
    let mut r = n.right.take().expect("rotate_left needs a right child");
    n.right = r.left.take();
    n.update();
    r.left = Some(n);
    r.update();
    r
}

/// Restores the AVL invariant at `n`, whose subtrees are valid and differ in height by ≤ 2.
fn balance<V: Ord + Copy>(mut n: Box<Node<V>>) -> Box<Node<V>> {
    n.update();
    let (lh, rh) = (height(&n.left), height(&n.right));
    if lh > rh + 1 {
        let l = n.left.take().expect("taller left");
        n.left = Some(if height(&l.left) < height(&l.right) {
            rotate_left(l)
        } else {
            l
        });
        rotate_right(n)
    } else if rh > lh + 1 {
        let r = n.right.take().expect("taller right");
        n.right = Some(if height(&r.right) < height(&r.left) {
            rotate_right(r)
        } else {
            r
        });
        rotate_left(n)
    } else {
        n
    }
}

fn insert<V: Ord + Copy>(link: Link<V>, node: Box<Node<V>>) -> Box<Node<V>> {
    let Some(mut n) = link else { return node };
    if n.cmp_to(&node.start, &node.value) == Ordering::Less {
        n.left = Some(insert(n.left.take(), node));
    } else {
        n.right = Some(insert(n.right.take(), node));
    }
    balance(n)
}

/// The subtree without its leftmost node, and that node.
fn take_min<V: Ord + Copy>(mut n: Box<Node<V>>) -> (Link<V>, Box<Node<V>>) {
    match n.left.take() {
        None => (n.right.take(), n),
        Some(l) => {
            let (rest, min) = take_min(l);
            n.left = rest;
            (Some(balance(n)), min)
        }
    }
}

fn remove<V: Ord + Copy>(link: Link<V>, start: &[u8], value: &V) -> (Link<V>, bool) {
    let Some(mut n) = link else {
        return (None, false);
    };
    let found = match n.cmp_to(start, value) {
        Ordering::Less => {
            let (l, found) = remove(n.left.take(), start, value);
            n.left = l;
            found
        }
        Ordering::Greater => {
            let (r, found) = remove(n.right.take(), start, value);
            n.right = r;
            found
        }
        Ordering::Equal => {
            return match (n.left.take(), n.right.take()) {
                (None, only) | (only, None) => (only, true),
                (left, Some(right)) => {
                    let (rest, mut min) = take_min(right);
                    min.left = left;
                    min.right = rest;
                    (Some(balance(min)), true)
                }
            };
        }
    };
    (Some(balance(n)), found)
}

fn stab<V: Copy>(link: &Link<V>, key: &[u8], f: &mut impl FnMut(V)) {
    let Some(n) = link else { return };
    if !n.max_end.after(key) {
        return; // every interval below ends at or before the key
    }
    stab(&n.left, key, f);
    if n.start.as_slice() <= key {
        if n.end.after(key) {
            f(n.value);
        }
        stab(&n.right, key, f); // starts to the right are ≥ this one, maybe still ≤ key
    }
}

/// Intervals `[start, end)` over byte-string keys, each with a value; see the module docs.
///
/// Invariant: `(start, value)` pairs are unique (the caller's values identify intervals).
#[derive(Debug)]
pub struct IntervalTree<V> {
    root: Link<V>,
    len: usize,
}

impl<V> Default for IntervalTree<V> {
    fn default() -> Self {
        IntervalTree { root: None, len: 0 }
    }
}

impl<V: Ord + Copy> IntervalTree<V> {
    /// Number of intervals held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no interval is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `[start, end)` with `value`; `(start, value)` must not be held already.
    pub fn insert(&mut self, start: Vec<u8>, end: End, value: V) {
        let node = Box::new(Node {
            start,
            value,
            max_end: end.clone(),
            end,
            height: 1,
            left: None,
            right: None,
        });
        self.root = Some(insert(self.root.take(), node));
        self.len += 1;
    }

    /// Removes the interval starting at `start` with `value`; false if there is none.
    pub fn remove(&mut self, start: &[u8], value: &V) -> bool {
        let (root, found) = remove(self.root.take(), start, value);
        self.root = root;
        self.len -= usize::from(found);
        found
    }

    /// Calls `f` with the value of every interval containing `key` (`start ≤ key < end`), in
    /// `(start, value)` order.
    pub fn stab(&self, key: &[u8], mut f: impl FnMut(V)) {
        stab(&self.root, key, &mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks the AVL and `max_end` invariants; returns the subtree's height.
    fn check<V: Ord + Copy + std::fmt::Debug>(link: &Link<V>) -> u32 {
        let Some(n) = link else { return 0 };
        let (lh, rh) = (check(&n.left), check(&n.right));
        assert!(lh.abs_diff(rh) <= 1, "unbalanced at {:?}", n.value);
        assert_eq!(n.height, 1 + lh.max(rh));
        let mut max = n.end.clone();
        for c in [&n.left, &n.right].into_iter().flatten() {
            max = max.max(c.max_end.clone());
        }
        assert_eq!(n.max_end, max);
        if let Some(l) = &n.left {
            assert!((l.start.as_slice(), l.value) < (n.start.as_slice(), n.value));
        }
        if let Some(r) = &n.right {
            assert!((r.start.as_slice(), r.value) > (n.start.as_slice(), n.value));
        }
        n.height
    }

    #[test]
    fn stab_finds_exactly_the_intervals_containing_the_key() {
        let mut t = IntervalTree::default();
        t.insert(b"a".to_vec(), End::Key(b"c".to_vec()), 1);
        t.insert(b"b".to_vec(), End::Key(b"d".to_vec()), 2);
        t.insert(b"c".to_vec(), End::Unbounded, 3);
        t.insert(b"b".to_vec(), End::Key(b"b\0".to_vec()), 4);
        fn at(t: &IntervalTree<i32>, k: &[u8]) -> Vec<i32> {
            let mut v = Vec::new();
            t.stab(k, |x| v.push(x));
            v
        }
        assert_eq!(at(&t, b""), Vec::<i32>::new());
        assert_eq!(at(&t, b"a"), vec![1]);
        assert_eq!(at(&t, b"b"), vec![1, 2, 4], "(start, value) order");
        assert_eq!(at(&t, b"b\0"), vec![1, 2], "the end is excluded");
        assert_eq!(at(&t, b"c"), vec![2, 3]);
        assert_eq!(at(&t, b"zzz"), vec![3]);
        assert!(t.remove(b"b", &2));
        assert!(!t.remove(b"b", &2), "gone");
        assert!(
            !t.remove(b"a", &3),
            "a value is removed under its own start only"
        );
        assert_eq!(at(&t, b"c"), vec![3]);
        assert_eq!(t.len(), 3);
        check(&t.root);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(Vec<u8>, Option<Vec<u8>>),
        Remove(usize),
        Stab(Vec<u8>),
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..4, 0..3)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (key(), proptest::option::of(key())).prop_map(|(s, e)| Op::Insert(s, e)),
            2 => any::<usize>().prop_map(Op::Remove),
            2 => key().prop_map(Op::Stab),
        ]
    }

    proptest! {
        /// Against a plain list: every stab answers exactly the held intervals containing the
        /// key, in `(start, value)` order, and the tree stays balanced with correct `max_end`s.
        #[test]
        fn behaves_like_a_list(ops in proptest::collection::vec(op(), 1..200)) {
            let mut tree = IntervalTree::default();
            let mut list: Vec<(Vec<u8>, End, u32)> = Vec::new();
            for (id, op) in (0u32..).zip(ops) {
                match op {
                    Op::Insert(start, end) => {
                        let end = end.map_or(End::Unbounded, End::Key);
                        tree.insert(start.clone(), end.clone(), id);
                        list.push((start, end, id));
                    }
                    Op::Remove(i) if !list.is_empty() => {
                        let (start, _, id) = list.remove(i % list.len());
                        prop_assert!(tree.remove(&start, &id));
                    }
                    Op::Remove(_) => prop_assert!(!tree.remove(b"", &0)),
                    Op::Stab(k) => {
                        let mut got = Vec::new();
                        tree.stab(&k, |v| got.push(v));
                        let mut want: Vec<_> = list
                            .iter()
                            .filter(|(s, e, _)| s.as_slice() <= k.as_slice() && e.after(&k))
                            .map(|(s, _, v)| (s.clone(), *v))
                            .collect();
                        want.sort();
                        let want: Vec<u32> = want.into_iter().map(|(_, v)| v).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(tree.len(), list.len());
                check(&tree.root);
            }
        }
    }
}
