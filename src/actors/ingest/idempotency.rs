//! Repeated submissions: a NATS request's `Nats-Msg-Id` or an HTTP
//! request's `Idempotency-Key` names the job the first request with it
//! created, per owner, for a day (the submissions bucket's age limit). A
//! request sent again after a lost answer gets that job, not a second one.
//!
//! The key is claimed just before the job is queued, after the checks (for
//! an upload converted while it arrives, at its first chunk): a refused
//! request does not use it up, an upload cut off before its end gives it
//! back, and a claim whose job never came (the request died in between, or
//! the job was deleted since) is taken over after a minute. A job queued
//! while its upload still arrives is no answer yet: a request repeating it
//! then gets 409 until the upload is in.

use std::time::Duration;

use async_nats::jetstream::kv;
use time::OffsetDateTime;

use super::Ingest;
use super::error::ApiError;
use crate::storage::objects::ReadError;
use crate::trace_context::TraceContext;
use crate::wire::Job;

/// Longest key kept, in bytes.
const MAX_KEY: usize = 256;

/// Where a key comes from. Each transport has keys of its own, so the same
/// text sent both ways names two submissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// `Nats-Msg-Id` of `mediajet.jobs.submit`.
    Nats,
    /// `Idempotency-Key` of `POST /v1/jobs`.
    Http,
    /// The id of a resumable upload: its job is made once.
    Tus,
}

impl Source {
    fn header(self) -> &'static str {
        match self {
            Source::Nats => "Nats-Msg-Id",
            Source::Http => "Idempotency-Key",
            Source::Tus => "upload",
        }
    }
}

/// A submission's key, checked: at most `MAX_KEY` bytes; an HTTP one of
/// printable ASCII, as a header value must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SubmissionKey {
    source: Source,
    /// The bucket key: owner and key hashed, so any text makes a valid one.
    bucket_key: String,
}

impl SubmissionKey {
    pub(super) fn parse(source: Source, owner: &str, key: &str) -> Result<Self, ApiError> {
        let printable = key.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if key.len() > MAX_KEY || source != Source::Nats && (key.is_empty() || !printable) {
            return Err(match source {
                Source::Nats => ApiError::BadRequest(
                    "bad_request",
                    format!("`Nats-Msg-Id` may be at most {MAX_KEY} bytes long"),
                ),
                Source::Http | Source::Tus => ApiError::BadRequest(
                    "bad_idempotency_key",
                    format!("`Idempotency-Key` must be 1 to {MAX_KEY} printable ASCII characters"),
                ),
            });
        }
        Ok(SubmissionKey {
            source,
            bucket_key: bucket_key(source, owner, key),
        })
    }
}

fn bucket_key(source: Source, owner: &str, key: &str) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(owner.as_bytes());
    // NATS keys keep the form they have always had; HTTP ones differ in
    // the separator.
    context.update(match source {
        Source::Nats => b"\n",
        Source::Http => b"\0",
        Source::Tus => b"\x01",
    });
    context.update(key.as_bytes());
    crate::hex::encode(context.finish().as_ref())
}

/// How long a claim may name a job that does not exist before it counts as
/// abandoned: a claim is made moments before its job, so one this old
/// belongs to a request that died in between, or to a job since deleted.
const ABANDONED_CLAIM: Duration = Duration::from_secs(60);

/// What a key names.
enum Claimed {
    /// Nothing (yet).
    Free,
    /// A job whose upload is whole: the answer to the request again.
    Job(Box<Job>),
    /// Another request is still making its job.
    InProgress,
    /// A claim left behind (see `ABANDONED_CLAIM`), at this revision.
    Abandoned(u64),
}

impl Ingest {
    /// The job `key` names, if there is one to answer with, looked up
    /// before an upload is read so that a repeated upload is not.
    pub(super) async fn replay(
        &self,
        key: &SubmissionKey,
        owner: &str,
    ) -> Result<Option<Job>, ApiError> {
        Ok(match self.claimed(key, owner).await? {
            Claimed::Job(job) => Some(*job),
            Claimed::Free | Claimed::InProgress | Claimed::Abandoned(_) => None,
        })
    }

    /// Queues `job` unless `key` names an earlier submission, whose job is
    /// then returned instead (and `job` is not queued). A job that cannot
    /// be queued gives its key back.
    pub(super) async fn submit_once(
        &self,
        job: &Job,
        trace: &TraceContext,
        key: Option<&SubmissionKey>,
    ) -> Result<Option<Job>, ApiError> {
        if let Some(key) = key
            && let Some(earlier) = self.claim(key, job).await?
        {
            return Ok(Some(earlier));
        }
        if let Err(err) = self.submit(job, trace).await {
            if let Some(key) = key {
                self.release(key).await;
            }
            return Err(err);
        }
        Ok(None)
    }

