//! Leases: time-limited ownership of keys (etcd's lessor), split in two halves.
//!
//! | part | where | what |
//! | --- | --- | --- |
//! | which leases exist, which keys each holds | [`crate::mvcc::lease`] | changes only by applying log entries, on every member, durable |
//! | when a lease expires | [`clock::LeaseClock`] in the [`actor::LeaseReaper`] | only on the leader, in memory; expiry becomes a `LeaseRevoke` proposal |
//!
//! The gRPC Lease service is `crate::api::lease`; docs/lease.md tells the whole story.

pub mod actor;
pub mod clock;

pub use clock::{ClockError, LeaseClock};
