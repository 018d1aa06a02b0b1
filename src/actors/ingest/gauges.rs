//! What the operator's dashboard and alerts read about the shared state:
//! the work queue, the dead letters and the stores, sampled now and then.
//! Ingest samples them because it is the one actor whose NATS user may see
//! all of them, and because it runs wherever the API does; every Ingest
//! process exports the same values, which queries take the max of. A value
//! that cannot be sampled is exported as NaN (unknown), which `max` passes
//! over while another Ingest knows it, rather than as the last value seen.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use tokio_util::sync::CancellationToken;

use super::Ingest;
use crate::error::BoxError;
use crate::wire::{names, subject};

/// How often the gauges are sampled: a few times per scrape interval.
const INTERVAL: Duration = Duration::from_secs(5);

/// The longest one value's sample may take.
const BUDGET: Duration = Duration::from_secs(2);

/// The work queue as the transcoders' consumer sees it.
struct Queue {
    waiting: u64,
    running: u64,
    oldest_waiting: Duration,
}

/// Samples the gauges until `shutdown`, in a task of its own so that a slow
/// JetStream holds up neither the jobs service nor the history projector.
pub(super) async fn sample_until(ingest: Arc<Ingest>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => ingest.sample_gauges().await,
        }
    }
}

/// `sample` within the budget, or the reason it has no value.
async fn within_budget<T>(
    sample: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    match tokio::time::timeout(BUDGET, sample).await {
        Ok(result) => result,
        Err(_) => Err("timed out".into()),
    }
}

impl Ingest {
    async fn sample_gauges(&self) {
        match within_budget(self.queue()).await {
            Ok(queue) => crate::metrics::queue(
                queue.waiting,
                queue.running,
                queue.oldest_waiting.as_secs_f64(),
            ),
            Err(err) => {
                tracing::debug!(error = %err, "cannot sample the work queue");
                crate::metrics::queue_unknown();
            }
        }
        match within_budget(self.dead_letters()).await {
            Ok(count) => crate::metrics::dead_letters(count as f64),
            Err(err) => {
                tracing::debug!(error = %err, "cannot sample the dead letters");
                crate::metrics::dead_letters(f64::NAN);
            }
        }
        for (label, bucket) in [("uploads", &self.uploads), ("outputs", &self.outputs)] {
            match within_budget(async { Ok(bucket.usage().await?) }).await {
                Ok((bytes, limit)) => crate::metrics::bucket(label, bytes as f64, limit as f64),
                Err(err) => {
                    tracing::debug!(bucket = label, error = %err, "cannot sample a bucket");
                    crate::metrics::bucket(label, f64::NAN, f64::NAN);
                }
            }
        }
        match within_budget(async { Ok(self.js.query_account().await?) }).await {
            Ok(account) => crate::metrics::jetstream_storage(account.storage as f64),
            Err(err) => {
                tracing::debug!(error = %err, "cannot sample the JetStream account");
                crate::metrics::jetstream_storage(f64::NAN);
            }
        }
    }

    /// Items in the dead-letter stream; none before a transcoder made it.
    async fn dead_letters(&self) -> Result<u64, BoxError> {
        match self.js.get_stream(names::DEAD_STREAM).await {
            Ok(dead) => Ok(dead.cached_info().state.messages),
            Err(err) => match err.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(0)
                }
                _ => Err(err.into()),
            },
        }
    }

    async fn queue(&self) -> Result<Queue, BoxError> {
        match self.work.consumer_info(names::TRANSCODERS_CONSUMER).await {
            Ok(consumer) => {
                // Items are delivered in stream order: the first one after
                // the last delivered is the oldest that waits. (A handed-back
                // item counts as running until it is taken again.)
                let oldest_waiting = if consumer.num_pending > 0 {
                    oldest_from(&self.work, consumer.delivered.stream_sequence + 1).await?
                } else {
                    Duration::ZERO
                };
                Ok(Queue {
                    waiting: consumer.num_pending,
                    running: consumer.num_ack_pending as u64,
                    oldest_waiting,
                })
            }
            // No transcoder has made the consumer yet: everything waits.
            Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => {
                let stream = self.work.get_info().await?;
                let oldest_waiting = if stream.state.messages > 0 {
                    age(stream.state.first_timestamp)
                } else {
                    Duration::ZERO
                };
                Ok(Queue {
                    waiting: stream.state.messages,
                    running: 0,
                    oldest_waiting,
                })
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// The age of the first work item at or after `sequence`; none when a
/// transcoder took it since the consumer was asked.
async fn oldest_from(work: &Stream, sequence: u64) -> Result<Duration, BoxError> {
    let message = work
        .raw_message_builder()
        .sequence(sequence)
        .next_by_subject(subject::WORK_TRANSCODE)
        .send()
        .await;
    match message {
        Ok(message) => Ok(age(message.time)),
        Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => Ok(Duration::ZERO),
        Err(err) => Err(err.into()),
    }
}

fn age(time: time::OffsetDateTime) -> Duration {
    (time::OffsetDateTime::now_utc() - time)
        .try_into()
        .unwrap_or(Duration::ZERO)
}
