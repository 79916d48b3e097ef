//! Errors of the MVCC store.

/// An MVCC failure.
///
/// The request errors (`Compacted` .. `LeaseProvided`) display *exactly* etcd's message texts,
/// because clients (etcdctl, clientv3, python-etcd3) match on the text; the API layer maps them
/// to gRPC codes (OutOfRange for the revision errors, InvalidArgument for the others; see
/// `/work/shared/ETCD-NOTES.md`). `Storage` and `Corrupt` are fatal for the member
/// ([`MvccError::is_fatal`]): the caller must stop applying and restart from disk.
#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    /// A read or compaction asked for a revision below the compacted revision
    /// (etcd `mvcc.ErrCompacted`).
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// A read or compaction asked for a revision above the current revision
    /// (etcd `mvcc.ErrFutureRev`).
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// A put with `ignore_value`/`ignore_lease` on a key that does not exist
    /// (etcd `ErrKeyNotFound`).
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// A put with `ignore_value` that also carries a value (etcd `ErrGRPCValueProvided`).
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// A put with `ignore_lease` that also carries a lease (etcd `ErrGRPCLeaseProvided`).
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A put, keep-alive, time-to-live or revoke names a lease that is not granted (etcd
    /// `lease.ErrLeaseNotFound`; gRPC NotFound).
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A grant asks for an id that is already granted (etcd `ErrLeaseExists`; gRPC
    /// FailedPrecondition).
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// A grant asks for a TTL above [`super::lease::MAX_LEASE_TTL_SECS`] (etcd
    /// `ErrLeaseTTLTooLarge`; gRPC OutOfRange).
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// A NOSPACE alarm is active: writes that add data are refused until it is disarmed
    /// (etcd `ErrNoSpace` / `ErrGRPCNoSpace`; gRPC ResourceExhausted).
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// A CORRUPT alarm is active: every request through the log is refused (etcd
    /// `ErrCorrupt` / `ErrGRPCCorrupt`; gRPC DataLoss).
    #[error("etcdserver: corrupt cluster")]
    CorruptCluster,
    /// The backend failed (I/O, poisoned after a failed fsync, a simulated crash, ...). The
    /// source is the backend's own error (a `fjall::Error` for the server's backend), boxed so
    /// this type names no storage engine.
    #[error("mvcc: storage error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record failed its checksum or could not be decoded. Never silently used.
    #[error("mvcc: corrupt data: {0}")]
    Corrupt(String),
}

impl MvccError {
    /// A [`MvccError::Storage`] from any backend error or message.
    pub fn storage(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        MvccError::Storage(e.into())
    }

    /// True for `Storage` and `Corrupt`: the store can no longer be trusted and the member must
    /// stop (etcd treats backend failures as fatal). False for request errors, which are answers
    /// to the client.
    pub fn is_fatal(&self) -> bool {
        matches!(self, MvccError::Storage(_) | MvccError::Corrupt(_))
    }
}

/// Result alias for the MVCC store.
pub type Result<T, E = MvccError> = std::result::Result<T, E>;