    /// Makes `key` name `job`, or returns the job it already names.
    async fn claim(&self, key: &SubmissionKey, job: &Job) -> Result<Option<Job>, ApiError> {
        let bucket_key = key.bucket_key.as_str();
        let value = || bytes::Bytes::from(job.id.to_string());
        // Another request may claim or release the key meanwhile; a few
        // rounds settle who has it.
        for _ in 0..3 {
            let won = match self.claimed(key, &job.owner).await? {
                Claimed::Job(earlier) => return Ok(Some(*earlier)),
                Claimed::InProgress => return Err(in_progress(key)),
                Claimed::Free => match self.submissions.create(bucket_key, value()).await {
                    Ok(_) => true,
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => false,
                    Err(e) => return Err(ApiError::unavailable("the submissions bucket", e)),
                },
                Claimed::Abandoned(revision) => {
                    match self.submissions.update(bucket_key, value(), revision).await {
                        Ok(_) => true,
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
                        Err(e) => return Err(ApiError::unavailable("the submissions bucket", e)),
                    }
                }
            };
            if won {
                return Ok(None);
            }
        }
        Err(in_progress(key))
    }

    /// What `key` names now.
    async fn claimed(&self, key: &SubmissionKey, owner: &str) -> Result<Claimed, ApiError> {
        let entry = self
            .submissions
            .entry(key.bucket_key.as_str())
            .await
            .map_err(|e| ApiError::unavailable("the submissions bucket", e))?
            .filter(|entry| entry.operation == kv::Operation::Put);
        let Some(entry) = entry else {
            return Ok(Claimed::Free);
        };
        let job_id = String::from_utf8_lossy(&entry.value).into_owned();
        let job = match self.job_for(owner, &job_id).await {
            Ok(job) => Some(job),
            Err(ApiError::NotFound) => None,
            Err(err) => return Err(err),
        };
        if let Some(job) = job {
            if self.whole(&job).await? {
                return Ok(Claimed::Job(Box::new(job)));
            }
            return Ok(Claimed::InProgress);
        }
        let age = OffsetDateTime::now_utc() - entry.created;
        Ok(if age > ABANDONED_CLAIM {
            Claimed::Abandoned(entry.revision)
        } else {
            Claimed::InProgress
        })
    }

    /// Whether `job` has all of its upload: a job queued while its upload
    /// arrives may still lose it, and is no answer until it is in.
    async fn whole(&self, job: &Job) -> Result<bool, ApiError> {
        let Some(nuid) = &job.streamed_from else {
            return Ok(true);
        };
        if job.state.is_terminal() {
            return Ok(true);
        }
        // The upload's metadata is written once its last chunk is stored.
        // An unfinished job whose upload has none is still receiving it
        // (its transcoder may already be running), or has just converted it
        // and is about to say so: either way, not an answer yet.
        match self.uploads.info(job.upload_object()).await {
            Ok(info) => Ok(&info.nuid == nuid),
            Err(ReadError::NotFound) => Ok(false),
            Err(err) => Err(ApiError::unavailable("the object store", err)),
        }
    }

    /// Frees `key` again, once the job it was claimed for is gone.
    pub(super) async fn release(&self, key: &SubmissionKey) {
        if let Err(err) = self.submissions.purge(key.bucket_key.as_str()).await {
            tracing::warn!(error = %err, "cannot release a submission key");
        }
    }
}

fn in_progress(key: &SubmissionKey) -> ApiError {
    ApiError::Conflict(
        "submission_in_progress",
        format!(
            "a request with this {} is still being handled; ask again shortly",
            key.source.header()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_owner_and_transport_and_valid_bucket_keys() {
        let key = |source, owner| {
            SubmissionKey::parse(source, owner, "any-id:with/dots.and*stars")
                .expect("a valid key")
                .bucket_key
        };
        // The form NATS keys have always had, so those in the bucket stay good.
        assert_eq!(
            key(Source::Nats, "user-1"),
            "27cee619daa6ef638a478f9322e1b1e5d1e03df193bdbde3c542fe0e3e41d332"
        );
        let nats = key(Source::Nats, "user-1");
        assert_eq!(nats.len(), 64);
        assert!(nats.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(nats, key(Source::Nats, "user-1"));
        assert_ne!(nats, key(Source::Nats, "user-2"));
        assert_ne!(nats, key(Source::Http, "user-1"));
    }

    #[test]
    fn empty_long_or_invisible_keys_are_refused() {
        for bad in [
            String::new(),
            "k".repeat(MAX_KEY + 1),
            "ключ".into(),
            "a\tkey".into(),
        ] {
            assert!(
                SubmissionKey::parse(Source::Http, "u", &bad).is_err(),
                "{bad}"
            );
        }
        assert!(SubmissionKey::parse(Source::Http, "u", &"k".repeat(MAX_KEY)).is_ok());
        assert!(SubmissionKey::parse(Source::Http, "u", "\"a quoted key\"").is_ok());
        // NATS message ids were only ever bounded in length.
        assert!(SubmissionKey::parse(Source::Nats, "u", "any id: with spaces").is_ok());
        assert!(SubmissionKey::parse(Source::Nats, "u", &"k".repeat(MAX_KEY + 1)).is_err());
    }
}
