//! A writer of bbolt database files, the format of etcd's backend and of the file
//! `etcdctl snapshot save` keeps (docs/snapshots.md §4), and, in [`etcd`], the buckets etcd 3.4
//! keeps in it, built from a consistent view of this member's store.
//!
//! No Rust crate writes bbolt files in a state we could depend on (`bbolt-rs` is a one-person
//! port with no stated license; `jammdb` is bolt-inspired but keeps a format of its own), so this
//! module writes the format directly. The facts below come from etcd-io/bbolt v1.3.6 (the
//! version etcd 3.4.23 links), files `page.go`, `db.go`, `bucket.go`, `node.go`, `tx.go`.
//!
//! # Layout of the file this writer produces
//!
//! ```text
//! page 0   meta (txid 2)        every page is PAGE_BYTES = 4096 bytes; a page whose content is
//! page 1   meta (txid 1)        larger spans 1 + overflow consecutive pages
//! page 2…  the pages of each non-inline bucket, leaves first, then each level of branches
//!   …      the pages of the root bucket (whose leaf elements are the buckets), last
//! ```
//! Every page from 2 to the high-water mark is referenced exactly once, so bbolt's `tx.Check`
//! (which `etcdctl snapshot status` runs) finds no unreachable or doubly referenced page.
//!
//! - **Page header** (`page.go`, 16 bytes, little-endian as bbolt writes on every platform etcd
//!   ships for): `id u64 | flags u16 | count u16 | overflow u32`. Flags: branch 0x01, leaf
//!   0x02, meta 0x04, freelist 0x10.
//! - **Leaf element** (16 bytes each, after the header): `flags u32 | pos u32 | ksize u32 |
//!   vsize u32`; `pos` counts from the element's own first byte to its key, the value follows
//!   the key. Flag 0x01 marks a value that is a bucket.
//! - **Branch element** (16 bytes): `pos u32 | ksize u32 | pgid u64`; the key is the first key of
//!   the child page.
//! - **Meta** (`db.go`, 64 bytes after the page header): `magic u32 = 0xED0CDAED | version u32 =
//!   2 | page_size u32 | flags u32 | root bucket (root pgid u64, sequence u64) | freelist pgid u64
//!   | high-water pgid u64 | txid u64 | checksum u64`, the checksum being FNV-1a 64 of the 56
//!   bytes before it. A reader takes the valid meta with the larger txid; bbolt writes a
//!   transaction's meta to page `txid % 2`, hence txid 2 on page 0 and 1 on page 1.
//! - **Bucket value** (`bucket.go`): `root pgid u64 | sequence u64`. With root 0 the bucket is
//!   *inline*: a leaf page (header with id 0, elements, data) follows in the value itself.
//!   bbolt inlines a bucket when it holds no sub-bucket and its leaf page would take at most a
//!   quarter of a page (`Bucket.inlineable`); we inline exactly then, so every bucket is where
//!   bbolt itself would put it.
//! - **Freelist**: none stored (freelist pgid = `u64::MAX`, bbolt's `pgidNoFreelist`), as etcd
//!   writes on Linux (`NoFreelistSync`). Every bbolt since 1.3.2 rebuilds the list by walking
//!   the tree (`db.freepages`) when it opens such a file, read-only or not; since our file has
//!   no free page, the list is empty. The rejected alternative, an empty freelist page, costs a
//!   page and differs from the files etcd itself produces.
//!
//! Pages are filled up to the page size (bbolt splits at its fill percent, 50% by default, but
//! readers accept any fill); an element too large for one page gets a page of its own with
//! overflow pages.

use std::fmt;

/// Bytes per page (bbolt uses the OS page size; etcd's files on Linux/amd64 have 4096).
pub const PAGE_BYTES: usize = 4096;
/// bbolt's meta magic (`db.go` `magic`).
pub const MAGIC: u32 = 0xED0C_DAED;
/// bbolt's file format version (`db.go` `version`).
pub const VERSION: u32 = 2;
/// The freelist pgid meaning "no freelist stored" (`db.go` `pgidNoFreelist`).
pub const NO_FREELIST: u64 = u64::MAX;

