//! Cancelling a job: a compare-and-set over the job's live state, so a
//! transcoder that finishes the job at the same moment is never overwritten.

use async_nats::jetstream::kv;
use time::OffsetDateTime;

use crate::wire::{self, Job, JobState};

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
#[error("the jobs bucket is unavailable: {0}")]
pub struct CancelError(String);

/// Cancels the job `job_id` if it has not ended, writing over the revision
/// of the state that is read; a job written in between (a transcoder
/// recording progress or the result) is read again, a few times at most.
pub async fn cancel(jobs: &kv::Store, job_id: &str) -> Result<Canceled, CancelError> {
    let mut conflicts = 0;
    loop {
        let entry = jobs
            .entry(job_id)
            .await
            .map_err(|e| CancelError(e.to_string()))?
            .filter(|entry| entry.operation == kv::Operation::Put);
        let Some(entry) = entry else {
            return Ok(Canceled::Gone);
        };
        let mut job: Job = wire::decode(&entry.value).map_err(|e| CancelError(e.to_string()))?;
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
            Err(err) => return Err(CancelError(err.to_string())),
        }
    }
}
