//! Working off a JetStream pull consumer the way the workers that deliver
//! and fetch do: each message on a task of its own, at most so many at
//! once, until the shutdown; those under way end before it returns.

use std::future::Future;
use std::sync::Arc;

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{ConsumerHealth, WorkerError, consumer_deleted};

/// Hands each message of `messages` (from the consumer `consumer`) to
/// `handle`, at most `in_flight` at once, until `shutdown`. A consumer that
/// fails for good ends it with an error, for the supervisor to start the
/// worker again.
pub(crate) async fn work_off<F, Fut>(
    consumer: &'static str,
    mut messages: pull::Stream,
    in_flight: usize,
    shutdown: &CancellationToken,
    handle: F,
) -> Result<(), WorkerError>
where
    F: Fn(jetstream::Message) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut health = ConsumerHealth::new(consumer);
    let slots = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut running = tokio::task::JoinSet::new();
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = messages.next() => match next {
                Some(Ok(message)) => message,
                Some(Err(err)) => {
                    let deleted = consumer_deleted(&err);
                    health.failed(err, deleted)?;
                    continue;
                }
                None => return Err(WorkerError::ended(consumer)),
            },
        };
        health.ok();
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let work = handle(message);
        running.spawn(async move {
            work.await;
            drop(slot);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
    Ok(())
}
