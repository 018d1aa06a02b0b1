//! Transcoder: pulls work items from the shared durable consumer, one per
//! free slot, converts the upload with ffmpeg and stores the audio.
//!
//! Outcomes decide the acknowledgement: a finished job (completed, or failed
//! because the upload is not convertible) is acked; a transient failure is
//! nakked with a growing delay until the delivery limit, then dead-lettered
//! and failed; an encode interrupted by shutdown is nakked for another node.

pub mod ffmpeg;
mod sandbox;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, AckKind, Context, consumer::PullConsumer, kv, stream::Stream};
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actors::{ConsumerHealth, Worker, WorkerError, WorkerFuture};
use crate::config::Config;
use crate::storage::jetstream::{self as js_setup, SetupError, WORK_ACK_WAIT, WORK_MAX_RETRIES};
use crate::storage::objects::{self, Bucket};
use crate::wire::{self, Job, JobState, Output, WorkItem, names, subject};
use ffmpeg::{Encode, MediaError, MediaPolicy};

/// How a job attempt ended, which decides ack, nak or term.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The input is not convertible: the job fails, no retry.
    #[error("{0}")]
    Rejected(String),
    /// Something that may work next time (NATS, disk, a crashed tool).
    #[error("{0}")]
    Transient(String),
    /// The process is stopping: hand the work to another transcoder.
    #[error("interrupted by shutdown")]
    Interrupted,
    /// The owner canceled the job.
    #[error("canceled by its owner")]
    Canceled,
    /// A later attempt took the job over: this one's result is not wanted.
    #[error("taken over by a later attempt")]
    Superseded,
}

/// What can end an attempt early, besides shutdown.
#[derive(Default)]
struct Stops {
    /// The owner canceled the job.
    canceled: CancellationToken,
    /// A later attempt has started the job: this one's ack wait ran out (it
    /// was cut off from NATS, say) and the work item went to another
    /// transcoder, whose result counts.
    superseded: CancellationToken,
}

/// Where an attempt stands with its job, as the jobs bucket has it now.
enum Standing {
    /// The job is still this attempt's, at this revision (possibly with an
    /// earlier write of this attempt's whose acknowledgement was lost).
    Holds(u64),
    /// The owner canceled the job while this attempt ran, at this revision.
    Canceled(u64),
    /// A later attempt has started the job, or it is gone.
    Superseded,
}

impl From<MediaError> for AttemptError {
    fn from(err: MediaError) -> Self {
        match err {
            MediaError::Rejected(reason) => AttemptError::Rejected(reason),
            MediaError::Tool(reason) => AttemptError::Transient(reason),
        }
    }
}

fn transient(context: &str) -> impl Fn(&dyn std::fmt::Display) -> AttemptError + '_ {
    move |err| AttemptError::Transient(format!("{context}: {err}"))
}

/// Empty pulls in a row (2 s each) after which the consumer is looked up.
const IDLE_PULLS_BEFORE_CHECK: u32 = 5;

/// Object metadata key of a stored output's duration in seconds.
pub const OUTPUT_DURATION: &str = "duration_seconds";

pub struct Transcoder {
    js: Context,
    work: Stream,
    jobs: kv::Store,
    client: async_nats::Client,
    /// Cancel switches of the encodes running here, by job id.
    running: std::sync::Mutex<std::collections::HashMap<String, CancellationToken>>,
    uploads: Bucket,
    outputs: Bucket,
    chunk_size: usize,
    slots: usize,
    work_root: PathBuf,
    media: MediaPolicy,
    drain_timeout: Duration,
}