pub(super) const PAGE_HEADER_BYTES: usize = 16;
pub(super) const ELEMENT_BYTES: usize = 16;
pub(super) const BUCKET_HEADER_BYTES: usize = 16;
pub(super) const META_BYTES: usize = 64;
pub(super) const META_CHECKSUMMED_BYTES: usize = 56;
pub(super) const BRANCH_FLAG: u16 = 0x01;
pub(super) const LEAF_FLAG: u16 = 0x02;
pub(super) const META_FLAG: u16 = 0x04;
/// Leaf element flag of a value that is a bucket (`page.go` `bucketLeafFlag`).
pub(super) const BUCKET_LEAF_FLAG: u32 = 0x01;
/// Largest key bbolt accepts (`bucket.go` `MaxKeySize`), bytes.
pub const KEY_BYTES_MAX: usize = 32_768;
/// Largest value bbolt accepts (`bucket.go` `MaxValueSize`), bytes.
pub const VALUE_BYTES_MAX: usize = (1 << 31) - 2;

/// One top-level bucket to write: its name and its (key, value) pairs.
///
/// Invariant (checked by [`write_db`]): keys strictly increase byte-wise (bbolt's order,
/// `bytes.Compare`), none is empty or longer than [`KEY_BYTES_MAX`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's name (a key of the root bucket).
    pub name: Vec<u8>,
    /// The pairs, in key order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Bucket {
    /// An empty bucket called `name`.
    pub fn new(name: &[u8]) -> Self {
        Bucket {
            name: name.to_vec(),
            entries: Vec::new(),
        }
    }

    /// Appends a pair; callers append in key order.
    pub fn push(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.entries.push((key.into(), value.into()));
    }
}

/// Why a set of buckets cannot be written as a bbolt file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BboltError {
    /// Keys (or bucket names) not strictly increasing, in the named bucket ("" = the root).
    Unsorted(String),
    /// An empty or oversized key, or an oversized value, in the named bucket.
    BadSize(String),
}

impl fmt::Display for BboltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BboltError::Unsorted(b) => write!(f, "bbolt: keys of bucket {b:?} are not in order"),
            BboltError::BadSize(b) => write!(f, "bbolt: bad key or value size in bucket {b:?}"),
        }
    }
}

impl std::error::Error for BboltError {}

/// One element of a leaf page: flags (0 or [`BUCKET_LEAF_FLAG`]), key, value.
type LeafElement<'a> = (u32, &'a [u8], &'a [u8]);

/// The file being built: page 0 and 1 reserved for the metas, pages appended after.
struct Pages {
    bytes: Vec<u8>,
}

impl Pages {
    fn next_pgid(&self) -> u64 {
        (self.bytes.len() / PAGE_BYTES) as u64
    }

    /// Appends one page (with overflow pages when `content` exceeds a page), writing its id and
    /// overflow into the header at the start of `content`. Returns its pgid.
    fn append(&mut self, mut content: Vec<u8>) -> u64 {
        let pgid = self.next_pgid();
        let pages = content.len().div_ceil(PAGE_BYTES).max(1);
        content[0..8].copy_from_slice(&pgid.to_le_bytes());
        content[12..16].copy_from_slice(&((pages - 1) as u32).to_le_bytes());
        content.resize(pages * PAGE_BYTES, 0);
        self.bytes.extend_from_slice(&content);
        pgid
    }
}

fn page_header(flags: u16, count: usize) -> Vec<u8> {
    let mut out = vec![0u8; PAGE_HEADER_BYTES];
    out[8..10].copy_from_slice(&flags.to_le_bytes());
    out[10..12].copy_from_slice(&(count as u16).to_le_bytes());
    out
}

