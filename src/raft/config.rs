//! Configuration of one Raft node.

use super::error::{RaftError, Result};
use super::types::NodeId;

/// Settings of one Raft node. Time is counted in ticks: the caller decides how long a tick
/// is (the server uses 100 ms, as etcd's default `--heartbeat-interval`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id; must not be 0.
    pub id: NodeId,
    /// Base election timeout in ticks. A follower or candidate that hears from no leader for a
    /// randomized timeout drawn from `[election_tick, 2 * election_tick)` starts an election
    /// (Raft §5.2); a leader with `check_quorum` checks its quorum every `election_tick` ticks.
    /// Must be greater than `heartbeat_tick`. Default 10.
    pub election_tick: usize,
    /// Ticks between leader heartbeats. Default 1.
    pub heartbeat_tick: usize,
    /// Soft limit in bytes ([`Entry::size_bytes`](super::Entry::size_bytes)) of the entries in
    /// one AppendEntries; one entry is always sent even if larger. Default 1 MiB.
    pub max_size_per_msg: u64,
    /// Maximum AppendEntries in flight to one follower in Replicate state. Default 256.
    pub max_inflight_msgs: usize,
    /// Run a pre-vote round before campaigning (thesis §9.6) so a node rejoining from a
    /// partition does not force the cluster into a new term. Default true.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum for `election_tick` ticks, and
    /// followers that heard from a leader within `election_tick` ignore vote requests (thesis
    /// §6.2, "leader lease"). Default true.
    pub check_quorum: bool,
    /// Last index the application has already applied (on restart); committed entries up to
    /// it are not handed out again. Default 0.
    ///
    /// The `ConfState` in storage must be the configuration as of this index: committed
    /// entries after it, configuration changes included, are handed out and applied again on
    /// top of it, and replaying a change onto a configuration that already contains it is not
    /// idempotent (etcd raft: a restart starts from the snapshot's `ConfState` and `applied`).
    pub applied: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 0,
            election_tick: 10,
            heartbeat_tick: 1,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            pre_vote: true,
            check_quorum: true,
            applied: 0,
        }
    }
}

impl Config {
    /// Default settings for node `id`.
    pub fn new(id: NodeId) -> Self {
        Config {
            id,
            ..Default::default()
        }
    }

    /// Checks the settings. Errors: [`RaftError::ConfigInvalid`] naming the broken rule.
    pub fn validate(&self) -> Result<()> {
        let invalid = |s: &str| Err(RaftError::ConfigInvalid(s.to_string()));
        if self.id == 0 {
            return invalid("id must not be 0");
        }
        if self.heartbeat_tick == 0 {
            return invalid("heartbeat_tick must be greater than 0");
        }
        if self.election_tick <= self.heartbeat_tick {
            return invalid("election_tick must be greater than heartbeat_tick");
        }
        if self.max_inflight_msgs == 0 {
            return invalid("max_inflight_msgs must be greater than 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_each_broken_rule() {
        assert_eq!(Config::new(1).validate(), Ok(()));
        assert!(Config::default().validate().is_err());
        let c = Config {
            heartbeat_tick: 0,
            ..Config::new(1)
        };
        assert!(c.validate().is_err());
        let c = Config {
            election_tick: 1,
            heartbeat_tick: 1,
            ..Config::new(1)
        };
        assert!(c.validate().is_err());
        let c = Config {
            max_inflight_msgs: 0,
            ..Config::new(1)
        };
        assert_eq!(
            c.validate(),
            Err(RaftError::ConfigInvalid(
                "max_inflight_msgs must be greater than 0".into()
            ))
        );
    }
}
