//! The pull loop: one work item per free slot, never prefetched, and the
//! first look at each item (is it well-formed, does its job exist, has it
//! already ended) before an attempt starts.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, kv};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::decision::retry_delay;
use super::{IDLE_PULLS_BEFORE_CHECK, Transcoder};
use crate::actors::{ConsumerHealth, WorkerError};
use crate::storage::jetstream as js_setup;
use crate::trace_context::TraceContext;
use crate::wire::{self, Job, WorkItem, names};

impl Transcoder {
    /// Pulls and handles work until `shutdown` fires, or until the consumer
    /// is beyond repair (the supervisor then starts the worker again, which
    /// creates the consumer again); in-flight jobs finish either way.
    pub(super) async fn pull_loop(
        self: Arc<Self>,
        consumer: PullConsumer,
        shutdown: CancellationToken,
    ) -> Result<(), WorkerError> {
        let slots = Arc::new(Semaphore::new(self.slots));
        let mut in_flight = JoinSet::new();
        let mut health = ConsumerHealth::new(names::TRANSCODERS_CONSUMER);
        let mut idle_pulls = 0;
        let outcome = loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break Ok(()),
                },
            };
            // One message per free slot: never prefetch work another node
            // could start on now.
            let fetch = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_secs(2))
                .messages();
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                batch = fetch => batch,
            };
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    if let Err(stop) = health.failed(err, false) {
                        break Err(stop);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut permit = Some(permit);
            // The server ends the batch when it expires; if the server is gone
            // that never comes, so the wait is bounded here too.
            while let Ok(Some(next)) =
                tokio::time::timeout(Duration::from_secs(4), batch.next()).await
            {
                match next {
                    Ok(message) if shutdown.is_cancelled() => {
                        // Arrived as we stopped: give it straight back.
                        let _ = message.ack_with(AckKind::Nak(None)).await;
                    }
                    Ok(message) => {
                        health.ok();
                        if let Some(permit) = permit.take() {
                            in_flight.spawn(self.clone().handle(message, permit, shutdown.clone()));
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "work pull hiccup"),
                }
            }
            while in_flight.try_join_next().is_some() {}
            // A pull from a consumer that was deleted just comes back
            // empty: after a while without work, make sure it still exists.
            if permit.is_some() {
                idle_pulls += 1;
                if idle_pulls >= IDLE_PULLS_BEFORE_CHECK {
                    idle_pulls = 0;
                    if let Err(err) = self.work.consumer_info(names::TRANSCODERS_CONSUMER).await {
                        let gone = err.kind() == ConsumerInfoErrorKind::NotFound;
                        if let Err(stop) = health.failed(err, gone) {
                            break Err(stop);
                        }
                    }
                }
            } else {
                idle_pulls = 0;
            }
        };
        // Drain: every in-flight job finishes or is handed back by itself.
        while in_flight.join_next().await.is_some() {}
        outcome
    }

    pub(super) async fn handle(
        self: Arc<Self>,
        message: jetstream::Message,
        _permit: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let trace = TraceContext::from_nats(message.headers.as_ref());
        // Job ids name files and bucket keys: a work item whose id is not
        // one in the canonical form Ingest writes does not decode.
        let item: WorkItem = match wire::decode(&message.payload) {
            Ok(item) => item,
            Err(err) => {
                self.dead_letter(&message, &format!("malformed work item: {err}"))
                    .await;
                return;
            }
        };
        let entry = self
            .jobs
            .entry(item.job_id.as_str())
            .await
            .map(|entry| entry.filter(|e| e.operation == kv::Operation::Put));
        let (job, revision) = match entry {
            Ok(Some(entry)) => match wire::decode::<Job>(&entry.value) {
                Ok(job) => (job, entry.revision),
                Err(err) => {
                    self.dead_letter(&message, &format!("malformed job state: {err}"))
                        .await;
                    return;
                }
            },
            Ok(None) => {
                self.dead_letter(&message, "the job no longer exists").await;
                return;
            }
            Err(err) => {
                tracing::warn!(job = %item.job_id, error = %err, "cannot read the job; retrying");
                let _ = message
                    .ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                    .await;
                return;
            }
        };
        if job.state.is_terminal() {
            // A redelivery after the job ended (the ack was lost), or a job
            // its owner canceled while it waited: make sure its terminal
            // event exists and its upload is gone, then settle the work item.
            match js_setup::publish_job_event(&self.js, &job, &trace).await {
                Ok(()) => {
                    self.delete_upload(&job).await;
                    let _ = message.ack().await;
                }
                Err(_) => {
                    let _ = message
                        .ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                        .await;
                }
            }
            return;
        }
        // Every log line of the attempt carries the job, the attempt's
        // number and the job's trace.
        let span = tracing::info_span!(
            "attempt",
            job = %job.id,
            attempt = job.attempts + 1,
            trace_id = %trace.trace_id(),
        );
        self.attempt(message, job, revision, delivered, shutdown, &trace)
            .instrument(span)
            .await;
    }
}
