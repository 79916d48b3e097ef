//! A reader of bbolt database files: what `ferrokv snapshot status` and `snapshot restore`
//! open, whether the file was saved from ferrokv or from etcd 3.4/3.5 (docs/snapshots.md §5).
//!
//! The format is the one [`super::bbolt`] documents (etcd-io/bbolt v1.3.6 `page.go`, `db.go`,
//! `bucket.go`, `freelist.go`); this side reads any file bbolt itself writes, not only ours:
//! any page size, either meta page current, pages filled to any degree, inline and
//! non-inline buckets, overflow pages, and a freelist page or none (`NoFreelistSync`, as etcd
//! writes on Linux).
//!
//! Every offset is checked before use, so a damaged file gives a [`ReadError`] naming the
//! page, never a panic. Beyond the bounds, the reader makes the checks of bbolt's `tx.Check`
//! that `etcdctl snapshot status` runs: each page referenced once, page headers carrying their
//! own id, keys in order, and — when a freelist is stored — no page both unreachable and not
//! free.

use super::bbolt::{
    BRANCH_FLAG, BUCKET_HEADER_BYTES, BUCKET_LEAF_FLAG, ELEMENT_BYTES, LEAF_FLAG, MAGIC,
    META_BYTES, META_CHECKSUMMED_BYTES, NO_FREELIST, PAGE_HEADER_BYTES, VERSION, fnv1a64,
};

/// The freelist page flag (`page.go` `freelistPageFlag`).
const FREELIST_FLAG: u16 = 0x10;
/// Deepest B+tree the reader follows: far beyond any real file (a 4 KiB-page tree of depth
/// 16 holds more than 2^64 pages), so a deeper one is a reference loop.
const DEPTH_MAX: usize = 16;
/// The page size bbolt falls back to when meta 0 is unreadable (`db.go`: the OS page size).
const FALLBACK_PAGE_BYTES: usize = 4096;

/// Why a file cannot be read as a bbolt database. The message says what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Neither meta page is valid (bbolt's "invalid database" / "checksum error").
    #[error("not a bbolt database: {0}")]
    Meta(String),
    /// A page or element is out of bounds, misnumbered or of the wrong kind.
    #[error("bbolt page {pgid}: {reason}")]
    Page {
        /// The page the damage was found on.
        pgid: u64,
        /// What is wrong.
        reason: String,
    },
}

/// One top-level bucket: its name and its (key, value) pairs in key order, borrowed from the
/// file's bytes. A pair whose value is a nested bucket has an empty value (what bbolt's
/// `Bucket.ForEach` passes as `nil`); etcd keeps none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadBucket<'a> {
    /// The bucket's name.
    pub name: &'a [u8],
    /// Its pairs.
    pub entries: Vec<(&'a [u8], &'a [u8])>,
}

/// A database read whole: its current meta and every top-level bucket in name order.
#[derive(Clone, Debug)]
pub struct ReadDb<'a> {
    /// Bytes per page (the meta's `pageSize`).
    pub page_size: usize,
    /// The high-water mark (the meta's `pgid`): pages in use, the first unused page id.
    pub high_water: u64,
    /// The transaction id of the meta in use.
    pub txid: u64,
    /// Top-level buckets, in name order.
    pub buckets: Vec<ReadBucket<'a>>,
}

impl<'a> ReadDb<'a> {
    /// The database size bbolt reports (`Tx.Size`: high-water mark × page size), bytes.
    pub fn size_bytes(&self) -> u64 {
        self.high_water * self.page_size as u64
    }

