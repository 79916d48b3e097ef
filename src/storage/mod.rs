//! The member's on-disk database: one fjall [`Database`](fjall::Database) in `<data-dir>/member`,
//! shared by the Raft log ([`crate::log`]) and the MVCC store ([`crate::mvcc`]), each in its own
//! keyspaces.
//!
//! One database (rather than one per component) means one journal: a single fsync by the
//! [`LogActor`](crate::log::actor::LogActor) makes every earlier write durable, and a write batch
//! is atomic across keyspaces, so the MVCC store can record its applied Raft index in the same
//! batch as the data it covers.

use std::path::{Path, PathBuf};

/// Keyspace names, one place for all of them so no two components collide.
pub mod keyspaces {
    /// Raft log entries: key = index as 8 big-endian bytes, value = checksummed entry record.
    pub const RAFT_LOG: &str = "raft_log";
    /// Raft hard state, conf state and the member's identity (cluster id, member id).
    pub const RAFT_STATE: &str = "raft_state";
}

/// Bytes a keyspace's memtable holds before fjall seals and flushes it. fjall's default is
/// 64 MiB per keyspace; with the Raft log and the MVCC records each filling one, a member held
/// every recent write twice in memory (issue 10: 354 MiB RSS after 200k puts). 8 MiB (fjall's
/// recommended range is 8–64 MiB) keeps both small; the cost is more, smaller flushes.
pub const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

/// Options for the member's large keyspaces (the Raft log, the MVCC records): fjall's
/// defaults with a [`MEMTABLE_BYTES`] memtable. Applies when a keyspace is created (fjall
/// keeps the value it was created with).
pub fn keyspace_options() -> fjall::KeyspaceCreateOptions {
    fjall::KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

/// Errors opening the member's database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// fjall failed (I/O, or its own recovery found corruption).
    #[error("storage: {0}")]
    Fjall(#[from] fjall::Error),
    /// A record failed its checksum or could not be decoded.
    #[error("storage: corrupt record in {keyspace} at key {key}: {reason}")]
    Corrupt {
        /// Keyspace holding the record.
        keyspace: &'static str,
        /// The record's key, printed for the operator.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// Path of the database inside a data dir (`<data-dir>/member/db`), so the data dir can hold
/// other things later (snapshots) without mixing them with fjall's files.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("db")
}

/// Opens (or creates) the database of a data dir.
///
/// Errors: [`StorageError::Fjall`] when the directory cannot be created or fjall's recovery fails.
pub fn open(data_dir: &Path) -> Result<fjall::Database, StorageError> {
    let path = db_path(data_dir);
    std::fs::create_dir_all(&path).map_err(|e| StorageError::Fjall(e.into()))?;
    Ok(fjall::Database::builder(&path).open()?)
}

/// Frames `payload` with a CRC-32 (IEEE) checksum: `[crc32 u32 BE][payload]`.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks and strips the checksum added by [`seal`]. Returns `None` when the record is too
/// short or its checksum does not match — the caller reports that as corruption.
pub fn unseal(record: &[u8]) -> Option<&[u8]> {
    let (crc, payload) = record.split_at_checked(4)?;
    let expected = u32::from_be_bytes(crc.try_into().ok()?);
    (crc32fast::hash(payload) == expected).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_detects_a_flipped_bit() {
        let sealed = seal(b"hello");
        assert_eq!(unseal(&sealed), Some(&b"hello"[..]));
        let mut bad = sealed.clone();
        bad[6] ^= 0x01;
        assert_eq!(unseal(&bad), None);
        assert_eq!(unseal(&[1, 2]), None);
    }
}
