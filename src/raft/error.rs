//! Errors returned by the Raft core.

/// Errors of the Raft core and of [`Storage`](super::Storage) implementations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// A proposal or read could not be accepted: no leader is known, the node is a candidate,
    /// or a leadership transfer is in progress. The caller should retry later (etcd returns
    /// `ErrProposalDropped` in the same situations); nothing was appended or queued.
    #[error("proposal dropped: no leader known or leadership transfer in progress")]
    ProposalDropped,
    /// The `Config` given to `RawNode::new` is inconsistent; the string says which rule failed.
    #[error("invalid raft config: {0}")]
    ConfigInvalid(String),
    /// The requested index is below the storage's first index (compacted into a snapshot).
    #[error("requested index is compacted")]
    Compacted,
    /// The requested index is above the storage's last index.
    #[error("requested entry is unavailable")]
    Unavailable,
    /// A message was stepped that is addressed to another node or sent by this node.
    #[error("message addressed to {to} stepped into node {id}")]
    WrongRecipient {
        /// The node the message was stepped into.
        id: u64,
        /// The message's `to`.
        to: u64,
    },
    /// `campaign` on a node that is not a voter of the current configuration.
    #[error("node is not a voter and cannot campaign")]
    NotVoter,
    /// A configuration change is malformed or not allowed in the current configuration (e.g.
    /// changing two voters without a joint configuration, leaving a joint configuration that
    /// was never entered, removing every voter); the string says which rule failed.
    #[error("invalid configuration change: {0}")]
    ConfChangeInvalid(String),
    /// Another configuration change is still unapplied; retry after it is applied (the leader
    /// accepts one change at a time, Raft thesis §4.1).
    #[error("a configuration change is already pending")]
    ConfChangePending,
    /// The storage cannot produce a snapshot right now (e.g. one is being built); the leader
    /// sends nothing and retries on a later heartbeat round (etcd raft
    /// `ErrSnapshotTemporarilyUnavailable`).
    #[error("snapshot is temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// A snapshot point older than (or equal to) the one the storage already has was given to
    /// `MemStorage::create_snapshot` / `apply_snapshot` (etcd raft `ErrSnapOutOfDate`).
    #[error("requested snapshot is older than the existing snapshot")]
    SnapOutOfDate,
    /// A storage implementation failed; the string describes the failure.
    #[error("raft storage: {0}")]
    Storage(String),
}

/// Result alias of the Raft core.
pub type Result<T> = std::result::Result<T, RaftError>;
