//! The store image: every record of the member's state-machine keyspaces at one applied
//! index, as the bytes a leader streams to a follower whose next log entry is compacted away
//! (Raft §7, InstallSnapshot; docs/snapshots.md §2).
//!
//! ```text
//! header   b"FKVIMAGE"  version u32 BE (= 1)
//!          index u64 BE  term u64 BE  conf_len u32 BE  conf_state JSON (conf_len bytes)
//! records  [space u8 ≥ 1][key_len u32 BE][key][value_len u32 BE][value]   … in key order
//! end      [0u8]
//! trailer  SHA-256 of every byte above (32 bytes)
//! ```
//! `space` numbers the keyspaces of [`SPACES`]. Values are copied as stored, so each keeps its
//! own record checksum; the trailer covers the whole image, so a truncated or damaged transfer
//! is refused before anything is written.
//!
//! The image is cut from a [`fjall::Snapshot`], a consistent cross-keyspace view the store
//! takes right after committing the batch of the snapshot index, so it holds exactly the
//! entries `1..=index` however far the store has moved on since.

use crate::cluster::MEMBERS_KEYSPACE;
use crate::log::StoredConfState;
use crate::mvcc::backend::{KV_KEYSPACE, LEASE_KEYSPACE, META_KEYSPACE};
use crate::raft::{ConfState, SnapshotMeta};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The keyspaces an image carries, numbered from 1 in this order (the number is the record's
/// `space` byte): the MVCC records, the store's meta state (revision, applied index,
/// alarms), the leases, the members' published attributes.
pub const SPACES: [&str; 4] = [KV_KEYSPACE, META_KEYSPACE, LEASE_KEYSPACE, MEMBERS_KEYSPACE];

const MAGIC: &[u8; 8] = b"FKVIMAGE";
const VERSION: u32 = 1;
/// Bytes per chunk handed to the transport.
pub const CHUNK_BYTES: usize = 1 << 20;
const DIGEST_BYTES: usize = 32;

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The bytes are not an image of this version, are cut short or fail the SHA-256.
    #[error("snapshot image: {0}")]
    Invalid(String),
    /// Reading or writing the store failed.
    #[error("snapshot image: storage: {0}")]
    Storage(#[from] fjall::Error),
    /// Recording the install in the log's keyspace failed.
    #[error("snapshot image: {0}")]
    Log(#[from] crate::storage::StorageError),
}

fn invalid(reason: impl Into<String>) -> ImageError {
    ImageError::Invalid(reason.into())
}

/// One keyspace's records, (key, value) in key order.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// A received and verified image, ready to [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreImage {
    /// The snapshot point the image is the state of.
    pub meta: SnapshotMeta,
    /// Records per keyspace name (every name of [`SPACES`] present, possibly empty).
    pub spaces: BTreeMap<&'static str, Records>,
}

impl StoreImage {
    /// Total records over all keyspaces.
    pub fn records(&self) -> usize {
        self.spaces.values().map(Vec::len).sum()
    }
}

fn conf_to_json(cs: &ConfState) -> Vec<u8> {
    serde_json::to_vec(&StoredConfState::from(cs)).expect("plain data serializes")
}

fn conf_from_json(bytes: &[u8]) -> Result<ConfState, ImageError> {
    let stored: StoredConfState =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("conf state: {e}")))?;
    Ok(stored.into())
}

/// Accumulates bytes into chunks of [`CHUNK_BYTES`], hashing everything it passes on.
struct Chunker<F: FnMut(Vec<u8>) -> bool> {
    buf: Vec<u8>,
    hash: Sha256,
    sink: F,
    total: u64,
    open: bool,
}

impl<F: FnMut(Vec<u8>) -> bool> Chunker<F> {
    fn put(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || !self.open {
            self.buf.clear();
            return;
        }
        self.total += self.buf.len() as u64;
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.open = (self.sink)(chunk);
    }
}

