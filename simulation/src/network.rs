//! The simulated network between nodes: every message is delivered after a per-link delay, or
//! lost, or delivered twice, possibly overtaking earlier messages; links can be cut one way
//! or both ways (partitions) and healed.
//!
//! What it models: peers talk over TCP streams (`PeerLink`), but a stream breaks and is
//! re-dialled when a member restarts or the network flaps, so Raft must tolerate loss,
//! duplication and reordering anyway (Raft §5.1: "RPCs may be lost, delayed, duplicated,
//! reordered"). The simulator is harsher than TCP on purpose.

use std::collections::BTreeSet;

use ferrokv::raft::{Message, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::clock::Tick;

/// How the links of one run behave while faults are on. Drawn from the seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkProfile {
    /// Minimum one-way delay of a message, ticks (≥ 1, so a reply never lands in the tick
    /// its request was sent).
    pub delay_ticks_min: u64,
    /// Maximum one-way delay in normal operation, ticks. Different delays per message are
    /// what reorders them.
    pub delay_ticks_max: u64,
    /// Chance a message is lost, per mille.
    pub loss_per_mille: u32,
    /// Chance a message is delivered twice, per mille.
    pub duplicate_per_mille: u32,
    /// Chance a message is held back by an extra `1..=delay_spike_ticks_max` ticks, per mille
    /// (a congested link: it lets later messages overtake it).
    pub delay_spike_per_mille: u32,
    /// Largest extra hold-back of a delay spike, ticks.
    pub delay_spike_ticks_max: u64,
}

impl NetworkProfile {
    /// A random profile: from a clean LAN to a lossy, reordering one.
    pub fn random(rng: &mut ChaCha8Rng) -> Self {
        let delay_ticks_min = rng.random_range(1..=2);
        NetworkProfile {
            delay_ticks_min,
            delay_ticks_max: delay_ticks_min + rng.random_range(0..=3),
            loss_per_mille: rng.random_range(0..=150),
            duplicate_per_mille: rng.random_range(0..=60),
            delay_spike_per_mille: rng.random_range(0..=50),
            delay_spike_ticks_max: rng.random_range(1..=15),
        }
    }
}

/// Counters of what the network did, for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages dropped by random loss.
    pub lost: u64,
    /// Messages dropped because their link was cut.
    pub partitioned: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Messages held back by a delay spike.
    pub delayed: u64,
}

/// The network. It does not hold messages itself: [`Network::send`] answers when (if ever)
/// each copy arrives and the cluster queues the deliveries on its clock.
#[derive(Debug)]
pub struct Network {
    rng: ChaCha8Rng,
    profile: NetworkProfile,
    /// Whether loss, duplication and delay spikes are on (off in the liveness phase).
    faults_on: bool,
    /// Cut links, `(from, to)`: a message on a cut link is dropped when sent and when due.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// What happened so far.
    pub stats: NetworkStats,
}

impl Network {
    /// A network behaving as `profile`, with faults on, drawing from `rng`.
    pub fn new(rng: ChaCha8Rng, profile: NetworkProfile) -> Self {
        Network {
            rng,
            profile,
            faults_on: true,
            cut: BTreeSet::new(),
            stats: NetworkStats::default(),
        }
    }

    /// The behaviour of the links.
    pub fn profile(&self) -> &NetworkProfile {
        &self.profile
    }

    /// Turns random loss, duplication and delay spikes on or off. Cut links stay cut.
    pub fn set_faults(&mut self, on: bool) {
        self.faults_on = on;
    }

    /// Whether messages from `from` to `to` currently get through the partition.
    pub fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Cuts the link `from → to` (a one-way partition: `to → from` still works).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Cuts every link between the two sides, both ways.
    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for &a in side_a {
            for &b in side_b {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    /// Restores every cut link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Number of cut directed links.
    pub fn cut_links(&self) -> usize {
        self.cut.len()
    }

    /// Sends `msg` at `now`: returns the ticks at which copies arrive (none if lost or the
    /// link is cut, two if duplicated).
    pub fn send(&mut self, now: Tick, msg: &Message) -> Vec<Tick> {
        self.stats.sent += 1;
        if !self.link_up(msg.from, msg.to) {
            self.stats.partitioned += 1;
            return Vec::new();
        }
        if self.faults_on && self.chance(self.profile.loss_per_mille) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let mut arrivals = vec![now + self.delay()];
        if self.faults_on && self.chance(self.profile.duplicate_per_mille) {
            self.stats.duplicated += 1;
            arrivals.push(now + self.delay());
        }
        arrivals
    }

    fn delay(&mut self) -> Tick {
        let mut delay = self
            .rng
            .random_range(self.profile.delay_ticks_min..=self.profile.delay_ticks_max);
        if self.faults_on && self.chance(self.profile.delay_spike_per_mille) {
            self.stats.delayed += 1;
            delay += self
                .rng
                .random_range(1..=self.profile.delay_spike_ticks_max);
        }
        delay
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.random_range(0..1000) < per_mille
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv::raft::MessageBody;
    use rand::SeedableRng;

    fn msg(from: NodeId, to: NodeId) -> Message {
        Message {
            from,
            to,
            term: 1,
            body: MessageBody::TimeoutNow,
        }
    }

    fn clean() -> NetworkProfile {
        NetworkProfile {
            delay_ticks_min: 2,
            delay_ticks_max: 2,
            loss_per_mille: 0,
            duplicate_per_mille: 0,
            delay_spike_per_mille: 0,
            delay_spike_ticks_max: 1,
        }
    }

    #[test]
    fn a_clean_link_delivers_once_after_its_delay() {
        let mut net = Network::new(ChaCha8Rng::seed_from_u64(1), clean());
        assert_eq!(net.send(10, &msg(1, 2)), vec![12]);
    }

    #[test]
    fn a_one_way_cut_drops_only_that_direction_until_healed() {
        let mut net = Network::new(ChaCha8Rng::seed_from_u64(1), clean());
        net.cut_one_way(1, 2);
        assert_eq!(net.send(0, &msg(1, 2)), Vec::<Tick>::new());
        assert_eq!(net.send(0, &msg(2, 1)), vec![2]);
        net.heal();
        assert_eq!(net.send(0, &msg(1, 2)), vec![2]);
        assert_eq!(net.stats.partitioned, 1);
    }

    #[test]
    fn total_loss_drops_everything_but_only_while_faults_are_on() {
        let profile = NetworkProfile {
            loss_per_mille: 1000,
            ..clean()
        };
        let mut net = Network::new(ChaCha8Rng::seed_from_u64(1), profile);
        assert!(net.send(0, &msg(1, 2)).is_empty());
        net.set_faults(false);
        assert_eq!(net.send(0, &msg(1, 2)), vec![2]);
    }

    #[test]
    fn certain_duplication_delivers_two_copies() {
        let profile = NetworkProfile {
            duplicate_per_mille: 1000,
            ..clean()
        };
        let mut net = Network::new(ChaCha8Rng::seed_from_u64(1), profile);
        assert_eq!(net.send(0, &msg(1, 2)), vec![2, 2]);
    }
}
