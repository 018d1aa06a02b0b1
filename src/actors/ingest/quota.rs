//! A user's caps, checked before a submission is taken: how many unfinished
//! jobs (uploads in progress included) they may have, how large an upload
//! may be, and how much of their storage quota is left, open resumable
//! uploads holding their whole length.

use time::OffsetDateTime;

use super::Ingest;
use super::error::ApiError;
use super::per_owner;
use super::submission::empty_file;
use super::tus::record::UploadId;

impl Ingest {
    /// Refuses an upload of `size` bytes that is empty, over the upload
    /// limit, or over what is left (`quota`) of its owner's storage.
    pub(super) fn check_size(&self, size: u64, quota: u64) -> Result<(), ApiError> {
        if size > quota {
            return Err(ApiError::QuotaExceeded(self.max_user_bytes));
        }
        if size == 0 {
            return Err(empty_file());
        }
        if size > self.max_upload_bytes {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// The refusal of an upload over the limit.
    pub(super) fn too_large(&self) -> ApiError {
        ApiError::TooLarge(format!(
            "the upload is larger than the limit of {} bytes",
            self.max_upload_bytes
        ))
    }

    /// Refuses a new job while the owner already has the most unfinished
    /// jobs allowed, counting `also` more (uploads in progress, or the job
    /// about to be created).
    pub(super) async fn check_unfinished(&self, owner: &str, also: u64) -> Result<(), ApiError> {
        let unfinished = self
            .history
            .unfinished(owner)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        if unfinished.saturating_add(also) > self.max_unfinished_jobs {
            crate::metrics::refused("unfinished_jobs");
            return Err(ApiError::TooMany(
                "too_many_jobs",
                format!(
                    "you have {unfinished} unfinished jobs and {} uploads in progress; at most {} \
                     are allowed: wait for some to end or cancel some",
                    also.saturating_sub(1),
                    self.max_unfinished_jobs
                ),
                30,
            ));
        }
        Ok(())
    }

    /// What is left of `owner`'s storage quota, or 413 `quota_exceeded`
    /// when nothing is. Resumable uploads still open hold the whole length
    /// they were created with.
    pub(super) async fn quota_left(&self, owner: &str) -> Result<u64, ApiError> {
        self.quota_left_besides(owner, None).await
    }

    /// [`Ingest::quota_left`], not counting the open resumable upload
    /// `besides` (the one about to become a job).
    pub(super) async fn quota_left_besides(
        &self,
        owner: &str,
        besides: Option<&UploadId>,
    ) -> Result<u64, ApiError> {
        let open = self.tus.records.open(owner).await?;
        let others = open.iter().filter(|upload| Some(&upload.id) != besides);
        self.quota_beyond(owner, others.map(|upload| upload.length).sum())
            .await
    }

    /// What is left of `owner`'s quota once `reserved` bytes of open
    /// resumable uploads are counted with what they have stored.
    async fn quota_beyond(&self, owner: &str, reserved: u64) -> Result<u64, ApiError> {
        let kept_since = OffsetDateTime::now_utc() - self.retention;
        let stored = self
            .history
            .stored_bytes(owner, kept_since)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        match self
            .max_user_bytes
            .checked_sub(stored.saturating_add(reserved))
            .filter(|left| *left > 0)
        {
            Some(left) => Ok(left),
            None => {
                crate::metrics::refused("quota");
                Err(ApiError::QuotaExceeded(self.max_user_bytes))
            }
        }
    }

    /// Counts an upload of `owner`'s as in progress, unless that would take
    /// them past their cap on unfinished jobs (their open resumable uploads
    /// count as uploads in progress too); returns what is left of their
    /// quota, as [`Ingest::quota_left`] does. The open resumable uploads
    /// are listed once for both.
    pub(super) async fn start_upload(
        &self,
        owner: &str,
    ) -> Result<(per_owner::Slot, u64), ApiError> {
        let (slot, in_progress) = self.uploading.start(owner);
        let open = self.tus.records.open(owner).await?;
        self.check_unfinished(owner, in_progress.saturating_add(open.len() as u64))
            .await?;
        let quota = self
            .quota_beyond(owner, open.iter().map(|upload| upload.length).sum())
            .await?;
        Ok((slot, quota))
    }
}