/// Writes the image of `view` (the state at `meta.index`) into `sink`, chunk by chunk.
/// `sink` returns false when the receiver went away; writing then stops early.
///
/// Returns the image's size in bytes, or `None` when stopped early. Errors:
/// [`ImageError::Storage`] when a keyspace cannot be opened or read.
pub fn write_image(
    db: &Database,
    view: &fjall::Snapshot,
    meta: &SnapshotMeta,
    sink: impl FnMut(Vec<u8>) -> bool,
) -> Result<Option<u64>, ImageError> {
    let mut out = Chunker {
        buf: Vec::with_capacity(CHUNK_BYTES),
        hash: Sha256::new(),
        sink,
        total: 0,
        open: true,
    };
    out.put(MAGIC);
    out.put(&VERSION.to_be_bytes());
    out.put(&meta.index.to_be_bytes());
    out.put(&meta.term.to_be_bytes());
    let conf = conf_to_json(&meta.conf_state);
    out.put(&(conf.len() as u32).to_be_bytes());
    out.put(&conf);
    for (i, name) in SPACES.iter().enumerate() {
        let keyspace = open_keyspace(db, name)?;
        for item in view.iter(&keyspace) {
            let (key, value) = item.into_inner()?;
            out.put(&[i as u8 + 1]);
            out.put(&(key.len() as u32).to_be_bytes());
            out.put(&key);
            out.put(&(value.len() as u32).to_be_bytes());
            out.put(&value);
            if !out.open {
                return Ok(None);
            }
        }
    }
    out.put(&[0]);
    let digest = out.hash.clone().finalize();
    out.buf.extend_from_slice(&digest);
    out.flush();
    Ok(out.open.then_some(out.total))
}

fn open_keyspace(db: &Database, name: &str) -> Result<Keyspace, fjall::Error> {
    db.keyspace(name, KeyspaceCreateOptions::default)
}