impl Transcoder {
    pub async fn build(
        config: &Config,
        client: async_nats::Client,
    ) -> Result<Arc<Transcoder>, SetupError> {
        let js = js_setup::context(client.clone());
        let r = config.replicas;
        js_setup::events_stream(&js, r).await?;
        js_setup::dead_letter_stream(&js, r).await?;
        Ok(Arc::new(Transcoder {
            work: js_setup::work_stream(&js, r).await?,
            jobs: js_setup::jobs_bucket(&js, r).await?,
            client: client.clone(),
            running: Default::default(),
            uploads: objects::uploads_bucket(&js, r, config.retention, config.uploads_store_bytes)
                .await?,
            outputs: objects::outputs_bucket(&js, r, config.retention, config.outputs_store_bytes)
                .await?,
            chunk_size: objects::chunk_size(&client),
            slots: config.transcode_slots(),
            work_root: config.data_dir.join("transcode"),
            media: config.media_policy(),
            drain_timeout: config.drain_timeout,
            js,
        }))
    }

    /// Pulls and handles work until `shutdown` fires, or until the consumer
    /// is beyond repair (the supervisor then starts the worker again, which
    /// creates the consumer again); in-flight jobs finish either way.
    async fn pull_loop(
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
                    if let Err(stop) = health.failed(&err, false) {
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
                        if let Err(stop) = health.failed(&err, gone) {
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

    async fn handle(
        self: Arc<Self>,
        message: jetstream::Message,
        _permit: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let item: WorkItem = match wire::decode(&message.payload) {
            Ok(item) => item,
            Err(err) => {
                self.dead_letter(&message, &format!("malformed work item: {err}"))
                    .await;
                return;
            }
        };
        // Job ids name files and bucket keys; anything but a UUID is forged.
        if uuid::Uuid::parse_str(&item.job_id).is_err() {
            self.dead_letter(&message, "the work item's job id is not a UUID")
                .await;
            return;
        }
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
            match js_setup::publish_job_event(&self.js, &job).await {
                Ok(()) => {
                    self.delete_upload(job.upload_object()).await;
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
        self.attempt(message, job, revision, delivered, shutdown)
            .await;
    }

    async fn attempt(
        &self,
        message: jetstream::Message,
        read: Job,
        revision: u64,
        delivered: i64,
        shutdown: CancellationToken,
    ) {
        let started = Instant::now();
        let (mut job, mut revision) = (read, revision);
        // The start is written only over the state as read: the owner may
        // have canceled the job since. Ingest also writes the job once, right
        // after queueing it (its place in the queue), so a conflict is read
        // again rather than costing a delivery. A write that fails otherwise
        // (NATS busy electing a leader) costs nothing either: the encode goes
        // on, and progress writes try again.
        let mut rereads = 0;
        let mut revision = loop {
            let mut running = job.clone();
            running.state = JobState::Running;
            running.attempts += 1;
            running.progress = 0.0;
            running.error = None;
            running.updated_at = OffsetDateTime::now_utc();
            match self
                .jobs
                .update(job.id.as_str(), wire::encode(&running), revision)
                .await
            {
                Ok(written) => {
                    job = running;
                    break Some(written);
                }
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    let fresh = match self.jobs.entry(job.id.as_str()).await {
                        Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                            wire::decode::<Job>(&entry.value)
                                .ok()
                                .map(|fresh| (fresh, entry.revision))
                        }
                        _ => None,
                    };
                    match fresh {
                        Some((fresh, at)) if !fresh.state.is_terminal() && rereads < 3 => {
                            rereads += 1;
                            (job, revision) = (fresh, at);
                        }
                        // Canceled (or gone) meanwhile: the next delivery
                        // settles it.
                        _ => {
                            tracing::info!(job = %job.id, "the job changed before it started");
                            let _ = message
                                .ack_with(AckKind::Nak(Some(Duration::from_millis(200))))
                                .await;
                            return;
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(job = %job.id, error = %err, "cannot record the start; going on");
                    job = running;
                    break None;
                }
            }
        };
        crate::metrics::transcodes_in_flight(1.0);
        let _ = js_setup::publish_job_event(&self.js, &job).await;
        let stops = Stops::default();
        self.running_jobs()
            .insert(job.id.clone(), stops.canceled.clone());

        // Keep the work item ours while we encode.
        let keepalive = {
            let message = message.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(WORK_ACK_WAIT / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(err) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %err, "cannot extend the work item");
                    }
                }
            })
        };
        // On shutdown, in-flight encodes get `drain_timeout` to finish.
        let interrupt = CancellationToken::new();
        let deadline = {
            let interrupt = interrupt.clone();
            let drain = self.drain_timeout;
            tokio::spawn(async move {
                shutdown.cancelled().await;
                tokio::time::sleep(drain).await;
                interrupt.cancel();
            })
        };
        let outcome = self
            .convert(&mut job, &mut revision, &interrupt, &stops)
            .await;
        // Speed and ETA describe a running encode only.
        job.speed = None;
        job.eta_seconds = None;
        self.running_jobs().remove(&job.id);
        keepalive.abort();
        deadline.abort();
        let _ = tokio::fs::remove_dir_all(ffmpeg::work_dir(&self.work_root, &job.id)).await;
        crate::metrics::transcodes_in_flight(-1.0);

        match decide(&outcome, job.retries) {
            Decision::Finish(state) => {
                job.state = state;
                match outcome {
                    Ok(output) => {
                        job.progress = 100.0;
                        job.output = Some(output);
                    }
                    Err(AttemptError::Rejected(reason)) => job.error = Some(reason),
                    Err(_) => tracing::info!(job = %job.id, "stopped: canceled by its owner"),
                }
                self.finish(&message, job, revision, started, delivered)
                    .await;
            }
            Decision::Leave => {
                // The work item is another transcoder's now: settling it
                // from here would settle theirs.
                tracing::info!(job = %job.id, "a later attempt has taken the job over; leaving it");
            }
            Decision::GiveUp => {
                let failures = job.retries + 1;
                let reason = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                tracing::error!(job = %job.id, error = %reason, "giving up after {failures} failed attempts");
                job.state = JobState::Failed;
                // The reason names internals (a bucket, a disk): it goes to
                // the log and the dead letter, the owner hears what happened.
                job.error = Some(format!(
                    "the conversion failed {failures} times for a reason on our side; \
                     it was not retried further"
                ));
                self.copy_to_dead_letter(&message, &reason).await;
                self.finish(&message, job, revision, started, delivered)
                    .await;
            }
            Decision::HandBack { delay, retried } => {
                job.state = JobState::Queued;
                if retried {
                    let reason = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                    tracing::warn!(job = %job.id, error = %reason, "attempt failed; will retry");
                    crate::metrics::transcode_retry();
                    job.retries += 1;
                    job.error = Some("retrying after a temporary failure on our side".into());
                } else {
                    tracing::info!(job = %job.id, "handing an unfinished encode back to the queue");
                    job.progress = 0.0;
                }
                if self
                    .requeue(&message, job, revision, &stops, started, delivered)
                    .await
                {
                    let _ = message.ack_with(AckKind::Nak(delay)).await;
                }
            }
        }
    }

    /// Writes a job going back to the queue over this attempt's last state;
    /// true if the caller should now hand the work item back. If the owner
    /// canceled it meanwhile, the job ends canceled instead (false); if a
    /// later attempt has taken it over, it is left to that one (false).
    async fn requeue(
        &self,
        message: &jetstream::Message,
        mut job: Job,
        revision: Option<u64>,
        stops: &Stops,
        started: Instant,
        delivered: i64,
    ) -> bool {
        let revision = self.save_over(&mut job, revision, stops).await;
        if stops.superseded.is_cancelled() {
            return false;
        }
        if !stops.canceled.is_cancelled() {
            return true;
        }
        job.state = JobState::Canceled;
        job.error = None;
        self.finish(message, job, revision, started, delivered)
            .await;
        false
    }

    /// Records a terminal state, announces it and settles the work item. The
    /// upload is no longer needed either way. A result the job has moved on
    /// from (a later attempt started it) is dropped, and the work item, now
    /// that attempt's, is left alone.
    async fn finish(
        &self,
        message: &jetstream::Message,
        mut job: Job,
        revision: Option<u64>,
        started: Instant,
        delivered: i64,
    ) {
        job.finished_at = Some(OffsetDateTime::now_utc());
        match self.write_result(&mut job, revision).await {
            Ok(Standing::Holds(_)) => {}
            Ok(Standing::Canceled(_)) => {
                // The owner's cancel came first and stays: announce that.
                tracing::info!(job = %job.id, "canceled by its owner as it ended");
                job.state = JobState::Canceled;
                job.output = None;
                job.error = None;
            }
            Ok(Standing::Superseded) => {
                tracing::info!(job = %job.id, "a later attempt has taken the job over; dropping this result");
                return;
            }
            Err(err) => {
                // A redelivery decides by this state. Without it, the next
                // delivery would convert again from an upload deleted below,
                // and fail a job that had completed.
                tracing::warn!(job = %job.id, error = %err, "cannot record the result; retrying");
                let _ = message
                    .ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                    .await;
                return;
            }
        }
        if let Err(err) = js_setup::publish_job_event(&self.js, &job).await {
            // Without the event there is no email and no history: try again.
            tracing::warn!(job = %job.id, error = %err, "cannot announce the result; retrying");
            let _ = message
                .ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                .await;
            return;
        }
        crate::metrics::job_finished(job.state.as_str(), started.elapsed().as_secs_f64());
        self.delete_upload(job.upload_object()).await;
        if let Err(err) = message.double_ack().await {
            tracing::warn!(job = %job.id, error = %err, "cannot acknowledge the work item");
        }
        tracing::info!(job = %job.id, state = job.state.as_str(), "job finished");
    }

    async fn convert(
        &self,
        job: &mut Job,
        revision: &mut Option<u64>,
        interrupt: &CancellationToken,
        stops: &Stops,
    ) -> Result<Output, AttemptError> {
        let object = format!("{}.{}", job.id, job.format.extension());
        let stem = job
            .filename
            .rsplit_once('.')
            .map_or(job.filename.as_str(), |(stem, _)| stem);
        let filename = format!("{stem}.{}", job.format.extension());
        let content_type = job.format.content_type().to_string();
        let output = |bytes: u64, duration_seconds: f64| Output {
            object: object.clone(),
            bytes,
            content_type: content_type.clone(),
            filename: filename.clone(),
            duration_seconds,
        };
        // An earlier delivery may have stored the audio and then died before
        // recording it. The object exists only once it was stored whole, and
        // carries its duration: use it rather than encode again.
        if let Ok(info) = self.outputs.info(&object).await
            && let Some(duration) = info
                .metadata
                .get(OUTPUT_DURATION)
                .and_then(|d| d.parse::<f64>().ok())
        {
            tracing::info!(job = %job.id, "the audio is already stored; not encoding again");
            return Ok(output(info.size as u64, duration));
        }
        let dir = ffmpeg::work_dir(&self.work_root, &job.id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| transient("work dir")(&e))?;
        let input = dir.join("input");
        let output_path = dir.join(format!("output.{}", job.format.extension()));

        // ffmpeg needs a seekable file for containers such as MP4.
        let phase = Instant::now();
        self.download(job.upload_object(), &input).await?;
        tracing::debug!(job = %job.id, seconds = phase.elapsed().as_secs_f64(), "upload copied");
        let phase = Instant::now();
        // The job may make no more audio than its owner's quota has room for.
        let mut media = self.media.clone();
        if let Some(left) = job.max_output_bytes {
            media.max_output_bytes = media.max_output_bytes.min(left.max(1));
        }
        let media = &media;
        let probe = ffmpeg::probe(media, &input).await?;
        tracing::debug!(job = %job.id, seconds = phase.elapsed().as_secs_f64(), "upload probed");
        let phase = Instant::now();
        let mut encode =
            Encode::start(media, &probe, &input, &output_path, job.format, job.options)?;
        let encode_deadline = tokio::time::sleep(self.media.encode_timeout);
        tokio::pin!(encode_deadline);
        let mut last_saved = Instant::now();
        let result = loop {
            tokio::select! {
                changed = encode.progress.changed() => {
                    if changed.is_err() {
                        break encode.finish().await;
                    }
                    let progress = *encode.progress.borrow_and_update();
                    if let Some(total) = probe.duration
                        && last_saved.elapsed() >= Duration::from_millis(500)
                    {
                        job.progress = (progress.seconds / total * 100.0).clamp(0.0, 99.0).round();
                        job.speed = (progress.speed > 0.0).then_some(progress.speed);
                        job.eta_seconds = job.speed.map(|speed| {
                            ((total - progress.seconds).max(0.0) / speed).round()
                        });
                        *revision = self.save_over(job, *revision, stops).await;
                        last_saved = Instant::now();
                    }
                }
                _ = stops.canceled.cancelled() => {
                    encode.kill();
                    let _ = encode.finish().await;
                    return Err(AttemptError::Canceled);
                }
                _ = stops.superseded.cancelled() => {
                    encode.kill();
                    let _ = encode.finish().await;
                    return Err(AttemptError::Superseded);
                }
                _ = interrupt.cancelled() => {
                    encode.kill();
                    let _ = encode.finish().await;
                    return Err(AttemptError::Interrupted);
                }
                _ = &mut encode_deadline => {
                    encode.kill();
                    let _ = encode.finish().await;
                    return Err(AttemptError::Rejected(format!(
                        "the conversion took longer than the limit of {} seconds",
                        self.media.encode_timeout.as_secs()
                    )));
                }
            }
        };
        result?;
        tracing::debug!(job = %job.id, seconds = phase.elapsed().as_secs_f64(), "encoded");
        // ffmpeg's last report says how much audio it wrote. Each ffprobe run
        // costs about as much CPU as a short encode (mostly loading its
        // libraries), so the output is probed only when ffmpeg did not say.
        let written = encode.progress.borrow().seconds;
        let duration = if written > 0.0 {
            written
        } else {
            ffmpeg::output_duration(media, &output_path).await?
        };
        // ffmpeg can exit 0 having read only part of an input (an mp4 whose
        // index is missing or damaged): a short output is a failed job, not
        // audio to hand out.
        if let Some(expected) = probe.audio_duration
            && duration < expected * 0.95 - 1.0
        {
            return Err(AttemptError::Rejected(format!(
                "only {duration:.1} of {expected:.1} seconds of audio could be read; \
                 the file is damaged or incomplete"
            )));
        }
        // Storing would replace the audio a later attempt may have stored
        // and be serving: check the job is still this attempt's first. Not
        // knowing (NATS unreachable) is a reason to try again later.
        match self.standing(job).await {
            Ok(Standing::Superseded) => return Err(AttemptError::Superseded),
            Ok(_) => {}
            Err(err) => return Err(transient("check the job")(&err)),
        }
        let file = tokio::fs::File::open(&output_path)
            .await
            .map_err(|e| transient("open output")(&e))?;
        let metadata = [(OUTPUT_DURATION.to_string(), duration.to_string())].into();
        let phase = Instant::now();
        let info = objects::put_object(&self.outputs, &object, file, self.chunk_size, metadata)
            .await
            .map_err(|e| transient("store output")(&e))?;
        tracing::debug!(job = %job.id, seconds = phase.elapsed().as_secs_f64(), "audio stored");
        Ok(output(info.size as u64, duration))
    }

    /// Copies the upload to a local file, streaming.
    async fn download(&self, object: &str, path: &std::path::Path) -> Result<(), AttemptError> {
        let (_, chunks) = match self.uploads.read(object).await {
            Ok(object) => object,
            Err(objects::ReadError::NotFound) => {
                return Err(AttemptError::Rejected(
                    "the upload is gone (it expired or was deleted)".into(),
                ));
            }
            Err(err) => return Err(transient("read upload")(&err)),
        };
        let mut object = tokio_util::io::StreamReader::new(objects::read_ahead(chunks, 2));
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| transient("create input file")(&e))?;
        tokio::io::copy(&mut object, &mut file)
            .await
            .map_err(|e| transient("read upload")(&e))?;
        file.flush()
            .await
            .map_err(|e| transient("write input file")(&e))?;
        Ok(())
    }

