//! Creating a job, once its submission is valid: the upload stored, the
//! owner recorded where only Ingest writes, the history row, the live state
//! and the work item, each undone if a later one fails. A job whose upload
//! can be read as a stream is created as soon as its first chunk is stored.

use async_nats::jetstream::{self, object_store};
use tokio::io::AsyncRead;

use super::Ingest;
use super::error::ApiError;
use super::idempotency::SubmissionKey;
use super::streamable::streamable;
use crate::storage::jetstream as js_setup;
use crate::storage::objects;
use crate::trace_context::{TRACEPARENT, TraceContext};
use crate::wire::{self, Job, WorkItem, subject};

impl Ingest {
    /// Streams an upload into the object store under the job id and returns
    /// its size. Only one chunk is held in memory at a time.
    pub(super) async fn store_upload(
        &self,
        job_id: &str,
        data: impl AsyncRead + Unpin,
    ) -> Result<u64, objects::PutError> {
        let info = objects::put_object(
            &self.uploads,
            job_id,
            data,
            self.chunk_size,
            Default::default(),
        )
        .await?;
        Ok(info.size as u64)
    }

    /// [`Ingest::store_upload`] for a job whose options are known before its
    /// file: once the first chunk is stored, if the container can be read
    /// as a stream, `job` is queued at once (`streamed_from` names the
    /// chunks) and a transcoder follows the upload as it arrives. Returns
    /// the upload's size and the job queued early, if one was. A job queued
    /// early on an upload that then fails is the caller's to abandon.
    pub(super) async fn store_upload_streaming(
        &self,
        mut job: Job,
        data: impl AsyncRead + Unpin,
        trace: &TraceContext,
        key: Option<&SubmissionKey>,
    ) -> (Result<u64, objects::PutError>, Option<Job>) {
        let (announce, started) = tokio::sync::oneshot::channel();
        let name = job.id.to_string();
        let put = objects::put_object_announced(
            &self.uploads,
            &name,
            data,
            self.chunk_size,
            Default::default(),
            Some(announce),
        );
        let queue = async {
            // No first chunk (an empty or failed upload): nothing to start.
            let started = started.await.ok()?;
            if !streamable(&started.head) {
                return None;
            }
            job.streamed_from = Some(started.nuid);
            match self.submit_once(&job, trace, key).await {
                Ok(None) => Some(job),
                // Its key names an earlier job, or one still being made: the
                // end of the upload tells the client which.
                Ok(Some(_)) | Err(ApiError::Conflict(..)) => None,
                Err(err) => {
                    // The upload goes on; its job is made at its end instead.
                    tracing::warn!(error = %err, "cannot queue the job early");
                    None
                }
            }
        };
        let (stored, queued) = tokio::join!(put, queue);
        (stored.map(|info| info.size as u64), queued)
    }

    /// Removes an upload whose job could not be created.
    pub(super) async fn discard_upload(&self, job_id: &str) {
        match self.uploads.delete(job_id).await {
            Ok(()) => {}
            Err(err) if err.kind() == object_store::DeleteErrorKind::NotFound => {}
            Err(err) => tracing::warn!(error = %err, "cannot delete an abandoned upload"),
        }
        // The cover picture, if one came with it (none is no error).
        let _ = self.uploads.delete(&wire::cover_object(job_id)).await;
    }

    /// Records a new job and queues its work item. On failure nothing of the
    /// job is left behind except what the caller cleans (the upload).
    pub(super) async fn submit(&self, job: &Job, trace: &TraceContext) -> Result<(), ApiError> {
        // Who gets the job's email, where no transcoder can change it.
        let owner = wire::JobOwner {
            v: wire::VERSION,
            owner: job.owner.clone(),
            email: job.owner_email.clone(),
        };
        self.owners
            .put(job.id.as_str(), wire::encode(&owner))
            .await
            .map_err(|e| ApiError::unavailable("the owners bucket", e))?;
        self.history
            .upsert(job)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        let revision = match self.jobs.create(job.id.as_str(), wire::encode(job)).await {
            Ok(revision) => revision,
            Err(err) => {
                self.forget(job).await;
                return Err(ApiError::unavailable("the jobs bucket", err));
            }
        };
        // A job whose input is still to be fetched waits for its import;
        // the importer queues it for a transcoder once the input is stored.
        let importing = job.source_url.is_some();
        let subject = match importing {
            true => subject::WORK_IMPORT,
            false => subject::WORK_TRANSCODE,
        };
        let sequence = match self.publish_work(subject, job, trace).await {
            Ok(sequence) => sequence,
            Err(err) => {
                let _ = self.jobs.purge(job.id.as_str()).await;
                self.forget(job).await;
                return Err(ApiError::unavailable("the work queue", err));
            }
        };
        if !importing {
            self.note_queue_place(job, revision, sequence).await;
        }
        // The queued event only feeds observers; the job is already safe.
        if let Err(err) = js_setup::publish_job_event(&self.js, job, trace).await {
            tracing::warn!(error = %err, "cannot publish the queued event");
        }
        Ok(())
    }

    /// Publishes `job`'s work item on `subject`; returns its place in its
    /// stream. The job id is the message id, so a repeat is dropped.
    pub(super) async fn publish_work(
        &self,
        subject: &'static str,
        job: &Job,
        trace: &TraceContext,
    ) -> Result<u64, crate::error::BoxError> {
        let item = WorkItem {
            v: wire::VERSION,
            job_id: job.id.clone(),
        };
        // The work item carries the trace on to its worker.
        let publish = jetstream::message::PublishMessage::build()
            .payload(wire::encode(&item))
            .message_id(job.id.as_str())
            .header(TRACEPARENT, trace.child().header().as_str());
        let ack = self.js.send_publish(subject, publish).await?.await?;
        Ok(ack.sequence)
    }

    /// Notes the place of `job`'s work item in the work stream, which tells
    /// its place in the queue; only while nothing else wrote the job since
    /// `revision`: once a transcoder has it, its place no longer matters.
    pub(super) async fn note_queue_place(&self, job: &Job, revision: u64, sequence: u64) {
        let mut queued = job.clone();
        queued.work_seq = Some(sequence);
        if let Err(err) = self
            .jobs
            .update(job.id.as_str(), wire::encode(&queued), revision)
            .await
        {
            tracing::debug!(error = %err, "the job moved on before its queue place was noted");
        }
    }

    /// Removes the history row of a job that could not be queued, so the
    /// user's list shows no job that will never run.
    pub(super) async fn forget(&self, job: &Job) {
        if let Err(err) = self.history.delete(job.id.as_str()).await {
            tracing::warn!(error = %err, "cannot remove an unqueued job");
        }
    }
}
