//! Raft's ticks as time, in the order things happened.
//!
//! raft-rs counts its election and quorum timeouts in ticks. A turn of the
//! loop that takes long (a write waiting on a slow disk) misses ticks, and
//! they must still count, or a slow loop would stretch its timeouts. But
//! the messages that arrived during that turn waited too: a heartbeat that
//! came half a second into a one-second stall was read after it. Counting
//! all the missed ticks after reading the heartbeats would make a follower
//! whose loop stalled think its leader silent for the whole stall, and
//! grant the vote of a member cut off from a live leader (or campaign
//! itself). So each message is stamped when it arrives, and the ticks due
//! by then are counted before it is stepped.

use tokio::time::{Duration, Instant};

/// When the next tick falls due, and how many fell due by a given time.
pub(crate) struct TickClock {
    every: Duration,
    next: Instant,
}

impl TickClock {
    /// The first tick falls due one interval from now.
    pub(crate) fn new(every: Duration) -> Self {
        TickClock {
            every,
            next: Instant::now() + every,
        }
    }

    /// When the next tick falls due.
    pub(crate) fn next_due(&self) -> Instant {
        self.next
    }

    /// How many ticks fell due by `at` since the last call: each one is
    /// counted once, however late it is asked for.
    pub(crate) fn due_by(&mut self, at: Instant) -> u32 {
        let mut due = 0;
        while self.next <= at {
            due += 1;
            self.next += self.every;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tick_falls_due_once_in_order() {
        let every = Duration::from_millis(100);
        let mut clock = TickClock::new(every);
        let start = clock.next_due() - every;
        assert_eq!(clock.due_by(start + Duration::from_millis(99)), 0);
        assert_eq!(clock.due_by(start + Duration::from_millis(100)), 1);
        // A message stamped before the last count brings no tick again.
        assert_eq!(clock.due_by(start + Duration::from_millis(50)), 0);
        // A stall: the ticks it missed all fall due, at once.
        assert_eq!(clock.due_by(start + Duration::from_millis(1_050)), 9);
        assert_eq!(clock.next_due(), start + Duration::from_millis(1_100));
    }
}