    fn running_jobs(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, CancellationToken>> {
        // A panic while holding the lock leaves a map that is still usable.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the encode of `job_id` if it runs here.
    fn cancel_running(&self, job_id: &str) {
        if let Some(cancel) = self.running_jobs().get(job_id) {
            cancel.cancel();
        }
    }

    async fn delete_upload(&self, object: &str) {
        match self.uploads.delete(object).await {
            Ok(()) => {}
            Err(err) if err.kind() == jetstream::object_store::DeleteErrorKind::NotFound => {}
            Err(err) => tracing::warn!(object, error = %err, "cannot delete the upload"),
        }
    }

    /// Writes the job over the state this attempt wrote last (`revision`),
    /// so that a cancel written in between wins and stops the encode even if
    /// the cancel message was lost, and a later attempt's state is never
    /// overwritten (this attempt is then told to stop). Returns the revision
    /// to write over next; `None` when not known.
    async fn save_over(&self, job: &mut Job, revision: Option<u64>, stops: &Stops) -> Option<u64> {
        job.updated_at = OffsetDateTime::now_utc();
        let key = job.id.as_str();
        if let Some(current) = revision {
            match self.jobs.update(key, wire::encode(job), current).await {
                Ok(next) => return Some(next),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(err) => {
                    tracing::warn!(job = %key, error = %err, "cannot update the progress");
                    return revision;
                }
            }
        }
        // Someone else wrote, or what we wrote last is not known.
        match self.standing(job).await {
            Ok(Standing::Holds(at)) => match self.jobs.update(key, wire::encode(job), at).await {
                Ok(next) => Some(next),
                Err(_) => Some(at),
            },
            Ok(Standing::Canceled(at)) => {
                stops.canceled.cancel();
                Some(at)
            }
            Ok(Standing::Superseded) => {
                stops.superseded.cancel();
                revision
            }
            Err(err) => {
                tracing::warn!(job = %key, error = %err, "cannot update the progress");
                revision
            }
        }
    }

    /// Where this attempt (`job` as it last wrote it) stands with the job
    /// as stored now.
    async fn standing(&self, job: &Job) -> Result<Standing, kv::EntryError> {
        let entry = self.jobs.entry(job.id.as_str()).await?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(Standing::Superseded);
        };
        let Ok(stored) = wire::decode::<Job>(&entry.value) else {
            return Ok(Standing::Superseded);
        };
        // Every attempt counts itself in `attempts` when it starts, with a
        // compare-and-set: a higher count is a later attempt. A lower one is
        // a replica that has not caught up with this attempt's writes (in a
        // cluster, a read may be served by any replica): still ours.
        Ok(if stored.attempts > job.attempts {
            Standing::Superseded
        } else if stored.state == JobState::Canceled {
            Standing::Canceled(entry.revision)
        } else {
            Standing::Holds(entry.revision)
        })
    }

    /// Writes this attempt's result over the job, unless the job has moved
    /// on without it (then says how and writes nothing).
    async fn write_result(&self, job: &mut Job, revision: Option<u64>) -> Result<Standing, String> {
        job.updated_at = OffsetDateTime::now_utc();
        let mut over = revision;
        for _ in 0..3 {
            let at = match over {
                Some(at) => at,
                None => match self.standing(job).await.map_err(|e| e.to_string())? {
                    Standing::Holds(at) => at,
                    moved_on => return Ok(moved_on),
                },
            };
            match self
                .jobs
                .update(job.id.as_str(), wire::encode(job), at)
                .await
            {
                Ok(written) => return Ok(Standing::Holds(written)),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => over = None,
                Err(err) => return Err(err.to_string()),
            }
        }
        Err("the job kept changing while its result was written".to_string())
    }

    /// Keeps a copy of a work item for an operator, then removes it from the
    /// queue (`Term` deletes it from a work-queue stream).
    async fn dead_letter(&self, message: &jetstream::Message, reason: &str) {
        tracing::error!(subject = %message.subject, reason, "dead-lettering a work item");
        self.copy_to_dead_letter(message, reason).await;
        let _ = message.ack_with(AckKind::Term).await;
    }

    async fn copy_to_dead_letter(&self, message: &jetstream::Message, reason: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Mediajet-Dead-Reason", wire::header_safe(reason).as_str());
        let published = match self
            .js
            .publish_with_headers(subject::DEAD_TRANSCODE, headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = published {
            tracing::error!(error = %err, "cannot dead-letter a work item");
        }
    }
}

/// Removes everything inside `dir` (which may be a mount point, so it
/// stays itself).
async fn clear_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if entry.file_type().await?.is_dir() {
            tokio::fs::remove_dir_all(&path).await?;
        } else {
            tokio::fs::remove_file(&path).await?;
        }
    }
    Ok(())
}