fn leaf_bytes(elements: &[LeafElement<'_>]) -> usize {
    elements
        .iter()
        .map(|(_, k, v)| ELEMENT_BYTES + k.len() + v.len())
        .sum::<usize>()
        + PAGE_HEADER_BYTES
}

/// The bytes of a leaf page holding `elements` (id and overflow left 0), `node.go` `write`.
fn leaf_page(elements: &[LeafElement<'_>]) -> Vec<u8> {
    let mut out = page_header(LEAF_FLAG, elements.len());
    let mut data = Vec::new();
    let data_start = PAGE_HEADER_BYTES + ELEMENT_BYTES * elements.len();
    for (i, (flags, key, value)) in elements.iter().enumerate() {
        let element_at = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
        let pos = data_start + data.len() - element_at;
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&(pos as u32).to_le_bytes());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
    }
    out.extend_from_slice(&data);
    out
}

/// The bytes of a branch page over `children` = (first key, pgid).
fn branch_page(children: &[(&[u8], u64)]) -> Vec<u8> {
    let mut out = page_header(BRANCH_FLAG, children.len());
    let data_start = PAGE_HEADER_BYTES + ELEMENT_BYTES * children.len();
    let mut data = Vec::new();
    for (i, (key, pgid)) in children.iter().enumerate() {
        let element_at = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
        let pos = data_start + data.len() - element_at;
        out.extend_from_slice(&(pos as u32).to_le_bytes());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&pgid.to_le_bytes());
        data.extend_from_slice(key);
    }
    out.extend_from_slice(&data);
    out
}

/// Splits `sizes` (bytes per element, header not counted) into runs that fit a page: a run
/// ends before the element that would push it past [`PAGE_BYTES`]; every run has at least one
/// element (a lone large element takes overflow pages). Returns the run lengths.
fn runs(sizes: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut len, mut bytes) = (0usize, PAGE_HEADER_BYTES);
    for size in sizes {
        if len > 0 && bytes + size > PAGE_BYTES {
            out.push(len);
            (len, bytes) = (0, PAGE_HEADER_BYTES);
        }
        len += 1;
        bytes += size;
    }
    if len > 0 {
        out.push(len);
    }
    out
}

