//! One key's history: a list of generations (etcd `mvcc/key_index.go`).
//!
//! A *generation* is the life of a key from the put that creates it to the delete that ends it.
//! The delete is recorded as a *tombstone* that closes the generation; the next put starts a new
//! one. Within a generation `version` counts the puts (1 for the creating put), and
//! `create_revision` is the revision of that creating put.
//!
//! ```text
//!  put@2  put@4  del@6     put@8  put@9          (main revisions)
//!  ┌─────────────────┐     ┌────────────── ...
//!  │ v1    v2    ✝   │     │ v1    v2      (open: key exists)
//!  └─────────────────┘     └────────────── ...
//!   generation 0            generation 1
//!   create_revision 2       create_revision 8
//!
//!  get(3) = (mod 2, create 2, v1)    get(6) = get(7) = none (deleted)
//!  get(5) = (mod 4, create 2, v2)    get(9) = (mod 9, create 8, v2)
//! ```
//!
//! Unlike etcd, which keeps an empty trailing generation after a delete and counts the tombstone
//! in `ver`, the tombstone here is a separate field of the generation it closes and versions are
//! `first_version + position`: the same facts, fewer special cases.

use super::revision::Revision;

/// What a read at some revision sees of one key.
///
/// Invariant: `create_revision ≤ mod_revision.main`, `version ≥ 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAt {
    /// Revision of the put whose value is visible (its `main` is the KeyValue's `mod_revision`).
    pub mod_revision: Revision,
    /// `main` of the put that created the visible generation.
    pub create_revision: i64,
    /// Number of puts in the generation up to and including `mod_revision`.
    pub version: i64,
}

/// The puts of one key between a creation and (optionally) a delete.
///
/// Invariant: `revs` is non-empty and strictly increasing; a `tombstone`, when present, is
/// greater than every element of `revs`; only the last generation of a [`KeyIndex`] may be open
/// (`tombstone == None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// `main` of the put that created this generation (survives compaction of that put).
    pub create_revision: i64,
    /// Version of `revs[0]`: 1 unless compaction removed older puts of this generation.
    pub first_version: i64,
    /// Revisions of the puts still kept, oldest first.
    pub revs: Vec<Revision>,
    /// Revision of the delete that closed the generation, if any.
    pub tombstone: Option<Revision>,
}

impl Generation {
    fn first_main(&self) -> i64 {
        self.revs[0].main
    }

    /// Index in `revs` of the newest put with `main ≤ at_rev`, if any.
    fn newest_at(&self, at_rev: i64) -> Option<usize> {
        self.revs
            .partition_point(|r| r.main <= at_rev)
            .checked_sub(1)
    }
}

/// The full retained history of one key.
///
/// Invariant: generations are in revision order and not empty; an empty `KeyIndex` (no
/// generations) is removed from the tree index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyIndex {
    generations: Vec<Generation>,
}

/// The key index was asked to delete a key that does not currently exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLive;

impl KeyIndex {
    /// True when no history is retained (the key can be dropped from the tree).
    pub fn is_empty(&self) -> bool {
        self.generations.is_empty()
    }

    /// The generations, oldest first.
    pub fn generations(&self) -> &[Generation] {
        &self.generations
    }

    /// True when the key exists at the newest revision (the last generation is open).
    pub fn is_live(&self) -> bool {
        self.generations
            .last()
            .is_some_and(|g| g.tombstone.is_none())
    }

    /// Records a put at `rev` and returns `(create_revision, version)` of the new version:
    /// a put on a live key extends its generation (version + 1), otherwise it starts a new
    /// generation with `create_revision = rev.main`, `version = 1` (etcd KeyValue rules).
    pub fn put(&mut self, rev: Revision) -> (i64, i64) {
        match self.generations.last_mut() {
            Some(g) if g.tombstone.is_none() => {
                debug_assert!(g.revs.last().is_some_and(|last| *last < rev));
                let version = g.first_version + g.revs.len() as i64;
                g.revs.push(rev);
                (g.create_revision, version)
            }
            _ => {
                self.generations.push(Generation {
                    create_revision: rev.main,
                    first_version: 1,
                    revs: vec![rev],
                    tombstone: None,
                });
                (rev.main, 1)
            }
        }
    }

    /// Records a put read back from the backend while rebuilding the index. The stored record
    /// carries its own `create_revision` and `version`, which matter when compaction removed
    /// the generation's earlier puts.
    pub fn restore_put(&mut self, rev: Revision, create_revision: i64, version: i64) {
        match self.generations.last_mut() {
            Some(g) if g.tombstone.is_none() => g.revs.push(rev),
            _ => self.generations.push(Generation {
                create_revision,
                first_version: version,
                revs: vec![rev],
                tombstone: None,
            }),
        }
    }

