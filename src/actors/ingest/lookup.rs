//! Reading jobs for their owner: the live state over the history, one job
//! or a page of them, and a queued job's place in the queue.

use super::error::ApiError;
use super::finished::Known;
use super::history::StateFilter;
use super::{Ingest, view};
use crate::domain::JobId;
use crate::telemetry;
use crate::wire::{self, Job, JobState, names};

impl Ingest {
    /// The caller's job, or `NotFound` if it is someone else's or unknown.
    /// A finished job comes from memory when this process saw it end.
    pub(super) async fn job_for(&self, owner: &str, job_id: &str) -> Result<Job, ApiError> {
        match self.job(job_id).await? {
            Some(job) if job.owner == owner => Ok(job),
            _ => Err(ApiError::NotFound),
        }
    }

    /// Job `job_id`, whoever's it is, if there is one.
    pub(super) async fn job(&self, job_id: &str) -> Result<Option<Job>, ApiError> {
        // Any spelling of a UUID (braces, `urn:uuid:`, capitals) names the
        // same job; only the canonical one is a key.
        let Some(job_id) = JobId::parse(job_id) else {
            return Ok(None);
        };
        telemetry::record_job(&job_id);
        let job_id = job_id.as_str();
        let live = match self.finished.get(job_id) {
            Some(Known::Finished(job)) => Some(*job),
            Some(Known::Deleted) => None,
            None => self
                .jobs
                .get(job_id)
                .await
                .map_err(|e| ApiError::unavailable("the jobs bucket", e))?
                .map(|bytes| wire::decode::<Job>(&bytes))
                .transpose()
                .map_err(ApiError::internal)?,
        };
        match live {
            Some(job) => Ok(Some(job)),
            None => self
                .history
                .get(job_id)
                .await
                .map_err(|e| ApiError::unavailable("the job history", e)),
        }
    }

    /// The stream sequence of the last work item a transcoder has taken,
    /// or `None` when that is unknown (no transcoder has started yet).
    pub(super) async fn work_taken(&self) -> Option<u64> {
        self.work
            .consumer_info(names::TRANSCODERS_CONSUMER)
            .await
            .ok()
            .map(|info| info.delivered.stream_sequence)
    }

    /// The job as its owner sees it, with its place in the queue while it
    /// waits.
    pub(super) async fn view(&self, job: Job) -> view::JobView {
        let taken = if job.state == JobState::Queued {
            self.work_taken().await
        } else {
            None
        };
        view::JobView::new(job, taken, &self.links)
    }

    /// A page of the owner's jobs, newest first, in their live state, and
    /// the cursor of the next page if there may be one.
    pub(super) async fn jobs_for(
        &self,
        owner: &str,
        state: Option<JobState>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Job>, Option<String>), ApiError> {
        let filter = match state {
            None => StateFilter::Any,
            Some(state) if state.is_terminal() => StateFilter::Finished(state),
            Some(_) => StateFilter::Unfinished,
        };
        let mut jobs = self
            .history
            .list(owner, filter, before, limit)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        // A full page may have more behind it; the cursor is the last job
        // looked at, whether or not the state filter keeps it.
        let next = (jobs.len() == limit as usize)
            .then(|| jobs.last().map(|job| job.id.to_string()))
            .flatten();
        for job in jobs.iter_mut().filter(|job| !job.state.is_terminal()) {
            if let Ok(Some(bytes)) = self.jobs.get(job.id.as_str()).await
                && let Ok(live) = wire::decode::<Job>(&bytes)
            {
                *job = live;
            }
        }
        if let Some(state) = state {
            jobs.retain(|job| job.state == state);
        }
        Ok((jobs, next))
    }
}
