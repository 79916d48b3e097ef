//! `Revision { main, sub }` and its backend key encoding.
//!
//! etcd numbers every write transaction with a store-wide `main` revision and every change
//! inside it with a `sub` revision (0, 1, 2, ... in the order the changes were made). The backend
//! keys of the `kv` keyspace are encoded revisions, big-endian, so that a plain ordered scan of
//! the keyspace visits the history in revision order (etcd `mvcc/revision.go`).

use super::error::MvccError;

/// Length in bytes of an encoded revision: 8 (`main`, big-endian) + 1 (`'_'`) + 8 (`sub`).
pub const REVISION_BYTES: usize = 17;
/// Length in bytes of an encoded revision with the tombstone marker appended.
pub const TOMBSTONE_REVISION_BYTES: usize = REVISION_BYTES + 1;
/// Byte separating `main` from `sub` in the encoding (etcd's choice, kept for readability of
/// raw dumps).
pub const SEPARATOR: u8 = b'_';
/// Byte appended to the key of a record that marks a delete (a tombstone), as etcd does.
pub const TOMBSTONE_MARKER: u8 = b't';

/// A point in the store's history.
///
/// Ordering is lexicographic on `(main, sub)`, which is also the byte order of the encoding.
/// Invariant: both fields are ≥ 0 for every stored revision (the big-endian encoding of a
/// negative `i64` would sort after every positive one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// The store revision of the write transaction (etcd `header.revision`, `mod_revision`).
    pub main: i64,
    /// The index of the change inside its transaction, from 0.
    pub sub: i64,
}

impl Revision {
    /// A revision `(main, sub)`.
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    /// The 17-byte key of this revision: `main` big-endian, `'_'`, `sub` big-endian.
    pub fn to_bytes(self) -> [u8; REVISION_BYTES] {
        debug_assert!(
            self.main >= 0 && self.sub >= 0,
            "negative revision {self:?}"
        );
        let mut out = [0u8; REVISION_BYTES];
        out[..8].copy_from_slice(&self.main.to_be_bytes());
        out[8] = SEPARATOR;
        out[9..].copy_from_slice(&self.sub.to_be_bytes());
        out
    }

    /// The backend key of a record at this revision: the 17-byte encoding, plus the tombstone
    /// marker when the record is a delete (18 bytes).
    pub fn to_key(self, tombstone: bool) -> Vec<u8> {
        let mut key = Vec::with_capacity(TOMBSTONE_REVISION_BYTES);
        key.extend_from_slice(&self.to_bytes());
        if tombstone {
            key.push(TOMBSTONE_MARKER);
        }
        key
    }

    /// Decodes a backend key into `(revision, is_tombstone)`.
    ///
    /// Errors with [`MvccError::Corrupt`] on a wrong length, separator or marker.
    pub fn from_key(key: &[u8]) -> Result<(Revision, bool), MvccError> {
        let tombstone = match key.len() {
            REVISION_BYTES => false,
            TOMBSTONE_REVISION_BYTES if key[REVISION_BYTES] == TOMBSTONE_MARKER => true,
            _ => return Err(MvccError::Corrupt(format!("bad revision key {key:02x?}"))),
        };
        if key[8] != SEPARATOR {
            return Err(MvccError::Corrupt(format!("bad revision key {key:02x?}")));
        }
        let main = i64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
        let sub = i64::from_be_bytes(key[9..17].try_into().expect("8 bytes"));
        if main < 0 || sub < 0 {
            return Err(MvccError::Corrupt(format!(
                "negative revision key {key:02x?}"
            )));
        }
        Ok((Revision { main, sub }, tombstone))
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.main, self.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_is_main_separator_sub_big_endian() {
        let key = Revision::new(0x0102, 3).to_key(false);
        assert_eq!(key, [0, 0, 0, 0, 0, 0, 1, 2, b'_', 0, 0, 0, 0, 0, 0, 0, 3]);
        let tomb = Revision::new(0x0102, 3).to_key(true);
        assert_eq!(tomb.len(), TOMBSTONE_REVISION_BYTES);
        assert_eq!(tomb[17], b't');
    }

    #[test]
    fn decode_rejects_malformed_keys() {
        assert!(Revision::from_key(b"short").is_err());
        let mut key = Revision::new(5, 1).to_key(true);
        key[17] = b'x';
        assert!(Revision::from_key(&key).is_err());
        let mut key = Revision::new(5, 1).to_key(false);
        key[8] = b'-';
        assert!(Revision::from_key(&key).is_err());
    }

    proptest! {
        #[test]
        fn byte_order_matches_revision_order(
            a in (0i64..i64::MAX, 0i64..i64::MAX), b in (0i64..i64::MAX, 0i64..i64::MAX),
            ta: bool, tb: bool,
        ) {
            let (ra, rb) = (Revision::new(a.0, a.1), Revision::new(b.0, b.1));
            let (ka, kb) = (ra.to_key(ta), rb.to_key(tb));
            if ra != rb {
                prop_assert_eq!(ra.cmp(&rb), ka.cmp(&kb));
            }
            prop_assert_eq!(Revision::from_key(&ka).unwrap(), (ra, ta));
        }
    }
}