    /// Closes the live generation with a tombstone at `rev` (a delete).
    ///
    /// Errors with [`NotLive`] when the key does not exist (deleting nothing is not a change).
    pub fn tombstone(&mut self, rev: Revision) -> Result<(), NotLive> {
        match self.generations.last_mut() {
            Some(g) if g.tombstone.is_none() => {
                g.tombstone = Some(rev);
                Ok(())
            }
            _ => Err(NotLive),
        }
    }

    /// What a read at revision `at_rev` sees: `None` if the key did not exist then (never
    /// created, deleted, or its history before `at_rev` was compacted away).
    pub fn get(&self, at_rev: i64) -> Option<KeyAt> {
        // Generations are ordered; the only candidate is the newest one created at or before
        // `at_rev`.
        let g = self
            .generations
            .iter()
            .rev()
            .find(|g| g.first_main() <= at_rev)?;
        if g.tombstone.is_some_and(|t| t.main <= at_rev) {
            return None;
        }
        let i = g.newest_at(at_rev)?;
        Some(KeyAt {
            mod_revision: g.revs[i],
            create_revision: g.create_revision,
            version: g.first_version + i as i64,
        })
    }

    /// Every retained change (puts and tombstones) with `main ≥ rev`, oldest first, as
    /// `(revision, is_tombstone)`. When several changes share a `main` revision only the last
    /// one is returned, as etcd's `keyIndex.since` does (a watcher sees a key's final state per
    /// revision).
    pub fn since(&self, rev: i64) -> Vec<(Revision, bool)> {
        let mut out: Vec<(Revision, bool)> = Vec::new();
        let all = self.generations.iter().flat_map(|g| {
            g.revs
                .iter()
                .map(|r| (*r, false))
                .chain(g.tombstone.map(|t| (t, true)))
        });
        for (r, tomb) in all.filter(|(r, _)| r.main >= rev) {
            match out.last_mut() {
                Some(last) if last.0.main == r.main => *last = (r, tomb),
                _ => out.push((r, tomb)),
            }
        }
        out
    }

    /// The changes that compaction at `at_rev` removes, as `(revision, is_tombstone)`: every
    /// record a read at a revision ≥ `at_rev` can no longer observe. Kept: the newest put
    /// ≤ `at_rev` of the generation live at `at_rev`, and everything newer. Read-only, so the
    /// caller can persist the removal before mutating with [`KeyIndex::compact`].
    pub fn compaction_removes(&self, at_rev: i64) -> Vec<(Revision, bool)> {
        let (dropped_gens, dropped_revs) = self.compaction_plan(at_rev);
        let mut out = Vec::new();
        for g in &self.generations[..dropped_gens] {
            out.extend(g.revs.iter().map(|r| (*r, false)));
            out.extend(g.tombstone.map(|t| (t, true)));
        }
        if let Some(g) = self.generations.get(dropped_gens) {
            out.extend(g.revs[..dropped_revs].iter().map(|r| (*r, false)));
        }
        out
    }

    /// The one put ≤ `at_rev` that compaction at `at_rev` keeps, if any: the newest put ≤
    /// `at_rev` of the first generation that compaction does not drop (etcd `keyIndex.keep`).
    pub fn kept_at(&self, at_rev: i64) -> Option<Revision> {
        let (dropped_gens, _) = self.compaction_plan(at_rev);
        let g = self.generations.get(dropped_gens)?;
        g.newest_at(at_rev).map(|i| g.revs[i])
    }

    /// Compacts at `at_rev`: removes what [`KeyIndex::compaction_removes`] lists. Reads at any
    /// revision ≥ `at_rev` answer exactly as before (etcd `keyIndex.compact`).
    pub fn compact(&mut self, at_rev: i64) {
        let (dropped_gens, dropped_revs) = self.compaction_plan(at_rev);
        self.generations.drain(..dropped_gens);
        if let Some(g) = self.generations.first_mut() {
            g.revs.drain(..dropped_revs);
            g.first_version += dropped_revs as i64;
        }
    }

    /// `(generations dropped entirely, puts dropped from the first kept generation)`.
    fn compaction_plan(&self, at_rev: i64) -> (usize, usize) {
        // A generation whose tombstone is ≤ at_rev is invisible to every read ≥ at_rev.
        let dropped_gens = self
            .generations
            .iter()
            .take_while(|g| g.tombstone.is_some_and(|t| t.main <= at_rev))
            .count();
        let dropped_revs = self
            .generations
            .get(dropped_gens)
            .and_then(|g| g.newest_at(at_rev))
            .unwrap_or(0);
        (dropped_gens, dropped_revs)
    }