    /// The pairs of bucket `name`, or `None` when the file has no such bucket.
    pub fn bucket(&self, name: &[u8]) -> Option<&[(&'a [u8], &'a [u8])]> {
        self.buckets
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.entries.as_slice())
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A meta page's fields (`db.go` `meta`).
struct Meta {
    page_size: usize,
    root: u64,
    freelist: u64,
    high_water: u64,
    txid: u64,
}

/// The meta stored `offset` bytes into `file`, validated like bbolt's `meta.validate`.
fn meta_at(file: &[u8], offset: usize) -> Result<Meta, String> {
    let m = file
        .get(offset + PAGE_HEADER_BYTES..offset + PAGE_HEADER_BYTES + META_BYTES)
        .ok_or("file too short for a meta page")?;
    let word32 = |at| u32_at(m, at).expect("in bounds");
    let word64 = |at| u64_at(m, at).expect("in bounds");
    if word32(0) != MAGIC {
        return Err("bad magic".into());
    }
    if word32(4) != VERSION {
        return Err(format!("version {} (expected {VERSION})", word32(4)));
    }
    if word64(56) != fnv1a64(&m[..META_CHECKSUMMED_BYTES]) {
        return Err("meta checksum mismatch".into());
    }
    let page_size = word32(8) as usize;
    if !(512..=1 << 26).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("page size {page_size}"));
    }
    Ok(Meta {
        page_size,
        root: word64(16),
        freelist: word64(32),
        high_water: word64(40),
        txid: word64(48),
    })
}

