//! Linearizable reads in rounds (etcd's linearizable read loop, `etcdserver/v3_server.go`
//! `linearizableReadLoop`): at most one ReadIndex confirmation is in flight per member, and it
//! serves every read that arrived before it was sent; reads arriving meanwhile wait for the
//! next round. So a burst of reads costs one heartbeat round trip on the leader, not one
//! broadcast per read.
//!
//! ```text
//!  read_index(7), read_index(8) ─► round 1 {7, 8} ──ReadIndex(ctx = member ‖ 1)──► leader
//!  read_index(9)                ─► queued {9}
//!  ReadState(ctx 1, index 42)   ─► ReadReady 7@42, 8@42; round 2 {9} starts
//!  round unanswered for READ_RETRY_TICKS (lost message) ─► resent under the same context
//! ```

/// Ticks after which an unanswered round is sent again, under the same context (etcd resends
/// its read index every 500 ms: 5 ticks of the default 100 ms `--heartbeat-interval`).
pub const READ_RETRY_TICKS: u64 = 5;

/// One ReadIndex request in flight and the reads it will answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Round {
    /// The round id, the counter half of its read context.
    pub id: u64,
    /// Read ids it answers, in arrival order.
    pub reads: Vec<u64>,
    /// Ticks since it was sent.
    pub age_ticks: u64,
}

/// The reads of one member. Invariant: `queued` is empty while no round is in flight (a new
/// read starts a round at once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ReadRounds {
    /// Reads waiting for the next round, in arrival order.
    pub queued: Vec<u64>,
    /// The round in flight.
    pub in_flight: Option<Round>,
    /// Id of the last round started (the first is drawn at random per incarnation).
    pub last_round: u64,
}

impl ReadRounds {
    /// Starts a round for every queued read; returns its id.
    pub fn start(&mut self) -> u64 {
        self.last_round = self.last_round.wrapping_add(1);
        self.in_flight = Some(Round {
            id: self.last_round,
            reads: std::mem::take(&mut self.queued),
            age_ticks: 0,
        });
        self.last_round
    }

    /// Every read waiting, in flight first; leaves nothing.
    pub fn take_all(&mut self) -> Vec<u64> {
        let mut all = self.in_flight.take().map(|r| r.reads).unwrap_or_default();
        all.append(&mut self.queued);
        all
    }

    /// Forgets read `id` wherever it waits.
    pub fn cancel(&mut self, id: u64) {
        self.queued.retain(|r| *r != id);
        if let Some(round) = &mut self.in_flight {
            round.reads.retain(|r| *r != id);
        }
    }

    /// Read ids waiting, in flight first.
    pub fn pending(&self) -> impl Iterator<Item = u64> + '_ {
        self.in_flight
            .iter()
            .flat_map(|r| r.reads.iter().copied())
            .chain(self.queued.iter().copied())
    }
}
