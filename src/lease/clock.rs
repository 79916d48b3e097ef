//! [`LeaseClock`]: when leases expire — the pure, I/O-free half of the `LeaseReaper`.
//!
//! Only the leader (the *primary*, in etcd's lessor terms) keeps expiry times; followers know
//! which leases exist but not when they expire. Time is a caller-supplied monotonic clock in
//! milliseconds, so the server drives it with `Instant` and the simulator with its virtual
//! clock. Rules (etcd `lessor`):
//! - promote (this member became leader): every lease gets a fresh deadline, `now + ttl +
//!   extend`, before anything can expire — a new leader cannot know how long ago the old
//!   leader last renewed a lease, so it must assume "just now" (`extend` = one election
//!   timeout, etcd `Promote(extend)`);
//! - renew (keep-alive): deadline = `now + ttl`; only the primary renews;
//! - a lease whose deadline passed is handed out *once* for revocation; if it is still there
//!   `REVOKE_RETRY_MS` later (the revoke proposal was lost) it is handed out again;
//! - demote (leadership lost): deadlines are forgotten.

use std::collections::BTreeMap;

/// After handing a lease out for revocation, wait this long before handing it out again, ms
/// (etcd `expiredLeaseRetryInterval`, 3 s).
pub const REVOKE_RETRY_MS: u64 = 3_000;

/// Why a renew or time-to-live could not be answered here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// This member is not the leader: ask the leader (etcd `ErrNotPrimary`).
    #[error("lease: not the primary lessor")]
    NotPrimary,
    /// No such lease, or it expired and awaits revocation (etcd `ErrLeaseNotFound`).
    #[error("etcdserver: requested lease not found")]
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timer {
    /// Granted TTL, ms.
    ttl_ms: u64,
    /// Deadline, ms on the caller's clock; `None` unless primary.
    expiry_ms: Option<u64>,
    /// Handed out for revocation; not again before this time, ms.
    revoking_until: Option<u64>,
}

/// What [`LeaseClock::observe_role`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// Became primary: every deadline restarted.
    Promoted,
    /// Stopped being primary: deadlines forgotten.
    Demoted,
    /// Nothing.
    Unchanged,
}

/// Expiry bookkeeping of every granted lease; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct LeaseClock {
    timers: BTreeMap<i64, Timer>,
    primary: bool,
    /// The term this clock was promoted in by [`LeaseClock::observe_role`] (0 = not primary).
    promoted_term: u64,
    /// Extra time a new leader grants every lease, ms.
    extend_ms: u64,
}

fn ttl_ms(ttl_secs: i64) -> u64 {
    u64::try_from(ttl_secs).unwrap_or(0).saturating_mul(1000)
}

impl LeaseClock {
    /// A follower's clock knowing `leases` as `(id, ttl seconds)`; `extend_ms` is added to
    /// every deadline on promotion (use the election timeout, ms).
    pub fn new(leases: impl IntoIterator<Item = (i64, i64)>, extend_ms: u64) -> Self {
        let timers = leases
            .into_iter()
            .map(|(id, ttl)| {
                (
                    id,
                    Timer {
                        ttl_ms: ttl_ms(ttl),
                        expiry_ms: None,
                        revoking_until: None,
                    },
                )
            })
            .collect();
        LeaseClock {
            timers,
            primary: false,
            promoted_term: 0,
            extend_ms,
        }
    }

    /// True while this member keeps deadlines (it is the leader).
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Number of leases known.
    pub fn len(&self) -> usize {
        self.timers.len()
    }

