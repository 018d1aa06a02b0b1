//! What the operator's dashboard and alerts read about the shared state:
//! the work queue, the dead letters and the stores, sampled now and then.
//! Ingest samples them because it is the one actor whose NATS user may see
//! all of them, and because it runs wherever the API does; every Ingest
//! process exports the same values, which queries take the max of.

use std::time::Duration;

use async_nats::jetstream::stream::Stream;

use super::Ingest;
use crate::wire::{names, subject};

/// How often the gauges are sampled: a few times per scrape interval.
pub(super) const INTERVAL: Duration = Duration::from_secs(5);

/// The longest one sample may take.
pub(super) const BUDGET: Duration = Duration::from_secs(2);

/// The work queue as the transcoders' consumer sees it.
struct Queue {
    waiting: u64,
    running: u64,
    oldest_waiting: Duration,
}

impl Ingest {
    /// Samples every gauge. A sample that cannot be taken leaves the gauge
    /// as it was, and says so in the log.
    pub(super) async fn sample_gauges(&self) {
        match self.queue().await {
            Ok(queue) => crate::metrics::queue(
                queue.waiting,
                queue.running,
                queue.oldest_waiting.as_secs_f64(),
            ),
            Err(err) => tracing::debug!(error = %err, "cannot sample the work queue"),
        }
        match self.js.get_stream_no_info(names::DEAD_STREAM).await {
            Ok(dead) => match dead.get_info().await {
                Ok(info) => crate::metrics::dead_letters(info.state.messages),
                Err(err) => tracing::debug!(error = %err, "cannot sample the dead letters"),
            },
            Err(err) => tracing::debug!(error = %err, "cannot sample the dead letters"),
        }
        for (label, bucket) in [("uploads", &self.uploads), ("outputs", &self.outputs)] {
            match bucket.usage().await {
                Ok((bytes, limit)) => crate::metrics::bucket(label, bytes, limit),
                Err(err) => tracing::debug!(bucket = label, error = %err, "cannot sample a bucket"),
            }
        }
        match self.js.query_account().await {
            Ok(account) => crate::metrics::jetstream_storage(account.storage),
            Err(err) => tracing::debug!(error = %err, "cannot sample the JetStream account"),
        }
    }

    async fn queue(&self) -> Result<Queue, crate::error::BoxError> {
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
            Err(_) => {
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
        }
    }
}

/// The age of the first work item at or after `sequence`.
async fn oldest_from(work: &Stream, sequence: u64) -> Result<Duration, crate::error::BoxError> {
    let message = work
        .raw_message_builder()
        .sequence(sequence)
        .next_by_subject(subject::WORK_TRANSCODE)
        .send()
        .await?;
    Ok(age(message.time))
}

fn age(time: time::OffsetDateTime) -> Duration {
    (time::OffsetDateTime::now_utc() - time)
        .try_into()
        .unwrap_or(Duration::ZERO)
}
