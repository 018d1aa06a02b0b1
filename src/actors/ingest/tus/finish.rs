//! How a resumable upload ends: as a job once its last byte is in (once,
//! however often the end is asked for), or given up, by its owner or by
//! its expiry, with every byte of it removed.

use std::collections::HashSet;

use super::record::UploadRecord;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::idempotency::{Source, SubmissionKey};
use crate::actors::ingest::submission::{self, Asked};
use crate::domain::JobId;
use crate::storage::objects::ReadError;
use crate::token::Claims;
use crate::trace_context::TraceContext;

impl Ingest {
    /// Makes the whole upload `record` its job, unless it already is one;
    /// returns the job's id. The job is made under the upload's id as its
    /// submission key, so two requests finishing the same upload at once
    /// (a final `PATCH` sent again) make one job between them.
    pub(crate) async fn finish_upload(
        &self,
        caller: &Claims,
        record: &UploadRecord,
        trace: &TraceContext,
    ) -> Result<JobId, ApiError> {
        if record.done {
            return Ok(record.job_id.clone());
        }
        let key = SubmissionKey::parse(Source::Tus, &record.owner, record.id.as_str())?;
        if self.replay(&key, &record.owner).await?.is_none() {
            // The upload still holds its length among the open ones: what
            // is left for the job is what the others leave.
            let quota = self
                .quota_left_besides(&record.owner, Some(&record.id))
                .await?;
            self.uploads
                .seal(
                    record.job_id.as_str(),
                    &record.nuid,
                    record.chunks,
                    record.length,
                    self.chunk_size,
                )
                .await
                .map_err(|e| ApiError::unavailable("the object store", e))?;
            let job = submission::new_job(
                record.job_id.clone(),
                caller,
                Asked {
                    format: record.format,
                    options: record.options.clone(),
                    more: record.more_outputs.clone(),
                    notify_url: record.notify_url.clone(),
                },
                record.filename.clone(),
                record.length,
                quota,
            );
            if self.submit_once(&job, trace, Some(&key)).await?.is_none() {
                crate::metrics::job_submitted(job.format.name(), job.input_bytes);
            }
        }
        self.tus.records.mark_done(record).await?;
        Ok(record.job_id.clone())
    }

    /// Gives the upload `record` up: its bytes and its record go. An upload
    /// that is already a job keeps the job; only the record goes.
    pub(crate) async fn end_upload(&self, record: &UploadRecord) -> Result<(), ApiError> {
        if !record.done {
            // Finishing may have stored the upload as its job's object
            // before the job could be made.
            match self.uploads.info(record.job_id.as_str()).await {
                Ok(info) if info.nuid == record.nuid => {
                    self.discard_upload(record.job_id.as_str()).await
                }
                Ok(_) | Err(ReadError::NotFound) => {}
                Err(err) => return Err(ApiError::unavailable("the object store", err)),
            }
            self.uploads.drop_parts(&record.nuid).await;
        }
        self.tus.records.remove(record).await
    }

    /// Ends every upload that has expired; returns the chunk ids of those
    /// still receiving bytes, which no sweep of broken-off writes may take.
    pub(crate) async fn expire_uploads(&self) -> Result<HashSet<String>, ApiError> {
        let mut open = HashSet::new();
        for record in self.tus.records.all().await? {
            if record.expired() {
                self.end_upload(&record).await?;
            } else if !record.done {
                open.insert(record.nuid);
            }
        }
        Ok(open)
    }
}
