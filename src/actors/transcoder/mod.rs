//! Transcoder: pulls work items from the shared durable consumer, one per
//! free slot, converts the upload with ffmpeg and stores the audio.
//!
//! Outcomes decide the acknowledgement: a finished job (completed, or failed
//! because the upload is not convertible) is acked; a transient failure is
//! nakked with a growing delay until the job's retries run out, then
//! dead-lettered and failed; an encode interrupted by shutdown is nakked for
//! another node.
//!
//! - `pull`: the pull loop and the first look at each work item
//! - `attempt`: one attempt at a job and what follows its ack decision
//! - `decision`: the ack decision itself, a pure function with its table
//! - `error`: how an attempt can fail, by class
//! - `ownership`: compare-and-set writes to the job, cancel and takeover
//! - `convert`: the job's outputs made in turn, and its waveform; `output`:
//!   one output's passes of ffmpeg, its checks, its audio stored; `pass`:
//!   one pass run to its end with its progress; `inputs`: the upload
//!   copied to a work file, and the cover picture
//! - `id3`: an mp3's comment moved into the frame players read
//! - `split`: a split output's tracks, encoded one by one and zipped
//! - `feed`: an upload still arriving, copied into ffmpeg's pipe and the
//!   work file as its chunks are stored
//! - `dead_letter`: work items kept for an operator
//! - `ffmpeg`: the encode, the media policy on its report, the limits
//! - `sandbox`: how they are started: environment, namespace, user, limits

mod attempt;
mod convert;
mod dead_letter;
mod decision;
mod error;
mod feed;
pub mod ffmpeg;
mod id3;
mod inputs;
mod output;
mod ownership;
mod pass;
mod pull;
mod sandbox;
mod split;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, Context, kv, stream::Stream};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::actors::{Worker, WorkerError, WorkerFuture};
use crate::config::{Shared, TranscoderSettings};
use crate::storage::buckets;
use crate::storage::jetstream::{self as js_setup, SetupError};
use crate::storage::objects::{self, Bucket};
use crate::wire::{self, subject};
use ffmpeg::MediaPolicy;

/// Empty pulls in a row (2 s each) after which the consumer is looked up.
const IDLE_PULLS_BEFORE_CHECK: u32 = 5;

/// Object metadata key of a stored output's duration in seconds.
pub const OUTPUT_DURATION: &str = "duration_seconds";
/// Object metadata key of a normalized output's loudness report (JSON).
pub const OUTPUT_LOUDNESS: &str = "loudness";
/// Object metadata key of a split output's tracks (JSON).
pub const OUTPUT_TRACKS: &str = "tracks";

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
        shared: &Shared,
        settings: &TranscoderSettings,
        client: async_nats::Client,
    ) -> Result<Arc<Transcoder>, SetupError> {
        let js = js_setup::context(client.clone());
        let r = shared.replicas;
        js_setup::events_stream(&js, r).await?;
        js_setup::dead_letter_stream(&js, r).await?;
        Ok(Arc::new(Transcoder {
            work: js_setup::work_stream(&js, r).await?,
            jobs: buckets::jobs_bucket(&js, r).await?,
            client: client.clone(),
            running: Default::default(),
            uploads: objects::uploads_bucket(&js, r, shared.retention, shared.uploads_store_bytes)
                .await?,
            outputs: objects::outputs_bucket(&js, r, shared.retention, shared.outputs_store_bytes)
                .await?,
            chunk_size: objects::chunk_size(&client),
            slots: settings.transcode_slots(),
            work_root: shared.data_dir.join("transcode"),
            media: settings.media_policy(),
            drain_timeout: settings.drain_timeout,
            js,
        }))
    }

    /// Deletes what the job's conversion read: its upload, and the cover
    /// picture that came with it.
    async fn delete_upload(&self, job: &wire::Job) {
        let cover = job.cover_object();
        for object in std::iter::once(job.upload_object()).chain(cover.as_deref()) {
            match self.uploads.delete(object).await {
                Ok(()) => {}
                Err(err) if err.kind() == jetstream::object_store::DeleteErrorKind::NotFound => {}
                Err(err) => tracing::warn!(object, error = %err, "cannot delete the upload"),
            }
        }
    }

    /// Deletes the audio (and waveform) a job that did not complete may
    /// have stored for some of its outputs before it failed or was canceled.
    async fn delete_outputs(&self, job: &wire::Job) {
        let audio = job
            .specs()
            .enumerate()
            .map(|(n, spec)| wire::output_object(job.id.as_str(), n, &spec));
        for object in audio.chain(wire::side_objects(job.id.as_str())) {
            match self.outputs.delete(&object).await {
                Ok(()) => {}
                Err(err) if err.kind() == jetstream::object_store::DeleteErrorKind::NotFound => {}
                Err(err) => tracing::warn!(object, error = %err, "cannot delete the audio"),
            }
        }
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
