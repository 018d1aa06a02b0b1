//! Jobs: submit (an upload), list, show, follow as Server-Sent Events,
//! cancel or delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::import::{MAX_IMPORT_BODY, accept_json};
use super::upload::{Accepted, accept_upload};
use super::{Caller, Trace};
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::idempotency::{Source, SubmissionKey};
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::actors::ingest::view::JobView;
use crate::actors::ingest::{Ingest, follow};
use crate::domain::JobId;
use crate::wire::{Job, JobState};

#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    summary = "Upload a video, or name one to import, and queue its conversion",
    description = "A multipart form uploads the video (`file`), or names a URL to import \
        (`source_url`); a JSON body names a URL to import. An import is fetched into the \
        service after the job is made (`input_bytes` is 0 until then); one that fails, fails \
        the job with the reason.",
    request_body(content(
        (crate::actors::ingest::openapi::JobForm = "multipart/form-data"),
        (crate::actors::ingest::openapi::ImportRequest = "application/json"),
    )),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Up to 256 printable ASCII characters. The same key from the same user within 24 hours gets the job the first request made, not a second one")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The job, queued", body = JobView),
        (status = 200, description = "The job an earlier request with the same `Idempotency-Key` made; this upload was not kept", body = JobView,
            headers(("Idempotent-Replayed" = String, description = "`true`"))),
        (status = 400, description = "No file or URL, an empty file, a URL that cannot be imported (`invalid_source_url`), options the format cannot take, or a malformed `Idempotency-Key`", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 408, description = "The upload was slower than the slowest rate accepted", body = ErrorAnswer),
        (status = 409, description = "A request with the same `Idempotency-Key` is still being handled", body = ErrorAnswer),
        (status = 413, description = "Larger than the upload limit (`too_large`), or past the caller's storage quota (`quota_exceeded`)", body = ErrorAnswer),
        (status = 429, description = "Too many unfinished jobs; see Retry-After", body = ErrorAnswer),
        (status = 503, description = "NATS or SurrealDB is unavailable; nothing was kept", body = ErrorAnswer),
    ))]
pub(super) async fn create_job(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Trace(trace): Trace,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let key = headers
        .get("idempotency-key")
        .map(|value| {
            let text = value.to_str().unwrap_or_default();
            SubmissionKey::parse(Source::Http, &caller.sub, text)
        })
        .transpose()?;
    // A repeat of a request that made its job is answered before its upload
    // is read (or counted against the caller's limits), and the connection
    // closed, since it cannot carry another request with that body unread.
    if let Some(key) = &key
        && let Some(job) = ingest.replay(key, &caller.sub).await?
    {
        let mut response = replayed(&ingest, job).await;
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let accepted = if json {
        let body = axum::body::to_bytes(request.into_body(), MAX_IMPORT_BODY)
            .await
            .map_err(|_| {
                ApiError::TooLarge(format!(
                    "a JSON body may be at most {MAX_IMPORT_BODY} bytes"
                ))
            })?;
        accept_json(&ingest, &caller, &trace, &body, key.as_ref()).await?
    } else {
        let multipart = Multipart::from_request(request, &()).await?;
        accept_upload(&ingest, &caller, &trace, &headers, multipart, key.as_ref()).await?
    };
    Ok(match accepted {
        Accepted::New(job) => (
            StatusCode::ACCEPTED,
            Json(JobView::new(job, None, &ingest.links)),
        )
            .into_response(),
        Accepted::Earlier(job) => replayed(&ingest, job).await,
    })
}

/// The answer to a repeated submission: the job its first request made.
async fn replayed(ingest: &Ingest, job: Job) -> Response {
    let headers = [("idempotent-replayed", "true")];
    (StatusCode::OK, headers, Json(ingest.view(job).await)).into_response()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Only jobs older than this job id (the cursor of the previous page).
    #[param(value_type = Option<uuid::Uuid>)]
    before: Option<String>,
}

/// The caller's jobs, newest first, a page at a time: a full page carries a
/// `Link` header to the next one.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    summary = "The caller's jobs, newest first",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of jobs", body = Vec<JobView>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when there may be more"))),
        (status = 400, description = "A bad query", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 503, description = "SurrealDB is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn list_jobs(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "bad_query",
            "`limit` must be 1 to 500".into(),
        ));
    }
    let before =
        match query.before.as_deref() {
            None => None,
            Some(before) => Some(JobId::parse(before).map(|id| id.to_string()).ok_or_else(
                || ApiError::BadRequest("bad_query", "`before` must be a job id".into()),
            )?),
        };
    let (jobs, next) = ingest
        .jobs_for(&caller.sub, query.state, before.as_deref(), limit)
        .await?;
    let taken = if jobs.iter().any(|job| job.state == JobState::Queued) {
        ingest.work_taken().await
    } else {
        None
    };
    let views: Vec<JobView> = jobs
        .into_iter()
        .map(|job| JobView::new(job, taken, &ingest.links))
        .collect();
    let mut response = Json(views).into_response();
    if let Some(next) = next {
        let state = query
            .state
            .map(|s| format!("&state={}", s.as_str()))
            .unwrap_or_default();
        let link = format!("</v1/jobs?limit={limit}{state}&before={next}>; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    summary = "One job, with its live progress",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn get_job(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = ingest.job_for(&caller.sub, &id).await?;
    Ok(Json(ingest.view(job).await))
}

/// Server-Sent Events of the caller's job: an event `state` whenever its
/// state changes and `progress` for progress and queue moves, each carrying
/// the whole job as JSON, until the job ends (or `deleted`).
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    summary = "Live job events (Server-Sent Events)",
    description = "Event `state` at every state change and `progress` for progress and queue \
        moves; each event's data is the job as JSON. The stream ends after the terminal state \
        (or with `deleted`).",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content(("text/event-stream"))),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's", body = ErrorAnswer),
        (status = 429, description = "Too many event streams open; see Retry-After", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn job_events(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let job = ingest.job_for(&caller.sub, &id).await?;
    let events = follow::job_events(ingest, job, &caller).await?;
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Cancels a queued or running job (202 with the job, now `canceled`), or
/// deletes a finished one and its audio (204).
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    summary = "Cancel an unfinished job, or delete a finished one with its audio",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The job, now canceled", body = JobView),
        (status = 204, description = "The finished job and its audio are gone"),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's", body = ErrorAnswer),
        (status = 409, description = "The job ended before it could be canceled", body = ErrorAnswer),
        (status = 503, description = "NATS or SurrealDB is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn cancel_or_delete_job(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Trace(trace): Trace,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(
        match ingest.cancel_or_delete(&caller.sub, &id, &trace).await? {
            Some(job) => (
                StatusCode::ACCEPTED,
                Json(JobView::new(job, None, &ingest.links)),
            )
                .into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}
