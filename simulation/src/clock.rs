//! Virtual time. Everything in the simulator is measured in ticks — one tick is one call of
//! `RawNode::tick` on every running node (the server's `--heartbeat-interval`, 100 ms by
//! default). No wall clock is read anywhere, so a run depends only on its seed.

use std::collections::BTreeMap;

/// A point in virtual time, in ticks since the start of the run.
pub type Tick = u64;

/// A queue of events due at future ticks, popped in (tick, insertion order) order.
///
/// Invariant: events due at the same tick come out in the order they were pushed, so the
/// order never depends on anything but the seed (a `BinaryHeap` would not promise that).
#[derive(Debug)]
pub struct EventQueue<E> {
    events: BTreeMap<(Tick, u64), E>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            events: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at tick `at`.
    pub fn push(&mut self, at: Tick, event: E) {
        self.events.insert((at, self.next_seq), event);
        self.next_seq += 1;
    }

    /// Removes and returns the earliest event due at or before `now`.
    pub fn pop_due(&mut self, now: Tick) -> Option<(Tick, E)> {
        let entry = self.events.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let ((at, _), event) = entry.remove_entry();
        Some((at, event))
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_tick_then_push_order_and_only_when_due() {
        let mut q = EventQueue::default();
        q.push(2, "c");
        q.push(1, "a");
        q.push(1, "b");
        assert_eq!(q.pop_due(0), None);
        assert_eq!(q.pop_due(1), Some((1, "a")));
        assert_eq!(q.pop_due(1), Some((1, "b")));
        assert_eq!(q.pop_due(1), None);
        assert_eq!(q.pop_due(5), Some((2, "c")));
        assert!(q.is_empty());
    }
}
