//! The waits of a process's shutdown, named in one place. After SIGTERM a
//! process stops taking HTTP requests and asks its actors to stop; then:
//!
//! 1. the actors drain (a transcoder lets running encodes finish for
//!    `--drain-timeout`, then hands the rest back) while open HTTP
//!    connections finish, side by side;
//! 2. the NATS connection is flushed and drained;
//! 3. the embedded database closes its store.
//!
//! [`budget`] is the longest all of it may take, which the Nomad jobs'
//! `kill_timeout`s must cover (`tests/it/nomad.rs` derives them from it).

use std::time::Duration;

/// After the drain timeout: time for the last hand-backs (naks) and the
/// state writes that go with them.
pub const HAND_BACK: Duration = Duration::from_secs(15);
/// A NATS micro service (Auth's, Ingest's) finishes the answers it has
/// started, then has this long to unsubscribe; it runs within the actors'
/// `HAND_BACK`.
pub const SERVICE_STOP: Duration = Duration::from_secs(5);
/// Open HTTP connections (an upload, a download, an event stream that
/// has just been told to end) finish within this.
pub const HTTP_DRAIN: Duration = Duration::from_secs(10);
/// NATS confirms what was sent, then the connection drains.
pub const NATS_FLUSH: Duration = Duration::from_secs(5);
/// The embedded database closes its store in a background task once its
/// last handle is gone.
pub const DB_CLOSE: Duration = Duration::from_millis(300);

/// How long the actors may take to stop: `drain_timeout` counts only in a
/// process that runs a transcoder, the one actor that waits for work.
pub fn actors_drain(drain_timeout: Duration, runs_transcoder: bool) -> Duration {
    let drain = if runs_transcoder {
        drain_timeout
    } else {
        Duration::ZERO
    };
    drain + HAND_BACK
}

/// The longest a process takes from SIGTERM to exit.
pub fn budget(drain_timeout: Duration, runs_transcoder: bool) -> Duration {
    actors_drain(drain_timeout, runs_transcoder).max(HTTP_DRAIN) + 2 * NATS_FLUSH + DB_CLOSE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_timeout_counts_only_where_a_transcoder_runs() {
        let minute = Duration::from_secs(60);
        assert_eq!(budget(minute, true), Duration::from_millis(85_300));
        assert_eq!(budget(minute, false), Duration::from_millis(25_300));
        assert!(
            SERVICE_STOP < HAND_BACK,
            "a service stops within the actors' drain"
        );
    }
}
