//! Login throttling: after too many failed logins within a window, further
//! attempts are refused with 429 and `Retry-After` until the oldest failure
//! leaves the window. The password is not even checked then, so guessing
//! gets no faster by spreading attempts over time. An attempt is counted as
//! a failure *before* the password is checked and forgiven when it turns
//! out right, so parallel guesses cannot all slip in before the first one
//! is counted. Counts live in this process: several Ingest instances each
//! enforce the limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many keys are tracked at most; past that the oldest are forgotten,
/// so a flood of made-up emails cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

pub struct Throttle {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(limit: usize, window: Duration) -> Throttle {
        Throttle {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `key` may not try again for `wait`.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let recent = failures.get_mut(key)?;
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            recent.pop_front();
        }
        if recent.len() < self.limit {
            return None;
        }
        let oldest = *recent.front()?;
        Some(self.window.saturating_sub(now.duration_since(oldest)))
    }

    /// Counts an attempt for `key` as failed now, unless `key` is blocked:
    /// then says how long to wait. The attempt is forgiven with
    /// [`Throttle::forgive`] if it succeeds or was never decided.
    pub fn reserve(&self, key: &str) -> Result<Instant, Duration> {
        if let Some(wait) = self.blocked(key) {
            return Err(wait);
        }
        Ok(self.failed(key))
    }

    /// Takes back the attempt [`Throttle::reserve`] counted at `at`.
    pub fn forgive(&self, key: &str, at: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(recent) = failures.get_mut(key) {
            if let Some(position) = recent.iter().position(|t| *t == at) {
                recent.remove(position);
            }
            if recent.is_empty() {
                failures.remove(key);
            }
        }
    }

    pub fn failed(&self, key: &str) -> Instant {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS && !failures.contains_key(key) {
            let window = self.window;
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        let recent = failures.entry(key.to_string()).or_default();
        recent.push_back(now);
        // Only the last `limit` failures matter.
        while recent.len() > self.limit {
            recent.pop_front();
        }
        now
    }

    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_after_the_limit_until_its_oldest_failure_ages_out() {
        let throttle = Throttle::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert_eq!(throttle.blocked("ann"), None);
            throttle.failed("ann");
        }
        let wait = throttle
            .blocked("ann")
            .expect("blocked after three failures");
        assert!(wait <= Duration::from_millis(200));
        assert_eq!(throttle.blocked("bob"), None, "other keys are not affected");
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(throttle.blocked("ann"), None);
        throttle.failed("ann");
        throttle.succeeded("ann");
        assert_eq!(throttle.blocked("ann"), None);
    }
}
