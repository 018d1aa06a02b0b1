//! Cancelling a job: a compare-and-set over the job's live state, so a
//! transcoder that finishes the job at the same moment is never overwritten;
//! and deleting a finished one with its audio.

use async_nats::jetstream::{kv, object_store};
use time::OffsetDateTime;

use super::Ingest;
use super::error::ApiError;
use super::idempotency::SubmissionKey;
use crate::error::BoxError;
use crate::storage::jetstream as js_setup;
use crate::trace_context::TraceContext;
use crate::wire::{self, Job, JobState, subject};

/// How a cancel ended.
#[derive(Debug)]
pub enum Canceled {
    /// The job is canceled now; this is it as written.
    Now(Job),
    /// The job ended before the cancel could be written; this is how.
    AlreadyEnded(Job),
    /// The job has no live state (deleted meanwhile).
    Gone,
}

/// The job could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the jobs bucket is unavailable")]
pub struct CancelError(#[source] BoxError);

/// Cancels the job `job_id` if it has not ended, writing over the revision
/// of the state that is read; a job written in between (a transcoder
/// recording progress or the result) is read again, a few times at most.
pub async fn cancel(jobs: &kv::Store, job_id: &str) -> Result<Canceled, CancelError> {
    let mut conflicts = 0;
    loop {
        let entry = jobs
            .entry(job_id)
            .await
            .map_err(|e| CancelError(e.into()))?
            .filter(|entry| entry.operation == kv::Operation::Put);
        let Some(entry) = entry else {
            return Ok(Canceled::Gone);
        };
        let mut job: Job = wire::decode(&entry.value).map_err(|e| CancelError(e.into()))?;
        if job.state.is_terminal() {
            return Ok(Canceled::AlreadyEnded(job));
        }
        let now = OffsetDateTime::now_utc();
        job.state = JobState::Canceled;
        job.finished_at = Some(now);
        job.updated_at = now;
        job.speed = None;
        job.eta_seconds = None;
        match jobs
            .update(job_id, wire::encode(&job), entry.revision)
            .await
        {
            Ok(_) => return Ok(Canceled::Now(job)),
            // Progress writes come every half second: try again over them.
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision && conflicts < 5 => {
                conflicts += 1;
            }
            Err(err) => return Err(CancelError(err.into())),
        }
    }
}

impl Ingest {
    /// Cancels the caller's unfinished job, or deletes a finished one with its
    /// audio. Returns the canceled job, or `None` once the job is gone.
    pub(super) async fn cancel_or_delete(
        &self,
        owner: &str,
        job_id: &str,
        trace: &TraceContext,
    ) -> Result<Option<Job>, ApiError> {
        let job = self.job_for(owner, job_id).await?;
        if job.state.is_terminal() {
            self.delete_finished(&job).await?;
            return Ok(None);
        }
        self.cancel_job(&job, trace).await.map(Some)
    }

    /// Deletes a finished job with its audio and waveform.
    pub(super) async fn delete_finished(&self, job: &Job) -> Result<(), ApiError> {
        let job_id = job.id.as_str();
        let audio = job.results().map(|output| output.object.clone());
        for object in audio.chain(wire::side_objects(job_id)) {
            match self.outputs.delete(&object).await {
                Ok(()) => {}
                Err(err) if err.kind() == object_store::DeleteErrorKind::NotFound => {}
                Err(err) => return Err(ApiError::unavailable("the object store", err)),
            }
        }
        // Live state first, history last: until the history row goes the
        // job is still listed, so a failed delete can be repeated.
        self.jobs
            .purge(job_id)
            .await
            .map_err(|e| ApiError::unavailable("the jobs bucket", e))?;
        self.finished.deleted(job_id);
        self.history
            .delete(job_id)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        Ok(())
    }

    /// Cancels an unfinished job; returns it canceled.
    pub(super) async fn cancel_job(
        &self,
        job: &Job,
        trace: &TraceContext,
    ) -> Result<Job, ApiError> {
        let job_id = job.id.as_str();
        let job = match cancel(&self.jobs, job_id)
            .await
            .map_err(|e| ApiError::unavailable("the jobs bucket", e))?
        {
            Canceled::Now(job) => job,
            Canceled::AlreadyEnded(ended) => {
                return Err(ApiError::Conflict(
                    "already_ended",
                    format!(
                        "the job was {} before it could be canceled; delete it to remove it",
                        ended.state.as_str()
                    ),
                ));
            }
            Canceled::Gone => return Err(ApiError::NotFound),
        };
        // The jobs bucket now says canceled, which a transcoder checks before it
        // starts and at every progress write; this message makes one that is
        // encoding the job stop at once.
        if let Err(err) = self
            .client
            .publish(subject::cancel(job_id), bytes::Bytes::new())
            .await
        {
            tracing::warn!(error = %err, "cannot send the cancel request");
        }
        // The event records the cancel in the history; nobody is emailed.
        if let Err(err) = js_setup::publish_job_event(&self.js, &job, trace).await {
            tracing::warn!(error = %err, "cannot publish the canceled event");
        }
        Ok(job)
    }
}

impl Ingest {
    /// Ends a job queued while its upload arrived, once that upload has
    /// failed (the client hung up, or it broke a limit): the transcoder
    /// following it stops, and the job leaves nothing behind, as a failed
    /// upload of a job not yet queued does.
    pub(super) async fn abandon_streamed(&self, job: &Job, key: Option<&SubmissionKey>) {
        let job_id = job.id.as_str();
        if let Err(err) = cancel(&self.jobs, job_id).await {
            tracing::warn!(error = %err, "cannot cancel the job of a failed upload");
        }
        if let Err(err) = self
            .client
            .publish(subject::cancel(job_id), bytes::Bytes::new())
            .await
        {
            tracing::warn!(error = %err, "cannot send the cancel request");
        }
        if let Err(err) = self.jobs.purge(job_id).await {
            tracing::warn!(error = %err, "cannot remove the job of a failed upload");
        }
        self.finished.deleted(job_id);
        self.forget(job).await;
        if let Some(key) = key {
            self.release(key).await;
        }
    }
}