    /// Undoes every change with `main == main` (an aborted write transaction). Those changes
    /// are necessarily the newest ones.
    pub fn rollback(&mut self, main: i64) {
        while let Some(g) = self.generations.last_mut() {
            if g.tombstone.is_some_and(|t| t.main == main) {
                g.tombstone = None;
            } else if g.revs.last().is_some_and(|r| r.main == main) {
                g.revs.pop();
                if g.revs.is_empty() {
                    self.generations.pop();
                }
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// The history drawn in the module docs.
    fn drawn() -> KeyIndex {
        let mut ki = KeyIndex::default();
        assert_eq!(ki.put(r(2)), (2, 1));
        assert_eq!(ki.put(r(4)), (2, 2));
        ki.tombstone(r(6)).unwrap();
        assert_eq!(ki.put(r(8)), (8, 1));
        assert_eq!(ki.put(r(9)), (8, 2));
        ki
    }

    fn at(m: i64, c: i64, v: i64) -> Option<KeyAt> {
        Some(KeyAt {
            mod_revision: r(m),
            create_revision: c,
            version: v,
        })
    }

    #[test]
    fn get_follows_generations() {
        let ki = drawn();
        assert_eq!(ki.get(1), None);
        assert_eq!(ki.get(2), at(2, 2, 1));
        assert_eq!(ki.get(3), at(2, 2, 1));
        assert_eq!(ki.get(5), at(4, 2, 2));
        assert_eq!(
            ki.get(6),
            None,
            "the tombstone revision itself reads as deleted"
        );
        assert_eq!(ki.get(7), None);
        assert_eq!(ki.get(8), at(8, 8, 1));
        assert_eq!(ki.get(100), at(9, 8, 2));
    }

    #[test]
    fn delete_of_a_missing_key_is_refused() {
        let mut ki = KeyIndex::default();
        assert_eq!(ki.tombstone(r(1)), Err(NotLive));
        ki.put(r(2));
        ki.tombstone(r(3)).unwrap();
        assert_eq!(ki.tombstone(r(4)), Err(NotLive));
        assert!(!ki.is_live());
    }

    #[test]
    fn since_lists_changes_and_keeps_last_per_main() {
        let ki = drawn();
        assert_eq!(
            ki.since(5),
            vec![(r(6), true), (r(8), false), (r(9), false)]
        );
        let mut ki = KeyIndex::default();
        ki.put(Revision::new(3, 0));
        ki.put(Revision::new(3, 1));
        assert_eq!(ki.since(0), vec![(Revision::new(3, 1), false)]);
    }

    #[test]
    fn compact_keeps_what_reads_at_or_after_need() {
        for at_rev in 0..=10 {
            let full = drawn();
            let mut ki = drawn();
            let removed = ki.compaction_removes(at_rev);
            ki.compact(at_rev);
            for read in at_rev..=11 {
                assert_eq!(ki.get(read), full.get(read), "compact {at_rev} read {read}");
            }
            let kept: usize = ki
                .generations()
                .iter()
                .map(|g| g.revs.len() + g.tombstone.is_some() as usize)
                .sum();
            assert_eq!(
                kept + removed.len(),
                5,
                "compact {at_rev}: removed {removed:?}"
            );
        }
    }

    #[test]
    fn compact_examples() {
        let mut ki = drawn();
        assert_eq!(ki.compaction_removes(5), vec![(r(2), false)]);
        ki.compact(5);
        assert_eq!(ki.generations()[0].first_version, 2);
        assert_eq!(ki.compaction_removes(6), vec![(r(4), false), (r(6), true)]);
        ki.compact(6);
        assert_eq!(ki.generations().len(), 1);
        ki.tombstone(r(10)).unwrap();
        ki.compact(10);
        assert!(
            ki.is_empty(),
            "a key deleted at or before the compaction is forgotten"
        );
    }

    #[test]
    fn rollback_undoes_one_main_revision() {
        let mut ki = drawn();
        let before = ki.clone();
        ki.tombstone(Revision::new(10, 0)).unwrap();
        ki.put(Revision::new(10, 1));
        ki.put(Revision::new(10, 2));
        ki.rollback(10);
        assert_eq!(ki, before);
        let mut fresh = KeyIndex::default();
        fresh.put(r(3));
        fresh.rollback(3);
        assert!(fresh.is_empty());
    }

    #[test]
    fn restore_uses_stored_version_and_create_revision() {
        let mut ki = KeyIndex::default();
        ki.restore_put(r(5), 2, 3);
        ki.restore_put(r(7), 2, 4);
        assert_eq!(ki.get(6), at(5, 2, 3));
        assert_eq!(ki.get(7), at(7, 2, 4));
        assert_eq!(ki.put(r(9)), (2, 5));
    }
}
