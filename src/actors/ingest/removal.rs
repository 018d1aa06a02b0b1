//! What is left of a removed user: their jobs (an unfinished one canceled
//! first) with their audio, their resumable uploads, API keys and presets. Auth
//! has marked them removed before this runs, so none of it can be reached
//! meanwhile; a removal cut short leaves the rest unreachable, and running
//! it again (the same request) takes it away.

use super::Ingest;
use super::error::ApiError;
use super::history::StateFilter;
use crate::trace_context::TraceContext;

/// Jobs read from the history at a time.
const PAGE: u32 = 200;

impl Ingest {
    /// Removes everything `owner` left.
    pub(super) async fn remove_owner(
        &self,
        owner: &str,
        trace: &TraceContext,
    ) -> Result<(), ApiError> {
        let mut removed = 0usize;
        loop {
            // Each page is the newest jobs left: those before are gone.
            let jobs = self
                .history
                .list(owner, StateFilter::Any, None, PAGE)
                .await
                .map_err(|e| ApiError::unavailable("the job history", e))?;
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                let job = match job.state.is_terminal() {
                    true => job,
                    false => match self.cancel_job(&job, trace).await {
                        Ok(canceled) => canceled,
                        // Ended (or gone) in the meantime: delete it as it is.
                        Err(ApiError::Conflict(..) | ApiError::NotFound) => job,
                        Err(err) => return Err(err),
                    },
                };
                self.delete_finished(&job).await?;
                removed += 1;
            }
        }
        for upload in self.tus.records.open(owner).await? {
            self.end_upload(&upload).await?;
        }
        self.disable_feed(owner).await?;
        for endpoint in self.endpoints(owner).await? {
            self.delete_endpoint(&endpoint).await?;
        }
        self.webhooks
            .purge(crate::wire::job_secret_key(owner))
            .await
            .map_err(|e| ApiError::unavailable("the webhooks", e))?;
        for key in self.api_keys.list(Some(owner)) {
            self.api_keys.revoke(&key.id).await?;
        }
        self.presets
            .delete_all(owner)
            .await
            .map_err(|e| ApiError::unavailable("the presets", e))?;
        tracing::info!(owner, jobs = removed, "removed what the user left");
        Ok(())
    }
}
