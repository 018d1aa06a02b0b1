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

/// What `sample` found within the budget, or `None` (logged) when it found
/// nothing: the gauge is then unknown.
async fn sample<T>(what: &str, sample: impl Future<Output = Result<T, BoxError>>) -> Option<T> {
    let result = match tokio::time::timeout(BUDGET, sample).await {
        Ok(result) => result,
        Err(_) => Err("timed out".into()),
    };
    result
        .map_err(|err| tracing::debug!(error = %err, "cannot sample {what}"))
        .ok()
}

impl Ingest {
    async fn sample_gauges(&self) {
        let unknown = f64::NAN;
        match sample("the work queue", self.queue()).await {
            Some(queue) => crate::metrics::queue(
                queue.waiting as f64,
                queue.running as f64,
                queue.oldest_waiting.as_secs_f64(),
            ),
            None => crate::metrics::queue(unknown, unknown, unknown),
        }
        let dead = sample("the dead letters", self.dead_letters()).await;
        crate::metrics::dead_letters(dead.map_or(unknown, |count| count as f64));
        for (label, bucket) in [("uploads", &self.uploads), ("outputs", &self.outputs)] {
            let usage = sample("a bucket", async { Ok(bucket.usage().await?) }).await;
            let (bytes, limit) = usage.map_or((unknown, unknown), |(b, l)| (b as f64, l as f64));
            crate::metrics::bucket(label, bytes, limit);
        }
        let account = sample("the JetStream account", async {
            Ok(self.js.query_account().await?)
        });
        let storage = account.await.map_or(unknown, |a| a.storage as f64);
        crate::metrics::jetstream_storage(storage);
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
