//! Ingest's NATS micro service `mediajet-ingest` (`$SRV` discoverable): the
//! same jobs as the HTTP API for scripts that speak NATS, such as the stock
//! `nats` CLI. The video goes into the uploads bucket first (`nats object
//! put`), then `mediajet.jobs.submit` turns it into a job. Every request
//! carries the user's token in an `Authorization` header; ownership, limits
//! and option checks are the HTTP API's.

use std::sync::Arc;

use async_nats::jetstream::kv;
use async_nats::service::Request;
use serde::Serialize;
use tracing::Instrument;

use super::Ingest;
use super::error::ApiError;
use super::submission::{self, clean_filename};
use super::view::JobView;
use crate::actors::micro;
use crate::domain::JobId;
use crate::storage::objects::ReadError;
use crate::telemetry;
use crate::token::Claims;
use crate::trace_context::TraceContext;
use crate::wire::{self, AudioOptions, StatusRequest, SubmitRequest, subject};

/// Longest `Nats-Msg-Id` kept for deduplication.
const MAX_MESSAGE_ID: usize = 256;

/// Longest object name a submission may give.
const MAX_OBJECT_NAME: usize = 512;

/// The answer to both endpoints.
#[derive(Serialize)]
struct JobReply {
    v: u32,
    job: JobView,
    /// True when a submission repeated an earlier `Nats-Msg-Id`: `job` is
    /// the one that request created.
    duplicate: bool,
}

/// Answers one request to `endpoint`, with the job or a micro service error
/// (`Nats-Service-Error-Code` header and a JSON `{"error": …}` body).
pub(super) async fn serve(ingest: Arc<Ingest>, request: Request, endpoint: &'static str) {
    let (span, trace) = micro::request_span(endpoint, &request);
    async move {
        let result = match endpoint {
            subject::SUBMIT_ENDPOINT => submit(&ingest, &request, &trace).await,
            _ => status(&ingest, &request).await,
        };
        let result = result.map(|reply| wire::encode(&reply));
        micro::respond("ingest", request, endpoint, result).await;
    }
    .instrument(span)
    .await
}

impl micro::ServiceError for ApiError {
    fn status_and_code(&self) -> (u16, &str) {
        let (status, code) = ApiError::status_and_code(self);
        (status.as_u16(), code)
    }

    fn log(&self, endpoint: &str) {
        if let Some(log) = self.to_log() {
            log.emit(endpoint);
        }
    }
}

/// The verified bearer of the request's `Authorization` header.
async fn caller(ingest: &Ingest, request: &Request) -> Result<Claims, ApiError> {
    let token = request
        .message
        .headers
        .as_ref()
        .and_then(|h| h.get("Authorization"))
        .and_then(|v| crate::token::bearer(v.as_str()))
        .ok_or(ApiError::Unauthorized)?;
    Ok(ingest.verifier.verify(token).await?)
}

fn bad_request(err: wire::DecodeError) -> ApiError {
    ApiError::BadRequest("bad_request", err.to_string())
}

async fn status(ingest: &Ingest, request: &Request) -> Result<JobReply, ApiError> {
    let claims = caller(ingest, request).await?;
    let asked: StatusRequest = wire::decode(&request.message.payload).map_err(bad_request)?;
    let job = ingest.job_for(&claims.sub, &asked.job_id).await?;
    reply(ingest, job, false).await
}

async fn reply(ingest: &Ingest, job: wire::Job, duplicate: bool) -> Result<JobReply, ApiError> {
    Ok(JobReply {
        v: wire::VERSION,
        job: ingest.view(job).await,
        duplicate,
    })
}