    /// True when no lease is known.
    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }

    /// The one lease role rule, followed by the `LeaseReaper` and the simulator alike: told
    /// this member's role and term as Raft last published them, promote on leading a term
    /// not promoted in yet (a new term restarts every TTL, even for a member that led before),
    /// demote on not leading. Returns what changed.
    pub fn observe_role(&mut self, is_leader: bool, term: u64, now_ms: u64) -> RoleChange {
        if is_leader && self.promoted_term != term {
            self.promote(now_ms);
            self.promoted_term = term;
            RoleChange::Promoted
        } else if !is_leader && self.promoted_term != 0 {
            self.demote();
            self.promoted_term = 0;
            RoleChange::Demoted
        } else {
            RoleChange::Unchanged
        }
    }

    /// This member became leader at `now_ms`: every lease's deadline becomes
    /// `now + ttl + extend` (etcd `lessor.Promote`).
    pub fn promote(&mut self, now_ms: u64) {
        self.primary = true;
        for t in self.timers.values_mut() {
            t.expiry_ms = Some(now_ms + t.ttl_ms + self.extend_ms);
            t.revoking_until = None;
        }
    }

    /// This member stopped being leader: deadlines are forgotten (etcd `lessor.Demote`).
    pub fn demote(&mut self) {
        self.primary = false;
        for t in self.timers.values_mut() {
            t.expiry_ms = None;
            t.revoking_until = None;
        }
    }

    /// A grant of `id` with `ttl_secs` was applied at `now_ms`; on the primary its deadline
    /// starts now.
    pub fn granted(&mut self, id: i64, ttl_secs: i64, now_ms: u64) {
        let ttl_ms = ttl_ms(ttl_secs);
        self.timers.insert(
            id,
            Timer {
                ttl_ms,
                expiry_ms: self.primary.then_some(now_ms + ttl_ms),
                revoking_until: None,
            },
        );
    }

    /// A revoke of `id` was applied (by a client or by expiry).
    pub fn revoked(&mut self, id: i64) {
        self.timers.remove(&id);
    }

    /// Keep-alive of `id` at `now_ms`: returns the granted TTL, seconds, and restarts the
    /// deadline (etcd `lessor.Renew`). Errors: [`ClockError::NotPrimary`] on a follower;
    /// [`ClockError::NotFound`] for an unknown lease or one whose deadline passed (it is being
    /// revoked; a renew cannot resurrect it).
    pub fn renew(&mut self, id: i64, now_ms: u64) -> Result<i64, ClockError> {
        if !self.primary {
            return Err(ClockError::NotPrimary);
        }
        let t = self.timers.get_mut(&id).ok_or(ClockError::NotFound)?;
        if t.expiry_ms.is_some_and(|e| e <= now_ms) {
            return Err(ClockError::NotFound);
        }
        t.expiry_ms = Some(now_ms + t.ttl_ms);
        Ok((t.ttl_ms / 1000) as i64)
    }

    /// `(granted TTL, remaining TTL)` of `id` at `now_ms`, seconds; the remaining time is
    /// rounded down, as etcd's `LeaseTimeToLive` does. Errors as [`LeaseClock::renew`].
    pub fn time_to_live(&self, id: i64, now_ms: u64) -> Result<(i64, i64), ClockError> {
        if !self.primary {
            return Err(ClockError::NotPrimary);
        }
        let t = self.timers.get(&id).ok_or(ClockError::NotFound)?;
        let remaining_ms = t.expiry_ms.map_or(t.ttl_ms, |e| e.saturating_sub(now_ms));
        Ok(((t.ttl_ms / 1000) as i64, (remaining_ms / 1000) as i64))
    }

    /// The deadline of `id`, ms (primary only), for tests and the simulator's checks.
    pub fn deadline(&self, id: i64) -> Option<u64> {
        self.timers.get(&id).and_then(|t| t.expiry_ms)
    }

    /// Leases whose deadline passed at `now_ms` and that are not already being revoked, at
    /// most `max`, in id order; each is marked as being revoked for [`REVOKE_RETRY_MS`].
    /// Empty unless primary.
    pub fn take_expired(&mut self, now_ms: u64, max: usize) -> Vec<i64> {
        if !self.primary {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (id, t) in &mut self.timers {
            if out.len() >= max {
                break;
            }
            let due = t.expiry_ms.is_some_and(|e| e <= now_ms);
            let retry_ok = t.revoking_until.is_none_or(|r| r <= now_ms);
            if due && retry_ok {
                t.revoking_until = Some(now_ms + REVOKE_RETRY_MS);
                out.push(*id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_role_promotes_once_per_led_term_and_demotes_on_losing_it() {
        let mut c = LeaseClock::new([(1, 5)], 1000);
        assert_eq!(c.observe_role(false, 1, 0), RoleChange::Unchanged);
        assert_eq!(c.observe_role(true, 2, 100), RoleChange::Promoted);
        assert_eq!(c.deadline(1), Some(100 + 5000 + 1000));
        assert_eq!(c.renew(1, 2000), Ok(5));
        assert_eq!(
            c.observe_role(true, 2, 3000),
            RoleChange::Unchanged,
            "same term: the renewed deadline stands"
        );
        assert_eq!(c.deadline(1), Some(7000));
        // Re-elected in a later term without an observed demotion: TTLs restart anyway.
        assert_eq!(c.observe_role(true, 4, 4000), RoleChange::Promoted);
        assert_eq!(c.deadline(1), Some(4000 + 5000 + 1000));
        assert_eq!(c.observe_role(false, 5, 4100), RoleChange::Demoted);
        assert!(!c.is_primary());
        assert_eq!(c.deadline(1), None);
        assert_eq!(c.observe_role(false, 5, 4200), RoleChange::Unchanged);
    }

    #[test]
    fn follower_neither_renews_nor_expires() {
        let mut c = LeaseClock::new([(1, 5)], 1000);
        assert_eq!(c.renew(1, 0), Err(ClockError::NotPrimary));
        assert_eq!(c.time_to_live(1, 0), Err(ClockError::NotPrimary));
        assert!(c.take_expired(u64::MAX / 2, 10).is_empty());
    }

    #[test]
    fn promotion_gives_every_lease_a_fresh_ttl_plus_extend() {
        let mut c = LeaseClock::new([(1, 5), (2, 10)], 1000);
        c.promote(100_000);
        assert_eq!(c.deadline(1), Some(100_000 + 5_000 + 1_000));
        assert_eq!(c.deadline(2), Some(100_000 + 10_000 + 1_000));
        assert!(c.take_expired(105_999, 10).is_empty());
        assert_eq!(c.take_expired(106_000, 10), vec![1]);
    }

    #[test]
    fn renew_restarts_the_deadline_and_returns_the_ttl() {
        let mut c = LeaseClock::new([], 0);
        c.promote(0);
        c.granted(7, 3, 1_000);
        assert_eq!(c.deadline(7), Some(4_000));
        assert_eq!(c.renew(7, 3_500), Ok(3));
        assert_eq!(c.deadline(7), Some(6_500));
        assert_eq!(c.time_to_live(7, 4_000), Ok((3, 2)));
        assert_eq!(c.renew(8, 3_500), Err(ClockError::NotFound));
    }

    #[test]
    fn expired_lease_cannot_be_renewed_and_is_handed_out_once_per_retry() {
        let mut c = LeaseClock::new([], 0);
        c.promote(0);
        c.granted(7, 1, 0);
        assert_eq!(c.take_expired(1_000, 10), vec![7]);
        assert_eq!(c.renew(7, 1_001), Err(ClockError::NotFound));
        assert!(c.take_expired(1_000 + REVOKE_RETRY_MS - 1, 10).is_empty());
        assert_eq!(c.take_expired(1_000 + REVOKE_RETRY_MS, 10), vec![7]);
        c.revoked(7);
        assert!(c.take_expired(u64::MAX / 2, 10).is_empty());
    }

    #[test]
    fn demotion_forgets_deadlines() {
        let mut c = LeaseClock::new([(1, 1)], 0);
        c.promote(0);
        c.demote();
        assert_eq!(c.deadline(1), None);
        assert!(c.take_expired(10_000, 10).is_empty());
        c.promote(10_000);
        assert_eq!(c.deadline(1), Some(11_000));
    }

    #[test]
    fn take_expired_respects_max() {
        let mut c = LeaseClock::new((1..=5).map(|id| (id, 1)), 0);
        c.promote(0);
        assert_eq!(c.take_expired(1_000, 2), vec![1, 2]);
        assert_eq!(c.take_expired(1_000, 10), vec![3, 4, 5]);
    }
}
