//! The ack decision: a pure function of how an attempt ended and how often
//! the job has been retried, with its table of cases.

use std::time::Duration;

use super::error::AttemptError;
use crate::backoff::Backoff;
use crate::storage::jetstream::WORK_MAX_RETRIES;
use crate::wire::JobState;

/// What becomes of a work item once its attempt is over.
#[derive(Debug, PartialEq)]
pub(super) enum Decision {
    /// Record the job's end in this state, announce it and ack.
    Finish(JobState),
    /// Put the job back in the queue and hand the item back after `delay`
    /// (at once without one); `retried` counts a failure on our side.
    HandBack {
        delay: Option<Duration>,
        retried: bool,
    },
    /// Failed on our side too often: dead-letter the item, fail the job, ack.
    GiveUp,
    /// A later attempt owns the item: settle nothing.
    Leave,
}

/// The ack decision for an attempt that ended with `outcome`, of a job that
/// has been retried `retries` times. Nothing else decides it: deliveries do
/// not count (a hand-back is free), so an item is never stranded by
/// JetStream's delivery limit.
pub(super) fn decide<T>(outcome: &Result<T, AttemptError>, retries: u32) -> Decision {
    match outcome {
        Ok(_) => Decision::Finish(JobState::Completed),
        Err(AttemptError::Rejected(_)) => Decision::Finish(JobState::Failed),
        Err(AttemptError::Canceled) => Decision::Finish(JobState::Canceled),
        Err(AttemptError::Superseded) => Decision::Leave,
        Err(AttemptError::Interrupted) => Decision::HandBack {
            delay: None,
            retried: false,
        },
        Err(AttemptError::Transient { .. }) if retries + 1 >= WORK_MAX_RETRIES => Decision::GiveUp,
        Err(AttemptError::Transient { .. }) => Decision::HandBack {
            delay: Some(retry_delay(i64::from(retries + 1))),
            retried: true,
        },
    }
}

/// Delay before a retried work item is offered again: 2, 4, 8 … up to 60 s.
pub(super) fn retry_delay(delivered: i64) -> Duration {
    const RETRIES: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
    RETRIES.delay(u32::try_from(delivered.saturating_sub(1)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Output;

    #[test]
    fn every_outcome_has_one_ack_decision_and_hand_backs_are_free() {
        let transient = || {
            Err(AttemptError::Transient {
                context: "write the input file",
                source: "disk full".into(),
            })
        };
        let output = Output {
            object: "a.mp3".into(),
            bytes: 1,
            content_type: "audio/mpeg".into(),
            filename: "a.mp3".into(),
            duration_seconds: 1.0,
            loudness: None,
            tracks: Vec::new(),
        };
        let cases: Vec<(Result<Vec<Output>, AttemptError>, u32, Decision)> = vec![
            (Ok(vec![output]), 0, Decision::Finish(JobState::Completed)),
            (
                Err(AttemptError::Rejected("not a video".into())),
                0,
                Decision::Finish(JobState::Failed),
            ),
            (
                Err(AttemptError::Canceled),
                3,
                Decision::Finish(JobState::Canceled),
            ),
            (Err(AttemptError::Superseded), 0, Decision::Leave),
            (
                Err(AttemptError::Interrupted),
                0,
                Decision::HandBack {
                    delay: None,
                    retried: false,
                },
            ),
            // However often a job was handed back or retried, a hand-back
            // is never refused.
            (
                Err(AttemptError::Interrupted),
                99,
                Decision::HandBack {
                    delay: None,
                    retried: false,
                },
            ),
            (
                transient(),
                0,
                Decision::HandBack {
                    delay: Some(Duration::from_secs(2)),
                    retried: true,
                },
            ),
            (
                transient(),
                3,
                Decision::HandBack {
                    delay: Some(Duration::from_secs(16)),
                    retried: true,
                },
            ),
            (transient(), WORK_MAX_RETRIES - 1, Decision::GiveUp),
            (transient(), 40, Decision::GiveUp),
        ];
        for (outcome, retries, expected) in cases {
            assert_eq!(
                decide(&outcome, retries),
                expected,
                "{outcome:?} after {retries} retries"
            );
        }
    }

    #[test]
    fn retry_delays_grow_and_are_capped() {
        assert_eq!(retry_delay(1), Duration::from_secs(2));
        assert_eq!(retry_delay(3), Duration::from_secs(8));
        assert_eq!(retry_delay(50), Duration::from_secs(60));
    }
}