/// What becomes of a work item once its attempt is over.
#[derive(Debug, PartialEq)]
enum Decision {
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
fn decide(outcome: &Result<Output, AttemptError>, retries: u32) -> Decision {
    match outcome {
        Ok(_) => Decision::Finish(JobState::Completed),
        Err(AttemptError::Rejected(_)) => Decision::Finish(JobState::Failed),
        Err(AttemptError::Canceled) => Decision::Finish(JobState::Canceled),
        Err(AttemptError::Superseded) => Decision::Leave,
        Err(AttemptError::Interrupted) => Decision::HandBack {
            delay: None,
            retried: false,
        },
        Err(AttemptError::Transient(_)) if retries + 1 >= WORK_MAX_RETRIES => Decision::GiveUp,
        Err(AttemptError::Transient(_)) => Decision::HandBack {
            delay: Some(retry_delay(i64::from(retries + 1))),
            retried: true,
        },
    }
}

/// Delay before a retried work item is offered again: 2, 4, 8 … up to 60 s.
fn retry_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.clamp(1, 6)).unwrap_or(1);
    Duration::from_secs(2u64.pow(exponent).min(60))
}

impl Worker for Transcoder {
    const NAME: &'static str = "transcoder";

    fn run(self: Arc<Self>, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move {
            // Nothing encodes here yet: whatever is in the work dir was left
            // by a process or a worker that died mid-encode.
            if let Err(err) = clear_dir(&self.work_root).await {
                tracing::warn!(error = %err, "cannot clear the work dir");
            }
            let consumer = js_setup::transcoders_consumer(&self.work)
                .await
                .map_err(|e| WorkerError::new("transcoders consumer", e))?;
            // Cancel requests for encodes running here; the jobs bucket stays
            // the authority, these only make a cancel take effect at once.
            let mut cancels = self
                .client
                .subscribe(subject::CANCEL_ALL)
                .await
                .map_err(|e| WorkerError::new("cancel requests", e))?;
            let listener = {
                let this = self.clone();
                tokio::spawn(async move {
                    while let Some(request) = cancels.next().await {
                        if let Some(job_id) = request.subject.rsplit('.').next() {
                            this.cancel_running(job_id);
                        }
                    }
                })
            };
            tracing::info!(slots = self.slots, "transcoder pulling work");
            let outcome = self.clone().pull_loop(consumer, shutdown).await;
            listener.abort();
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_one_ack_decision_and_hand_backs_are_free() {
        let transient = || Err(AttemptError::Transient("disk".into()));
        let output = Output {
            object: "a.mp3".into(),
            bytes: 1,
            content_type: "audio/mpeg".into(),
            filename: "a.mp3".into(),
            duration_seconds: 1.0,
        };
        let cases: Vec<(Result<Output, AttemptError>, u32, Decision)> = vec![
            (Ok(output), 0, Decision::Finish(JobState::Completed)),
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
