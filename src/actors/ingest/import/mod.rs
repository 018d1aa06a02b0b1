//! URL imports: a job whose input is a URL (`source_url`) is queued on the
//! imports stream when it is made; an Ingest takes it from there, streams
//! the file into the uploads bucket under the job's id (`fetch`), and
//! queues the job for a transcoder. An import that fails fails its job with
//! the reason, which its owner is told as of any failed job.

mod fetch;
mod submit;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, kv};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Ingest;
use super::error::ApiError;
use crate::actors::{WorkerError, work_off};
use crate::storage::jetstream as js_setup;
use crate::storage::objects;
use crate::trace_context::TraceContext;
use crate::wire::{self, Job, JobState, WorkItem, names, subject};
use fetch::Source;
pub(super) use submit::{SOURCE_URL, Submitted, Wanted, checked_source};

/// Imports under way at once in one process.
const IN_FLIGHT: usize = 8;
/// How often an import under way tells JetStream it is alive, and looks
/// whether its job was canceled meanwhile.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// How one import ended.
enum Imported {
    /// Stored: the job is queued for a transcoder.
    Queued,
    /// The job ended meanwhile (canceled, deleted): nothing to do.
    Ended,
    /// Failed for a reason of the source's: the job failed.
    Failed(String),
}

/// Why an import could not go on, on our side: retried.
#[derive(Debug, thiserror::Error)]
#[error("cannot {0}")]
struct Retry(&'static str, #[source] crate::error::BoxError);

impl Ingest {
    /// Works off the imports until `shutdown`; the ones under way are then
    /// handed back at once, for another Ingest (or this one, restarted) to
    /// fetch again.
    pub(super) async fn run_imports(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> Result<(), WorkerError> {
        let consumer = js_setup::importers_consumer(&self.imports)
            .await
            .map_err(|e| WorkerError::new("imports consumer", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| WorkerError::new("imports consumer", e))?;
        work_off(
            names::IMPORTERS_CONSUMER,
            messages,
            IN_FLIGHT,
            &shutdown,
            |message| {
                let ingest = self.clone();
                let stop = shutdown.clone();
                async move { ingest.handle_import(message, stop).await }
            },
        )
        .await
    }

    async fn handle_import(&self, message: jetstream::Message, shutdown: CancellationToken) {
        let trace = TraceContext::from_nats(message.headers.as_ref());
        let Ok(item) = wire::decode::<WorkItem>(&message.payload) else {
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        let delivered = message.info().map_or(1, |info| info.delivered);
        let span = tracing::info_span!("import", job = %item.job_id, trace = %trace.trace_id());
        async {
            let outcome = async {
                // Alive while it runs; a stop hands the item back at once.
                let beat = async {
                    let mut ticks = tokio::time::interval(HEARTBEAT);
                    ticks.tick().await;
                    loop {
                        ticks.tick().await;
                        let _ = message.ack_with(AckKind::Progress).await;
                        if self.job_ended(item.job_id.as_str()).await {
                            return;
                        }
                    }
                };
                tokio::select! {
                    outcome = self.import(item.job_id.as_str(), &trace) => Some(outcome),
                    _ = beat => Some(Ok(Imported::Ended)),
                    _ = shutdown.cancelled() => None,
                }
            }
            .await;
            let ack = match outcome {
                None => AckKind::Nak(None),
                Some(Ok(Imported::Queued)) => {
                    crate::metrics::import("stored");
                    AckKind::Ack
                }
                Some(Ok(Imported::Ended)) => {
                    self.discard_upload(item.job_id.as_str()).await;
                    AckKind::Ack
                }
                Some(Ok(Imported::Failed(reason))) => {
                    crate::metrics::import("failed");
                    self.fail_import(item.job_id.as_str(), &reason, &trace)
                        .await;
                    AckKind::Ack
                }
                Some(Err(err)) if delivered >= js_setup::IMPORT_MAX_DELIVERIES => {
                    tracing::warn!(error = %crate::error::chain(&err), "import given up");
                    crate::metrics::import("failed");
                    self.fail_import(
                        item.job_id.as_str(),
                        "the service could not store it",
                        &trace,
                    )
                    .await;
                    AckKind::Ack
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %crate::error::chain(&err), "import failed on our side; retrying");
                    AckKind::Nak(Some(Duration::from_secs(5)))
                }
            };
            let _ = message.ack_with(ack).await;
        }
        .instrument(span)
        .await
    }

    /// Whether the job `id` is gone or has ended.
    async fn job_ended(&self, id: &str) -> bool {
        match self.job(id).await {
            Ok(Some(job)) => job.state.is_terminal(),
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Fetches the job's input and queues it for a transcoder.
    async fn import(&self, id: &str, trace: &TraceContext) -> Result<Imported, Retry> {
        let Some((job, _)) = self.live_job(id).await? else {
            return Ok(Imported::Ended);
        };
        // Stored by an earlier delivery that could not queue it.
        if job.input_bytes == 0 {
            let Some(url) = job.source_url.as_deref() else {
                return Ok(Imported::Failed("the job names no URL".into()));
            };
            let limit = self
                .max_upload_bytes
                .min(job.max_output_bytes.unwrap_or(u64::MAX));
            let url = match crate::targets::parse(url) {
                Ok(url) => url,
                Err(err) => return Ok(Imported::Failed(err.to_string())),
            };
            let source = match Source::open(url, self.targets.clone(), limit).await {
                Ok(source) => source,
                Err(err) => return Ok(Imported::Failed(crate::error::chain(&err))),
            };
            let (reader, failure) = source.into_reader();
            let stored = objects::put_object(
                &self.uploads,
                id,
                reader,
                self.chunk_size,
                Default::default(),
            )
            .await;
            let failed = failure.lock().ok().and_then(|mut slot| slot.take());
            match (stored, failed) {
                (Ok(info), _) => return self.queue_imported(id, info.size as u64, trace).await,
                (Err(_), Some(err)) => return Ok(Imported::Failed(crate::error::chain(&err))),
                (Err(err), None) => return Err(Retry("store the import", err.into())),
            }
        }
        self.queue_imported(id, job.input_bytes, trace).await
    }

    /// The job `id` and its revision, unless it is gone or has ended.
    async fn live_job(&self, id: &str) -> Result<Option<(Job, u64)>, Retry> {
        let entry = self
            .jobs
            .entry(id)
            .await
            .map_err(|e| Retry("read the job", e.into()))?
            .filter(|entry| entry.operation == kv::Operation::Put);
        let Some(entry) = entry else {
            return Ok(None);
        };
        let job: Job = wire::decode(&entry.value).map_err(|e| Retry("read the job", e.into()))?;
        Ok((!job.state.is_terminal()).then_some((job, entry.revision)))
    }

    /// Notes the stored input's size on the job and queues it for a
    /// transcoder.
    async fn queue_imported(
        &self,
        id: &str,
        size: u64,
        trace: &TraceContext,
    ) -> Result<Imported, Retry> {
        let Some((job, _)) = self.live_job(id).await? else {
            return Ok(Imported::Ended);
        };
        // The quota is checked again now that the size is known: imports
        // made at the same time were each bounded only by what was left
        // then. A job noted already (a redelivery) counts in its owner's
        // storage, and keeps the room it was given.
        let room = match job.input_bytes {
            0 => match self.quota_left(&job.owner).await {
                Ok(left) if left >= size => Some(left - size),
                Ok(_) | Err(ApiError::QuotaExceeded(_)) => {
                    return Ok(Imported::Failed(
                        "the file is larger than what is left of your storage quota".into(),
                    ));
                }
                Err(err) => return Err(Retry("read the storage quota", err.into())),
            },
            _ => job.max_output_bytes,
        };
        let mut conflicts = 0;
        let (job, revision) = loop {
            let Some((mut job, revision)) = self.live_job(id).await? else {
                return Ok(Imported::Ended);
            };
            job.max_output_bytes = room;
            job.input_bytes = size;
            job.updated_at = OffsetDateTime::now_utc();
            match self.jobs.update(id, wire::encode(&job), revision).await {
                Ok(revision) => break (job, revision),
                Err(err)
                    if err.kind() == kv::UpdateErrorKind::WrongLastRevision && conflicts < 5 =>
                {
                    conflicts += 1;
                }
                Err(err) => return Err(Retry("note the import on the job", err.into())),
            }
        };
        // The history counts the input against its owner's quota.
        self.history
            .upsert(&job)
            .await
            .map_err(|e| Retry("note the import in the history", e.into()))?;
        let sequence = self
            .publish_work(subject::WORK_TRANSCODE, &job, trace)
            .await
            .map_err(|e| Retry("queue the imported job", e))?;
        self.note_queue_place(&job, revision, sequence).await;
        crate::metrics::job_submitted(job.format.name(), size);
        Ok(Imported::Queued)
    }

    /// Fails the job `id`, unless it ended meanwhile, saying why its input
    /// could not be imported. Best effort: a job that cannot be written
    /// stays queued until its owner cancels it.
    async fn fail_import(&self, id: &str, reason: &str, trace: &TraceContext) {
        for _ in 0..5 {
            let Ok(Some((mut job, revision))) = self.live_job(id).await else {
                return;
            };
            let now = OffsetDateTime::now_utc();
            job.state = JobState::Failed;
            job.error = Some(format!("cannot import the source URL: {reason}"));
            job.finished_at = Some(now);
            job.updated_at = now;
            if self
                .jobs
                .update(id, wire::encode(&job), revision)
                .await
                .is_ok()
            {
                tracing::info!(reason, "import failed");
                if let Err(err) = js_setup::publish_job_event(&self.js, &job, trace).await {
                    tracing::warn!(error = %err, "cannot publish the failed event");
                }
                return;
            }
        }
        tracing::warn!("cannot record the failed import");
    }
}
