//! Exponential backoff, the one rule behind every wait that grows: the
//! supervisor's restarts, a retried work item's redelivery, a SurrealDB
//! transaction that conflicted.

use std::time::Duration;

/// Waits that start at `first` and double at every step, never past `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, cap: Duration) -> Self {
        Backoff { first, cap }
    }

    /// The wait before retry number `step` (0 is the first retry).
    pub fn delay(self, step: u32) -> Duration {
        let factor = 1u32.checked_shl(step).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_first_and_stop_at_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(32));
        assert_eq!(backoff.delay(0), Duration::from_millis(500));
        assert_eq!(backoff.delay(1), Duration::from_secs(1));
        assert_eq!(backoff.delay(6), Duration::from_secs(32));
        assert_eq!(backoff.delay(7), Duration::from_secs(32));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(32));
    }
}