/// Reads every top-level bucket of the bbolt database in `file` (without any trailer such
/// as the SHA-256 `etcdctl snapshot save` appends). Memory: the bucket index; keys and values
/// stay in `file`.
///
/// Meta choice as bbolt's (`db.go` `meta()`): the valid meta with the larger txid, else the
/// other valid one. Errors: [`ReadError::Meta`] when neither is valid; [`ReadError::Page`] for
/// any damage below the meta (see the module docs for the checks).
pub fn read_db(file: &[u8]) -> Result<ReadDb<'_>, ReadError> {
    let meta0 = meta_at(file, 0);
    let page_size = meta0.as_ref().map_or(FALLBACK_PAGE_BYTES, |m| m.page_size);
    let meta1 = meta_at(file, page_size);
    let meta = match (meta0, meta1) {
        (Ok(a), Ok(b)) => {
            if a.txid >= b.txid {
                a
            } else {
                b
            }
        }
        (Ok(m), Err(_)) | (Err(_), Ok(m)) => m,
        (Err(a), Err(b)) => return Err(ReadError::Meta(format!("meta 0: {a}; meta 1: {b}"))),
    };
    let pages_in_file = (file.len() / meta.page_size) as u64;
    if meta.high_water > pages_in_file || meta.high_water < 2 {
        return Err(ReadError::Meta(format!(
            "high-water mark {} pages, file holds {pages_in_file} ({} bytes; cut short?)",
            meta.high_water,
            file.len()
        )));
    }
    let mut reader = Reader {
        file,
        page_size: meta.page_size,
        high_water: meta.high_water,
        refs: vec![0; meta.high_water as usize],
    };
    reader.refs[0] = 1;
    reader.refs[1] = 1;
    let mut root = Vec::new();
    reader.tree(meta.root, 0, &mut root)?;
    let mut buckets = Vec::with_capacity(root.len());
    for (flags, name, value) in root {
        if flags & BUCKET_LEAF_FLAG == 0 {
            return Err(page_err(
                meta.root,
                format!(
                    "root element {:?} is not a bucket",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        let mut entries = Vec::new();
        for (flags, key, value) in reader.bucket(meta.root, value, 1)? {
            let value: &[u8] = if flags & BUCKET_LEAF_FLAG != 0 {
                &[]
            } else {
                value
            };
            entries.push((key, value));
        }
        buckets.push(ReadBucket { name, entries });
    }
    if meta.freelist != NO_FREELIST {
        let free = reader.freelist(meta.freelist)?;
        for pgid in free {
            if let Some(r) = reader.refs.get_mut(pgid as usize) {
                *r += 1;
                if *r > 1 {
                    return Err(page_err(pgid, "both free and in use"));
                }
            }
        }
        if let Some(pgid) = reader.refs.iter().position(|r| *r == 0) {
            return Err(page_err(pgid as u64, "unreachable and not free"));
        }
    }
    Ok(ReadDb {
        page_size: meta.page_size,
        high_water: meta.high_water,
        txid: meta.txid,
        buckets,
    })
}

fn page_err(pgid: u64, reason: impl Into<String>) -> ReadError {
    ReadError::Page {
        pgid,
        reason: reason.into(),
    }
}

/// One leaf element: flags, key, value.
type Element<'a> = (u32, &'a [u8], &'a [u8]);

struct Reader<'a> {
    file: &'a [u8],
    page_size: usize,
    high_water: u64,
    /// References per pgid seen so far (overflow pages included).
    refs: Vec<u32>,
}

impl<'a> Reader<'a> {
    /// The bytes of page `pgid` and its overflow pages, after checking its header's id and
    /// bounds and counting the references.
    fn page(&mut self, pgid: u64) -> Result<(&'a [u8], u16, usize), ReadError> {
        if pgid < 2 || pgid >= self.high_water {
            return Err(page_err(
                pgid,
                format!("beyond the high-water mark {}", self.high_water),
            ));
        }
        let at = pgid as usize * self.page_size;
        let head = &self.file[at..at + PAGE_HEADER_BYTES];
        let id = u64_at(head, 0).expect("16 bytes");
        let flags = u16_at(head, 8).expect("16 bytes");
        let count = u16_at(head, 10).expect("16 bytes") as usize;
        let overflow = u32_at(head, 12).expect("16 bytes") as u64;
        if id != pgid {
            return Err(page_err(pgid, format!("header says page {id}")));
        }
        let end = pgid + 1 + overflow;
        if end > self.high_water {
            return Err(page_err(
                pgid,
                format!("{overflow} overflow pages run past the high-water mark"),
            ));
        }
        for p in pgid..end {
            self.refs[p as usize] += 1;
            if self.refs[p as usize] > 1 {
                return Err(page_err(p, "referenced more than once"));
            }
        }
        let bytes = &self.file[at..end as usize * self.page_size];
        Ok((bytes, flags, count))
    }

    /// Every element under the tree rooted at `pgid`, in key order, appended to `out`.
    fn tree(
        &mut self,
        pgid: u64,
        depth: usize,
        out: &mut Vec<Element<'a>>,
    ) -> Result<(), ReadError> {
        if depth > DEPTH_MAX {
            return Err(page_err(
                pgid,
                "tree deeper than any real file: a reference loop",
            ));
        }
        let (page, flags, count) = self.page(pgid)?;
        match flags {
            LEAF_FLAG => {
                for e in leaf_elements(page, count).map_err(|r| page_err(pgid, r))? {
                    if out.last().is_some_and(|last| last.1 >= e.1) {
                        return Err(page_err(pgid, "keys out of order"));
                    }
                    out.push(e);
                }
                Ok(())
            }
            BRANCH_FLAG => {
                for child in branch_children(page, count).map_err(|r| page_err(pgid, r))? {
                    self.tree(child, depth + 1, out)?;
                }
                Ok(())
            }
            other => Err(page_err(
                pgid,
                format!("flags {other:#x}: not a branch or leaf page"),
            )),
        }
    }

    /// The elements of a bucket whose value (header + inline page, or header alone) is
    /// `value`, found on page `parent`.
    fn bucket(
        &mut self,
        parent: u64,
        value: &'a [u8],
        depth: usize,
    ) -> Result<Vec<Element<'a>>, ReadError> {
        let root = u64_at(value, 0)
            .ok_or_else(|| page_err(parent, "bucket value shorter than its header"))?;
        let mut out = Vec::new();
        if root == 0 {
            let inline = &value[BUCKET_HEADER_BYTES..];
            let flags = u16_at(inline, 8)
                .ok_or_else(|| page_err(parent, "inline bucket without a page"))?;
            let count = u16_at(inline, 10).expect("checked above") as usize;
            if flags != LEAF_FLAG {
                return Err(page_err(parent, "inline bucket page is not a leaf"));
            }
            for e in leaf_elements(inline, count)
                .map_err(|r| page_err(parent, format!("inline bucket: {r}")))?
            {
                if out.last().is_some_and(|last: &Element<'a>| last.1 >= e.1) {
                    return Err(page_err(parent, "inline bucket keys out of order"));
                }
                out.push(e);
            }
        } else {
            self.tree(root, depth, &mut out)?;
        }
        // Nested buckets: walked for the page checks; their pairs are not reported.
        for (flags, _, v) in &out {
            if flags & BUCKET_LEAF_FLAG != 0 {
                self.bucket(parent, v, depth + 1)?;
            }
        }
        Ok(out)
    }

    /// The page ids listed on the freelist page `pgid` (`freelist.go` `read`: a count of
    /// 0xFFFF means the real count is the first u64).
    fn freelist(&mut self, pgid: u64) -> Result<Vec<u64>, ReadError> {
        let (page, flags, count) = self.page(pgid)?;
        if flags != FREELIST_FLAG {
            return Err(page_err(
                pgid,
                format!("meta names it the freelist, flags {flags:#x}"),
            ));
        }
        let (count, first) = if count == 0xFFFF {
            let n = u64_at(page, PAGE_HEADER_BYTES)
                .ok_or_else(|| page_err(pgid, "freelist count cut"))?;
            (n as usize, PAGE_HEADER_BYTES + 8)
        } else {
            (count, PAGE_HEADER_BYTES)
        };
        (0..count)
            .map(|i| {
                u64_at(page, first + 8 * i)
                    .ok_or_else(|| page_err(pgid, "freelist runs past its page"))
            })
            .collect()
    }
}

/// The `count` elements of the leaf page `page` (its bytes from its header on).
fn leaf_elements(page: &[u8], count: usize) -> Result<Vec<Element<'_>>, String> {
    (0..count)
        .map(|i| {
            let at = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
            let field = |o| u32_at(page, at + o).ok_or("element header past the page");
            let (flags, pos, ksize, vsize) = (field(0)?, field(4)?, field(8)?, field(12)?);
            let key_at = at + pos as usize;
            let value_at = key_at + ksize as usize;
            let key = page
                .get(key_at..value_at)
                .ok_or(format!("element {i}: key past the page"))?;
            let value = page
                .get(value_at..value_at + vsize as usize)
                .ok_or(format!("element {i}: value past the page"))?;
            Ok((flags, key, value))
        })
        .collect()
}

