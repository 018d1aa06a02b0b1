//! Ingest's NATS micro service `mediajet-ingest` (`$SRV` discoverable): the
//! same jobs as the HTTP API for scripts that speak NATS, such as the stock
//! `nats` CLI. The video goes into the uploads bucket first (`nats object
//! put`), then `mediajet.jobs.submit` turns it into a job. Every request
//! carries the user's token in an `Authorization` header; ownership, limits
//! and option checks are the HTTP API's.

use std::sync::Arc;

use async_nats::service::Request;
use serde::Serialize;
use tracing::Instrument;

use super::Ingest;
use super::callers::Access;
use super::error::ApiError;
use super::idempotency::{Source, SubmissionKey};
use super::submission::{self, clean_filename};
use super::view::JobView;
use crate::actors::micro;
use crate::domain::JobId;
use crate::storage::objects::ReadError;
use crate::telemetry;
use crate::token::Claims;
use crate::trace_context::TraceContext;
use crate::wire::{self, AudioOptions, Scope, StatusRequest, SubmitRequest, subject};

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

/// The verified bearer of the request's `Authorization` header: a token,
/// or an API key with `scope`.
async fn caller(ingest: &Ingest, request: &Request, scope: Scope) -> Result<Claims, ApiError> {
    let authorization = request
        .message
        .headers
        .as_ref()
        .and_then(|h| h.get("Authorization"))
        .map(|v| v.as_str());
    ingest
        .authenticate(authorization, Access::TokenOrKey(scope))
        .await
}

fn bad_request(err: wire::DecodeError) -> ApiError {
    ApiError::BadRequest("bad_request", err.to_string())
}

async fn status(ingest: &Ingest, request: &Request) -> Result<JobReply, ApiError> {
    let claims = caller(ingest, request, Scope::JobsRead).await?;
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
    let claims = caller(ingest, request, Scope::JobsWrite).await?;
    let asked: SubmitRequest = wire::decode(&request.message.payload).map_err(bad_request)?;
    let key = request
        .message
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|id| SubmissionKey::parse(Source::Nats, &claims.sub, id.as_str()))
        .transpose()?;
    let job = checked_job(ingest, &claims, asked).await?;
    // A repeated message id gets the job its first request created.
    if let Some(earlier) = ingest.submit_once(&job, trace, key.as_ref()).await? {
        return reply(ingest, earlier, true).await;
    }
    crate::metrics::job_submitted(job.format.name(), job.input_bytes);
    reply(ingest, job, false).await
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
    // The options are read as a multipart upload's fields would be, over
    // the caller's preset if the request names one.
    let base = match &asked.preset {
        Some(name) => ingest.preset(&claims.sub, name).await?,
        None => (wire::Format::Mp3, AudioOptions::default()),
    };
    let mut fields = serde_json::to_value(&asked).unwrap_or_default();
    let fields = fields.as_object_mut().ok_or_else(|| {
        ApiError::BadRequest("bad_request", "the request is not a JSON object".into())
    })?;
    for envelope in ["v", "object", "filename", "preset"] {
        fields.remove(envelope);
    }
    let asked_for = submission::asked_from_json(fields, base)?;
    if let Some(url) = &asked_for.notify_url {
        ingest.check_notify_url(&claims.sub, url).await?;
    }
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
    let mut job = submission::new_job(job_id, claims, asked_for, filename, size, quota);
    job.upload = Some(asked.object);
    Ok(job)
}