async fn submit(
    ingest: &Ingest,
    request: &Request,
    trace: &TraceContext,
) -> Result<JobReply, ApiError> {
    let claims = caller(ingest, request).await?;
    let asked: SubmitRequest = wire::decode(&request.message.payload).map_err(bad_request)?;
    let message_id = request
        .message
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|v| v.as_str().to_string());
    let job = checked_job(ingest, &claims, asked).await?;

    // A repeated message id gets the job its first request created. The
    // claim is taken only after the checks, so a corrected request can reuse
    // the id of one that was refused.
    let claim = match message_id {
        Some(id) if id.len() > MAX_MESSAGE_ID => {
            return Err(ApiError::BadRequest(
                "bad_request",
                format!("`Nats-Msg-Id` may be at most {MAX_MESSAGE_ID} bytes long"),
            ));
        }
        Some(id) => {
            let key = submission_key(&claims.sub, &id);
            match ingest
                .submissions
                .create(key.as_str(), job.id.to_string().into())
                .await
            {
                Ok(_) => Some(key),
                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                    return earlier_submission(ingest, &claims, &key).await;
                }
                Err(err) => return Err(ApiError::unavailable("the submissions bucket", err)),
            }
        }
        None => None,
    };
    if let Err(err) = ingest.submit(&job, trace).await {
        if let Some(key) = claim {
            let _ = ingest.submissions.purge(key.as_str()).await;
        }
        return Err(err);
    }
    crate::metrics::job_submitted(job.format.name(), job.input_bytes);
    reply(ingest, job, false).await
}

/// The job an earlier request with the same message id created.
async fn earlier_submission(
    ingest: &Ingest,
    claims: &Claims,
    key: &str,
) -> Result<JobReply, ApiError> {
    let job_id = ingest
        .submissions
        .get(key)
        .await
        .map_err(|e| ApiError::unavailable("the submissions bucket", e))?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    match ingest.job_for(&claims.sub, &job_id).await {
        Ok(job) => reply(ingest, job, true).await,
        Err(ApiError::NotFound) => Err(ApiError::Conflict(
            "submission_in_progress",
            "a request with this Nats-Msg-Id is still being handled; ask again shortly".into(),
        )),
        Err(err) => Err(err),
    }
}

/// Key of a submission in the submissions bucket: owner and message id,
/// hashed so any message id makes a valid key.
fn submission_key(owner: &str, message_id: &str) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(owner.as_bytes());
    context.update(b"\n");
    context.update(message_id.as_bytes());
    crate::hex::encode(context.finish().as_ref())
}

/// A new job for the request, once its object belongs to the caller, exists
/// within the upload limit and its options fit its format.
async fn checked_job(
    ingest: &Ingest,
    claims: &Claims,
    asked: SubmitRequest,
) -> Result<wire::Job, ApiError> {
    let uploading = ingest.uploading.of(&claims.sub);
    ingest.check_unfinished(&claims.sub, uploading + 1).await?;
    // The name becomes part of a subject: bounded before it is looked up.
    if asked.object.len() > MAX_OBJECT_NAME || asked.object.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "bad_object_name",
            format!("object names are at most {MAX_OBJECT_NAME} bytes, without control characters"),
        ));
    }
    let prefix = format!("{}/", claims.email);
    let name = asked
        .object
        .strip_prefix(&prefix)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            ApiError::Forbidden(format!(
                "uploads submitted over NATS must be named `{prefix}<file name>`"
            ))
        })?;
    let format = submission::format_named(asked.format.as_deref())?;
    let options = AudioOptions {
        bitrate: asked.bitrate,
        sample_rate: asked.sample_rate,
    };
    submission::check_options(format, options)?;
    let info = match ingest.uploads.info(&asked.object).await {
        Ok(info) => info,
        Err(ReadError::NotFound) => {
            return Err(ApiError::NoSuchUpload(format!(
                "there is no object `{}` in the bucket {}",
                asked.object,
                wire::names::UPLOADS_BUCKET
            )));
        }
        Err(err) => return Err(ApiError::unavailable("the object store", err)),
    };
    let size = info.size as u64;
    let quota = ingest.quota_left(&claims.sub).await?;
    ingest.check_size(size, quota)?;
    let filename = clean_filename(Some(asked.filename.as_deref().unwrap_or(name)));
    let job_id = JobId::new();
    telemetry::record_job(&job_id);
    let mut job = submission::new_job(job_id, claims, format, options, filename, size, quota);
    job.upload = Some(asked.object);
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_keys_are_per_owner_and_valid_kv_keys() {
        let key = submission_key("user-1", "any id: with spaces/and.dots*");
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(
            key,
            submission_key("user-2", "any id: with spaces/and.dots*")
        );
        assert_eq!(
            key,
            submission_key("user-1", "any id: with spaces/and.dots*")
        );
    }
}