/// The child pgids of the branch page `page`.
fn branch_children(page: &[u8], count: usize) -> Result<Vec<u64>, String> {
    let mut prev: Option<&[u8]> = None;
    (0..count)
        .map(|i| {
            let at = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
            let pos = u32_at(page, at).ok_or("branch element past the page")? as usize;
            let ksize = u32_at(page, at + 4).ok_or("branch element past the page")? as usize;
            let pgid = u64_at(page, at + 8).ok_or("branch element past the page")?;
            let key = page
                .get(at + pos..at + pos + ksize)
                .ok_or(format!("branch element {i}: key past the page"))?;
            if prev.is_some_and(|p| p >= key) {
                return Err("branch keys out of order".to_string());
            }
            prev = Some(key);
            Ok(pgid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::bbolt::{Bucket, PAGE_BYTES, write_db};
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<Bucket> {
        let mut key = Bucket::new(b"key");
        for i in 0..2_000u32 {
            key.push(i.to_be_bytes().to_vec(), format!("value {i}").into_bytes());
        }
        key.push(9_999u32.to_be_bytes().to_vec(), vec![7u8; 3 * PAGE_BYTES]);
        let mut meta = Bucket::new(b"meta");
        meta.push("consistent_index", 42u64.to_be_bytes());
        vec![key, meta, Bucket::new(b"empty")]
    }

    fn owned(db: &ReadDb<'_>) -> Vec<Bucket> {
        db.buckets
            .iter()
            .map(|b| Bucket {
                name: b.name.to_vec(),
                entries: b
                    .entries
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let buckets = sample();
        let file = write_db(&buckets).unwrap();
        let db = read_db(&file).unwrap();
        assert_eq!(db.size_bytes(), file.len() as u64);
        assert_eq!(db.txid, 2);
        let mut expected = buckets.clone();
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(owned(&db), expected);
        assert_eq!(db.bucket(b"meta").unwrap()[0].1, 42u64.to_be_bytes());
        assert!(db.bucket(b"nope").is_none());
    }

    #[test]
    fn falls_back_to_the_other_meta_when_the_current_one_is_damaged() {
        let file = write_db(&sample()).unwrap();
        let mut damaged = file.clone();
        damaged[PAGE_HEADER_BYTES + 20] ^= 0xFF; // meta 0 (txid 2): its root pgid
        let db = read_db(&damaged).unwrap();
        assert_eq!(db.txid, 1);
        damaged[PAGE_BYTES + PAGE_HEADER_BYTES + 20] ^= 0xFF;
        let err = read_db(&damaged).unwrap_err();
        assert!(
            matches!(err, ReadError::Meta(ref m) if m.contains("checksum")),
            "{err}"
        );
    }

    #[test]
    fn a_cut_short_file_or_garbage_is_refused() {
        let file = write_db(&sample()).unwrap();
        let err = read_db(&file[..file.len() - PAGE_BYTES]).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        assert!(read_db(&[]).is_err());
        assert!(read_db(&vec![0xAB; 3 * PAGE_BYTES]).is_err());
    }

    #[test]
    fn a_misnumbered_page_is_reported_with_its_id() {
        let mut file = write_db(&sample()).unwrap();
        file[2 * PAGE_BYTES] ^= 1; // page 2's header id
        assert_eq!(
            read_db(&file).unwrap_err(),
            ReadError::Page {
                pgid: 2,
                reason: "header says page 3".into()
            }
        );
    }

    #[test]
    fn a_stored_freelist_is_read_and_checked() {
        // Rewrite the meta in use to name a freelist page appended at the end, listing one
        // extra page also appended: the file bbolt writes without NoFreelistSync.
        let mut file = write_db(&sample()).unwrap();
        let hw = (file.len() / PAGE_BYTES) as u64;
        let mut freelist = vec![0u8; PAGE_BYTES];
        freelist[0..8].copy_from_slice(&hw.to_le_bytes());
        freelist[8..10].copy_from_slice(&FREELIST_FLAG.to_le_bytes());
        freelist[10..12].copy_from_slice(&1u16.to_le_bytes());
        freelist[16..24].copy_from_slice(&(hw + 1).to_le_bytes());
        file.extend_from_slice(&freelist);
        file.extend_from_slice(&vec![0u8; PAGE_BYTES]);
        let m = &mut file[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BYTES];
        m[32..40].copy_from_slice(&hw.to_le_bytes());
        m[40..48].copy_from_slice(&(hw + 2).to_le_bytes());
        let sum = fnv1a64(&m[..META_CHECKSUMMED_BYTES]);
        m[56..64].copy_from_slice(&sum.to_le_bytes());
        let db = read_db(&file).unwrap();
        assert_eq!(db.high_water, hw + 2);
        // The same file with the free page not listed: unreachable and not free.
        file[hw as usize * PAGE_BYTES + 10] = 0;
        let err = read_db(&file).unwrap_err();
        assert_eq!(err, page_err(hw + 1, "unreachable and not free"));
    }

    proptest! {
        #[test]
        fn any_buckets_round_trip(
            raw in proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 1..12),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 1..40),
                    proptest::collection::vec(any::<u8>(), 0..600),
                    0..120,
                ),
                0..5,
            )
        ) {
            let buckets: Vec<Bucket> = raw
                .into_iter()
                .map(|(name, entries)| Bucket { name, entries: entries.into_iter().collect() })
                .collect();
            let file = write_db(&buckets).unwrap();
            let db = read_db(&file).unwrap();
            prop_assert_eq!(owned(&db), buckets);
        }

        #[test]
        fn damage_anywhere_is_an_error_or_a_readable_file_never_a_panic(
            at in 0usize..40_000, byte in any::<u8>(), cut in 0usize..40_000
        ) {
            let file = write_db(&sample()).unwrap();
            let mut damaged = file.clone();
            let at = at % damaged.len();
            damaged[at] = byte;
            let _ = read_db(&damaged);
            let _ = read_db(&file[..cut.min(file.len())]);
        }
    }
}