/// Checks and decodes a whole image (the concatenated chunks).
///
/// Errors: [`ImageError::Invalid`] naming what is wrong: magic, version, SHA-256 mismatch,
/// a record cut short, an unknown space number, records out of key order.
pub fn decode(bytes: &[u8]) -> Result<StoreImage, ImageError> {
    let body_len = bytes
        .len()
        .checked_sub(DIGEST_BYTES)
        .ok_or_else(|| invalid("shorter than its checksum"))?;
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err(invalid("SHA-256 mismatch (damaged or incomplete transfer)"));
    }
    let mut r = Reader { bytes: body, at: 0 };
    if r.take(8)? != MAGIC {
        return Err(invalid("not a ferrokv store image"));
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(invalid(format!("version {version}, expected {VERSION}")));
    }
    let index = r.u64()?;
    let term = r.u64()?;
    let conf_len = r.u32()? as usize;
    let conf_state = conf_from_json(r.take(conf_len)?)?;
    let mut spaces: BTreeMap<&'static str, Records> =
        SPACES.iter().map(|name| (*name, Vec::new())).collect();
    loop {
        let space = r.take(1)?[0];
        if space == 0 {
            break;
        }
        let name = *SPACES
            .get(space as usize - 1)
            .ok_or_else(|| invalid(format!("unknown space {space}")))?;
        let key_len = r.u32()? as usize;
        let key = r.take(key_len)?.to_vec();
        let value_len = r.u32()? as usize;
        let value = r.take(value_len)?.to_vec();
        let records = spaces.get_mut(name).expect("every space listed");
        if records.last().is_some_and(|(last, _)| *last >= key) {
            return Err(invalid(format!("{name}: keys out of order")));
        }
        records.push((key, value));
    }
    if r.at != body.len() {
        return Err(invalid("bytes after the end marker"));
    }
    Ok(StoreImage {
        meta: SnapshotMeta {
            index,
            term,
            conf_state,
        },
        spaces,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ImageError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| invalid("cut short"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, ImageError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Result<u64, ImageError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
}

/// Replaces the keyspaces of [`SPACES`] in `db` with `image`, in one atomic batch, with
/// `extra` (more writes, e.g. the log's record of the installed snapshot) in the same batch,
/// then fsyncs. A crash keeps the old state or the new one, never a mix.
///
/// The caller must reopen everything that caches those keyspaces (the MVCC [`crate::mvcc::Kv`],
/// [`crate::cluster::Members`]) afterwards. Errors: [`ImageError::Storage`].
pub fn install(
    db: &Database,
    image: &StoreImage,
    extra: impl FnOnce(&mut fjall::OwnedWriteBatch) -> Result<(), crate::storage::StorageError>,
) -> Result<(), ImageError> {
    let mut batch = db.batch();
    for (name, records) in &image.spaces {
        let keyspace = open_keyspace(db, name)?;
        let incoming: std::collections::BTreeSet<&[u8]> =
            records.iter().map(|(k, _)| k.as_slice()).collect();
        // One batch shares one sequence number: a key must appear once, so only the keys the
        // image lacks are removed, and the image's keys are overwritten in place.
        for item in keyspace.iter() {
            let key = item.key()?;
            if !incoming.contains(key.as_ref()) {
                batch.remove(&keyspace, key);
            }
        }
        for (key, value) in records {
            batch.insert(&keyspace, key.as_slice(), value.as_slice());
        }
    }
    extra(&mut batch)?;
    batch.commit()?;
    db.persist(PersistMode::SyncAll)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            index: 42,
            term: 3,
            conf_state: ConfState::from_voters([1, 2, 3]),
        }
    }

    fn image_of(db: &Database, view: &fjall::Snapshot) -> Vec<u8> {
        let mut bytes = Vec::new();
        let size = write_image(db, view, &meta(), |chunk| {
            bytes.extend_from_slice(&chunk);
            true
        })
        .unwrap();
        assert_eq!(size, Some(bytes.len() as u64));
        bytes
    }

    #[test]
    fn an_image_holds_the_view_not_later_writes_and_installs_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let kv = open_keyspace(&db, KV_KEYSPACE).unwrap();
        let members = open_keyspace(&db, MEMBERS_KEYSPACE).unwrap();
        kv.insert(b"a", b"1").unwrap();
        kv.insert(b"b", b"2").unwrap();
        members.insert(b"m", b"x").unwrap();
        let view = db.snapshot();
        kv.insert(b"c", b"after the view").unwrap();
        let bytes = image_of(&db, &view);

        let image = decode(&bytes).unwrap();
        assert_eq!(image.meta, meta());
        assert_eq!(
            image.spaces[KV_KEYSPACE],
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        assert_eq!(image.records(), 3);

        // Installing replaces what the target held: keys the image lacks go.
        let other = tempfile::tempdir().unwrap();
        let target = crate::storage::open(other.path()).unwrap();
        let tkv = open_keyspace(&target, KV_KEYSPACE).unwrap();
        tkv.insert(b"a", b"old").unwrap();
        tkv.insert(b"z", b"stale").unwrap();
        install(&target, &image, |_| Ok(())).unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = tkv
            .iter()
            .map(|g| {
                let (k, v) = g.into_inner().unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        assert_eq!(got, image.spaces[KV_KEYSPACE]);
        let tmembers = open_keyspace(&target, MEMBERS_KEYSPACE).unwrap();
        assert_eq!(tmembers.get(b"m").unwrap().as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn a_damaged_or_short_image_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        open_keyspace(&db, KV_KEYSPACE)
            .unwrap()
            .insert(b"k", b"v")
            .unwrap();
        let bytes = image_of(&db, &db.snapshot());
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(matches!(decode(&flipped), Err(ImageError::Invalid(m)) if m.contains("SHA-256")));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&bytes[..10]).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn a_receiver_that_goes_away_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        let kv = open_keyspace(&db, KV_KEYSPACE).unwrap();
        let value = vec![7u8; 64 * 1024];
        for i in 0..40u32 {
            kv.insert(i.to_be_bytes(), value.as_slice()).unwrap();
        }
        let mut chunks = 0;
        let size = write_image(&db, &db.snapshot(), &meta(), |_| {
            chunks += 1;
            false
        })
        .unwrap();
        assert_eq!((size, chunks), (None, 1));
    }
}
