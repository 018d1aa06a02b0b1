//! A submission that names a URL instead of an upload: checked as any
//! submission is (caps, quota, options), then made a job that waits for its
//! import.

use super::Source;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::idempotency::SubmissionKey;
use crate::actors::ingest::submission::{self, Asked};
use crate::domain::JobId;
use crate::targets;
use crate::token::Claims;
use crate::trace_context::TraceContext;
use crate::wire::Job;

/// The field naming the URL to import.
pub const SOURCE_URL: &str = "source_url";

/// A submission of a URL: the URL, the outputs, and the name the job
/// shows, if given.
pub struct Wanted<'a> {
    pub source_url: &'a str,
    pub asked: Asked,
    pub filename: Option<&'a str>,
}

/// What a submission of a URL came to.
pub enum Submitted {
    /// A new job, queued for its import.
    New(Job),
    /// The job an earlier request with the same key made.
    Earlier(Job),
}

/// The URL to import, refused unless http(s), without credentials, and not
/// a private address written out (a name is checked when it is resolved).
pub fn checked_source(text: &str, policy: &targets::Policy) -> Result<targets::Url, ApiError> {
    let refused =
        |e: targets::TargetError| ApiError::BadRequest("invalid_source_url", e.to_string());
    let url = targets::parse(text.trim()).map_err(refused)?;
    targets::check_literal(&url, policy).map_err(refused)?;
    Ok(url)
}

impl Ingest {
    /// Makes the job that imports `wanted.source_url`, for a caller with
    /// `quota` bytes left (the import may take no more), named as asked or
    /// after the URL's last path segment.
    pub(in crate::actors::ingest) async fn submit_import(
        &self,
        caller: &Claims,
        wanted: Wanted<'_>,
        quota: u64,
        trace: &TraceContext,
        key: Option<&SubmissionKey>,
    ) -> Result<Submitted, ApiError> {
        let Wanted {
            source_url,
            asked,
            filename,
        } = wanted;
        let url = checked_source(source_url, &self.targets)?;
        let named = filename
            .map(str::to_string)
            .or_else(|| Source::file_name(&url));
        let filename = submission::clean_filename(named.as_deref());
        let job_id = JobId::new();
        crate::telemetry::record_job(&job_id);
        let mut job = submission::new_job(job_id, caller, asked, filename, 0, quota);
        job.source_url = Some(url.to_string());
        Ok(match self.submit_once(&job, trace, key).await? {
            None => Submitted::New(job),
            Some(earlier) => Submitted::Earlier(earlier),
        })
    }
}