/// Writes the B+tree of `elements` (in key order): leaf pages, then branch levels until one
/// page remains. Returns the root pgid. An empty tree is one empty leaf page.
fn write_tree(pages: &mut Pages, elements: &[LeafElement<'_>]) -> u64 {
    if elements.is_empty() {
        return pages.append(leaf_page(&[]));
    }
    let mut level: Vec<(&[u8], u64)> = Vec::new();
    let mut at = 0;
    for len in runs(
        elements
            .iter()
            .map(|(_, k, v)| ELEMENT_BYTES + k.len() + v.len()),
    ) {
        let run = &elements[at..at + len];
        level.push((run[0].1, pages.append(leaf_page(run))));
        at += len;
    }
    while level.len() > 1 {
        let mut next = Vec::new();
        let mut at = 0;
        for len in runs(level.iter().map(|(k, _)| ELEMENT_BYTES + k.len())) {
            let run = &level[at..at + len];
            next.push((run[0].0, pages.append(branch_page(run))));
            at += len;
        }
        level = next;
    }
    level[0].1
}

/// Checks a bucket's keys: strictly increasing, sizes within bbolt's limits.
fn check_keys<'a>(
    bucket: &str,
    pairs: impl Iterator<Item = (&'a [u8], usize)>,
) -> Result<(), BboltError> {
    let mut prev: Option<&[u8]> = None;
    for (key, value_len) in pairs {
        if key.is_empty() || key.len() > KEY_BYTES_MAX || value_len > VALUE_BYTES_MAX {
            return Err(BboltError::BadSize(bucket.into()));
        }
        if prev.is_some_and(|p| p >= key) {
            return Err(BboltError::Unsorted(bucket.into()));
        }
        prev = Some(key);
    }
    Ok(())
}

/// The value stored under a bucket's name: the inline form when bbolt would inline it
/// (`bucket.go` `inlineable`: no sub-bucket, leaf page ≤ a quarter page), else a bucket header
/// pointing at the bucket's own tree, written now.
fn bucket_value(pages: &mut Pages, bucket: &Bucket) -> Vec<u8> {
    let elements: Vec<LeafElement<'_>> = bucket
        .entries
        .iter()
        .map(|(k, v)| (0, k.as_slice(), v.as_slice()))
        .collect();
    let mut value = vec![0u8; BUCKET_HEADER_BYTES];
    if leaf_bytes(&elements) <= PAGE_BYTES / 4 {
        value.extend_from_slice(&leaf_page(&elements));
    } else {
        let root = write_tree(pages, &elements);
        value[..8].copy_from_slice(&root.to_le_bytes());
    }
    value
}

/// FNV-1a, 64 bits (Go's `hash/fnv` `New64a`, which bbolt's meta checksum uses).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The 64 bytes of a meta (`db.go` `meta`), checksum included.
fn meta_bytes(root: u64, high_water: u64, txid: u64) -> [u8; META_BYTES] {
    let mut m = [0u8; META_BYTES];
    m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    m[4..8].copy_from_slice(&VERSION.to_le_bytes());
    m[8..12].copy_from_slice(&(PAGE_BYTES as u32).to_le_bytes());
    // flags u32 at 12..16: 0; root bucket sequence at 24..32: 0.
    m[16..24].copy_from_slice(&root.to_le_bytes());
    m[32..40].copy_from_slice(&NO_FREELIST.to_le_bytes());
    m[40..48].copy_from_slice(&high_water.to_le_bytes());
    m[48..56].copy_from_slice(&txid.to_le_bytes());
    let sum = fnv1a64(&m[..META_CHECKSUMMED_BYTES]);
    m[56..64].copy_from_slice(&sum.to_le_bytes());
    m
}

/// The bytes of a bbolt database holding `buckets` as top-level buckets (any order; they are
/// sorted by name). Size: a multiple of [`PAGE_BYTES`] (the high-water mark times the page
/// size, what bbolt's `Tx.WriteTo` sends and `Tx.Size` reports). Memory: the whole file.
///
/// Errors: [`BboltError`] when a bucket's keys are out of order, duplicated or oversized, or
/// two buckets share a name.
pub fn write_db(buckets: &[Bucket]) -> Result<Vec<u8>, BboltError> {
    let mut sorted: Vec<&Bucket> = buckets.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    check_keys("", sorted.iter().map(|b| (b.name.as_slice(), 0)))?;
    for b in &sorted {
        let name = String::from_utf8_lossy(&b.name);
        check_keys(
            &name,
            b.entries.iter().map(|(k, v)| (k.as_slice(), v.len())),
        )?;
    }
    let mut pages = Pages {
        bytes: vec![0u8; 2 * PAGE_BYTES],
    };
    let values: Vec<Vec<u8>> = sorted.iter().map(|b| bucket_value(&mut pages, b)).collect();
    let root_elements: Vec<LeafElement<'_>> = sorted
        .iter()
        .zip(&values)
        .map(|(b, v)| (BUCKET_LEAF_FLAG, b.name.as_slice(), v.as_slice()))
        .collect();
    let root = write_tree(&mut pages, &root_elements);
    let high_water = pages.next_pgid();
    for (pgid, txid) in [(0u64, 2u64), (1, 1)] {
        let at = pgid as usize * PAGE_BYTES;
        let page = &mut pages.bytes[at..at + PAGE_BYTES];
        page[..PAGE_HEADER_BYTES].copy_from_slice(&page_header(META_FLAG, 0));
        page[0..8].copy_from_slice(&pgid.to_le_bytes());
        page[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BYTES]
            .copy_from_slice(&meta_bytes(root, high_water, txid));
    }
    Ok(pages.bytes)
}

#[cfg(test)]
mod tests {
    //! Round trips through a small reader written from bbolt's format (not from our writer):
    //! it checks both metas, walks every bucket like bbolt's `tx.Check` and counts each page
    //! reference.
    use super::*;
    use std::collections::BTreeMap;

    type Dump = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

    fn u16_at(b: &[u8], at: usize) -> usize {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
    }
    fn u32_at(b: &[u8], at: usize) -> usize {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    struct Reader<'a> {
        file: &'a [u8],
        high_water: u64,
        /// References per pgid (overflow pages included).
        refs: BTreeMap<u64, usize>,
        branch_pages: usize,
        overflow_pages: usize,
    }

    impl<'a> Reader<'a> {
        fn open(file: &'a [u8]) -> (Reader<'a>, u64) {
            assert_eq!(file.len() % PAGE_BYTES, 0);
            let mut best: Option<(u64, u64, u64)> = None;
            for pgid in 0..2 {
                let p = &file[pgid * PAGE_BYTES..];
                assert_eq!(u64_at(p, 0), pgid as u64, "meta page id");
                assert_eq!(u16_at(p, 8), META_FLAG as usize);
                let m = &p[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BYTES];
                assert_eq!(u32_at(m, 0) as u32, MAGIC);
                assert_eq!(u32_at(m, 4) as u32, VERSION);
                assert_eq!(u32_at(m, 8), PAGE_BYTES);
                assert_eq!(u64_at(m, 56), fnv1a64(&m[..56]), "meta {pgid} checksum");
                assert_eq!(u64_at(m, 32), NO_FREELIST);
                let (root, hw, txid) = (u64_at(m, 16), u64_at(m, 40), u64_at(m, 48));
                if best.is_none_or(|b| txid > b.2) {
                    best = Some((root, hw, txid));
                }
            }
            let (root, high_water, _) = best.unwrap();
            assert_eq!(high_water as usize * PAGE_BYTES, file.len(), "high water");
            let reader = Reader {
                file,
                high_water,
                refs: BTreeMap::new(),
                branch_pages: 0,
                overflow_pages: 0,
            };
            (reader, root)
        }

        /// Every (flags, key, value) under the tree rooted at `pgid`, in order.
        fn walk(&mut self, pgid: u64, out: &mut Vec<(u32, Vec<u8>, Vec<u8>)>) {
            assert!(pgid >= 2 && pgid < self.high_water, "pgid {pgid} in bounds");
            let file = self.file;
            let p = &file[pgid as usize * PAGE_BYTES..];
            assert_eq!(u64_at(p, 0), pgid, "page id");
            let overflow = u32_at(p, 12) as u64;
            self.overflow_pages += overflow as usize;
            for id in pgid..=pgid + overflow {
                *self.refs.entry(id).or_default() += 1;
            }
            let p = &p[..(overflow as usize + 1) * PAGE_BYTES];
            match u16_at(p, 8) as u16 {
                LEAF_FLAG => out.extend(leaf_elements(p)),
                BRANCH_FLAG => {
                    self.branch_pages += 1;
                    let count = u16_at(p, 10);
                    let mut first_keys = Vec::new();
                    for i in 0..count {
                        let e = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
                        let (pos, ksize, child) =
                            (u32_at(p, e), u32_at(p, e + 4), u64_at(p, e + 8));
                        first_keys.push(p[e + pos..e + pos + ksize].to_vec());
                        let before = out.len();
                        self.walk(child, out);
                        assert_eq!(out[before].1, first_keys[i], "branch key = child's first");
                    }
                }
                f => panic!("page {pgid}: unexpected flags {f:#x}"),
            }
        }

        fn dump(mut self, root: u64) -> (Dump, Reader<'a>) {
            let mut top = Vec::new();
            self.walk(root, &mut top);
            let mut dump = Dump::new();
            for (flags, name, value) in top {
                assert_eq!(flags, BUCKET_LEAF_FLAG, "root holds buckets only");
                let bucket_root = u64_at(&value, 0);
                let mut elems = Vec::new();
                if bucket_root == 0 {
                    let inline = &value[BUCKET_HEADER_BYTES..];
                    assert!(value.len() <= BUCKET_HEADER_BYTES + PAGE_BYTES / 4);
                    assert_eq!(u16_at(inline, 8), LEAF_FLAG as usize);
                    elems.extend(leaf_elements(inline));
                } else {
                    self.walk(bucket_root, &mut elems);
                }
                let pairs: Vec<_> = elems
                    .into_iter()
                    .map(|(f, k, v)| {
                        assert_eq!(f, 0);
                        (k, v)
                    })
                    .collect();
                assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
                dump.insert(name, pairs);
            }
            for id in 2..self.high_water {
                assert_eq!(self.refs.get(&id), Some(&1), "page {id} referenced once");
            }
            (dump, self)
        }
    }

    fn leaf_elements(p: &[u8]) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
        (0..u16_at(p, 10))
            .map(|i| {
                let e = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
                let (flags, pos) = (u32_at(p, e) as u32, u32_at(p, e + 4));
                let (ks, vs) = (u32_at(p, e + 8), u32_at(p, e + 12));
                let k = p[e + pos..e + pos + ks].to_vec();
                (flags, k, p[e + pos + ks..e + pos + ks + vs].to_vec())
            })
            .collect()
    }

    fn read(file: &[u8]) -> (Dump, usize, usize) {
        let (reader, root) = Reader::open(file);
        let (dump, r) = reader.dump(root);
        (dump, r.branch_pages, r.overflow_pages)
    }

    fn as_dump(buckets: &[Bucket]) -> Dump {
        buckets
            .iter()
            .map(|b| (b.name.clone(), b.entries.clone()))
            .collect()
    }

    #[test]
    fn small_buckets_are_inline_and_round_trip() {
        let mut a = Bucket::new(b"meta");
        a.push("consistent_index", 9u64.to_be_bytes());
        let buckets = vec![a, Bucket::new(b"alarm")];
        let file = write_db(&buckets).unwrap();
        assert_eq!(file.len(), 3 * PAGE_BYTES, "two metas and the root leaf");
        let (dump, branches, overflow) = read(&file);
        assert_eq!(dump, as_dump(&buckets));
        assert_eq!((branches, overflow), (0, 0));
    }

    #[test]
    fn many_keys_make_branch_pages() {
        let mut b = Bucket::new(b"key");
        for i in 0u64..60_000 {
            b.push(i.to_be_bytes(), format!("value-{i}"));
        }
        let buckets = vec![b];
        let file = write_db(&buckets).unwrap();
        let (dump, branches, _) = read(&file);
        assert_eq!(dump, as_dump(&buckets));
        assert!(branches > 1, "two levels of branches: {branches}");
    }

    #[test]
    fn values_larger_than_a_page_take_overflow_pages() {
        let mut b = Bucket::new(b"key");
        b.push("a", vec![1u8; 10]);
        b.push("b", vec![7u8; 3 * PAGE_BYTES + 5]);
        b.push("c", vec![2u8; PAGE_BYTES - 40]);
        let buckets = vec![b];
        let file = write_db(&buckets).unwrap();
        let (dump, _, overflow) = read(&file);
        assert_eq!(dump, as_dump(&buckets));
        assert_eq!(overflow, 3, "the large value's page spans 4 pages");
    }

    #[test]
    fn a_bucket_over_a_quarter_page_is_not_inline() {
        let mut b = Bucket::new(b"x");
        b.push("k", vec![0u8; PAGE_BYTES / 4]);
        let file = write_db(std::slice::from_ref(&b)).unwrap();
        assert_eq!(
            file.len(),
            4 * PAGE_BYTES,
            "metas, the bucket's leaf, the root"
        );
        assert_eq!(read(&file).0, as_dump(&[b]));
    }

    #[test]
    fn unsorted_or_empty_keys_are_refused() {
        let mut b = Bucket::new(b"x");
        b.push("b", "");
        b.push("a", "");
        assert_eq!(write_db(&[b]), Err(BboltError::Unsorted("x".into())));
        let mut b = Bucket::new(b"x");
        b.push("", "");
        assert_eq!(write_db(&[b]), Err(BboltError::BadSize("x".into())));
        let twins = [Bucket::new(b"x"), Bucket::new(b"x")];
        assert_eq!(write_db(&twins), Err(BboltError::Unsorted("".into())));
    }

    #[test]
    fn fnv1a64_matches_go() {
        // Go: fnv.New64a() over "" and "a".
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }
}
