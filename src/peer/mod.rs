//! Member-to-member transport for Raft messages over tonic (`proto/peerpb/raft.proto`).
//!
//! Sending: one [`actor::PeerLink`] per peer keeps a client stream open, reconnecting with
//! backoff. Receiving: [`server::PeerService`] steps every message it receives into the
//! `RaftActor`. Raft tolerates loss, so a link that is down or full drops messages rather
//! than blocking the `RaftActor`.

pub mod actor;
pub mod convert;
pub mod server;
