//! Resumable uploads (tus 1.0.0) at `/v1/uploads`: what the server
//! supports (`OPTIONS`), creation with or without a first part (`POST`),
//! the offset to resume from (`HEAD`), a part (`PATCH`), termination
//! (`DELETE`). Every answer carries `Tus-Resumable`; a whole upload names
//! its job in `Mediajet-Job-Id` and a `Link`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tracing::Instrument;

use super::{Caller, Trace};
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::actors::ingest::tus::record::{Stored, UploadId, UploadRecord};
use crate::actors::ingest::tus::write::{CHECKSUM_ALGORITHMS, Checksum};
use crate::actors::ingest::tus::{EXTENSIONS, PART_TYPE, VERSION, metadata};
use crate::domain::JobId;
use crate::storage::objects::Bucket;
use crate::token::Claims;
use crate::trace_context::TraceContext;
use crate::wire;

/// Adds `Tus-Resumable` to every answer of the tus routes, errors too.
pub(super) async fn resumable(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(VERSION));
    response
}

/// Refuses a request in another protocol version than the one spoken.
fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("tus-resumable").map(HeaderValue::as_bytes) {
        Some(version) if version == VERSION.as_bytes() => Ok(()),
        _ => Err(ApiError::TusVersion),
    }
}

/// A header holding a whole number of bytes.
fn byte_count(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                // The largest byte count HTTP clients and the document agree on.
                .filter(|count| i64::try_from(*count).is_ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "bad_header",
                        format!("`{name}` must be a whole number of bytes"),
                    )
                })
        })
        .transpose()
}

/// The part's `Upload-Checksum`, if it has one.
fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, ApiError> {
    headers
        .get("upload-checksum")
        .map(|value| Checksum::parse(value.to_str().unwrap_or_default()))
        .transpose()
}

fn no_such_upload() -> ApiError {
    ApiError::NoSuchUpload("no such upload".into())
}

/// The caller's upload `id`, or 404 (another user's uploads are not there
/// to be found); an expired one is removed and answered 410.
async fn upload_for(ingest: &Ingest, caller: &Claims, id: &str) -> Result<Stored, ApiError> {
    let id = UploadId::parse(id).ok_or_else(no_such_upload)?;
    let stored = ingest
        .tus
        .records
        .get(&caller.sub, &id)
        .await?
        .ok_or_else(no_such_upload)?;
    if stored.record.expired() {
        ingest.end_upload(&stored.record).await?;
        return Err(ApiError::UploadExpired);
    }
    Ok(stored)
}

/// The headers every answer about an upload carries: where it stands, when
/// it expires, and once it is whole, its job.
fn progress_headers(record: &UploadRecord) -> Vec<(HeaderName, String)> {
    let mut headers = vec![
        (
            HeaderName::from_static("upload-offset"),
            record.offset.to_string(),
        ),
        (
            HeaderName::from_static("upload-length"),
            record.length.to_string(),
        ),
    ];
    // An HTTP date (RFC 9110), as tus asks for.
    let date = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let utc = record.expires_at.to_offset(time::UtcOffset::UTC);
    if let Ok(expires) = utc.format(&date) {
        headers.push((HeaderName::from_static("upload-expires"), expires));
    }
    if record.done {
        headers.extend(job_headers(&record.job_id));
    }
    headers
}

fn job_headers(job: &JobId) -> [(HeaderName, String); 2] {
    [
        (HeaderName::from_static("mediajet-job-id"), job.to_string()),
        (header::LINK, format!("</v1/jobs/{job}>; rel=\"job\"")),
    ]
}

fn answer(status: StatusCode, headers: Vec<(HeaderName, String)>) -> Response {
    let mut response = status.into_response();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(options, path = "/v1/uploads", tag = "uploads",
    summary = "What the resumable upload endpoint supports (tus 1.0.0)",
    responses((status = 204, description = "The protocol's capabilities",
        headers(
            ("Tus-Version" = String, description = "`1.0.0`"),
            ("Tus-Extension" = String, description = "The extensions supported"),
            ("Tus-Max-Size" = u64, description = "The largest upload accepted, in bytes"),
            ("Tus-Checksum-Algorithm" = String, description = "`sha1,sha256`"),
        ))))]
pub(super) async fn upload_options(State(ingest): State<Arc<Ingest>>) -> Response {
    capabilities(&ingest)
}

#[utoipa::path(options, path = "/v1/uploads/{id}", tag = "uploads",
    summary = "What the resumable upload endpoint supports (tus 1.0.0)",
    params(("id" = String, Path, description = "The upload's id")),
    responses((status = 204, description = "The protocol's capabilities")))]
pub(super) async fn upload_item_options(State(ingest): State<Arc<Ingest>>) -> Response {
    capabilities(&ingest)
}

fn capabilities(ingest: &Ingest) -> Response {
    answer(
        StatusCode::NO_CONTENT,
        vec![
            (HeaderName::from_static("tus-version"), VERSION.into()),
            (HeaderName::from_static("tus-extension"), EXTENSIONS.into()),
            (
                HeaderName::from_static("tus-max-size"),
                ingest.max_upload_bytes.to_string(),
            ),
            (
                HeaderName::from_static("tus-checksum-algorithm"),
                CHECKSUM_ALGORITHMS.into(),
            ),
        ],
    )
}

#[utoipa::path(post, path = "/v1/uploads", tag = "uploads",
    summary = "Create a resumable upload (tus creation), optionally with its first part",
    description = "Every request but `OPTIONS` must carry `Tus-Resumable: 1.0.0` (else 412); every answer does.",
    params(
        ("Upload-Length" = u64, Header, description = "The whole upload's size in bytes"),
        ("Upload-Metadata" = Option<String>, Header,
            description = "Comma-separated `key base64(value)` pairs: `filename`, and the job options `preset`, `format`, `bitrate`, `sample_rate`, `channels`, `loudness`, `start`, `end`, `vbr`, the tags, `cover` (`frame`), `cover_at`, `split` and `outputs` (a JSON list, at most 2048 bytes)"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream",
        description = "Optionally, the upload's first bytes (creation-with-upload)"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; resume at `Location`",
            headers(("Location" = String, description = "The upload's URL"),
                ("Upload-Offset" = u64, description = "Bytes stored so far"),
                ("Upload-Expires" = String, description = "When an upload no byte comes for expires"))),
        (status = 400, description = "No or a bad `Upload-Length`, bad metadata or options", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 412, description = "Another tus version", body = ErrorAnswer),
        (status = 413, description = "Larger than the upload limit or past the caller's quota", body = ErrorAnswer),
        (status = 429, description = "Too many unfinished jobs and uploads", body = ErrorAnswer),
        (status = 503, description = "NATS or SurrealDB is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn create_upload(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Trace(trace): Trace,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::BadRequest(
            "bad_header",
            "uploads of unknown length are not supported: send `Upload-Length`".into(),
        ));
    }
    let length = byte_count(&headers, "upload-length")?
        .ok_or_else(|| ApiError::BadRequest("bad_header", "`Upload-Length` is required".into()))?;
    if length == 0 {
        return Err(crate::actors::ingest::submission::empty_file());
    }
    if length > ingest.max_upload_bytes {
        return Err(ingest.too_large());
    }
    let metadata = headers
        .get("upload-metadata")
        .map(|value| value.to_str().map_err(|_| metadata::not_text()))
        .transpose()?;
    let pairs = metadata::pairs(metadata)?;
    let base = match metadata::preset(&pairs)? {
        Some(name) => ingest.preset(&caller.sub, &name).await?,
        None => (crate::wire::Format::Mp3, Default::default()),
    };
    let asked = metadata::parse(&pairs, base)?;
    if let Some(url) = &asked.asked.notify_url {
        ingest.check_notify_url(&caller.sub, url).await?;
    }
    let first_part = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == PART_TYPE.as_bytes());
    let checksum = checksum(&headers)?;
    let stored = {
        // Counted with the caller's other uploads against their caps.
        let (_uploading, quota) = ingest.start_upload(&caller.sub).await?;
        if quota < length {
            return Err(ApiError::QuotaExceeded(ingest.max_user_bytes));
        }
        let now = OffsetDateTime::now_utc();
        let record = UploadRecord {
            v: wire::VERSION,
            id: UploadId::new()?,
            owner: caller.sub.clone(),
            job_id: JobId::new(),
            length,
            offset: 0,
            nuid: Bucket::new_parts_id().map_err(ApiError::internal)?,
            chunks: 0,
            last_sequence: 0,
            filename: asked.filename,
            format: asked.asked.format,
            options: asked.asked.options,
            more_outputs: asked.asked.more,
            notify_url: asked.asked.notify_url,
            created_at: now,
            expires_at: now + ingest.tus.expiry,
            done: false,
        };
        let revision = ingest.tus.records.create(&record).await?;
        Stored { record, revision }
    };
    let location = format!("/v1/uploads/{}", stored.record.id.as_str());
    let mut answered = progress_headers(&stored.record);
    if first_part {
        // A first part that breaks off leaves an upload to resume.
        match write(ingest.clone(), caller, trace, stored, 0, body, checksum).await {
            Ok(record) => answered = progress_headers(&record),
            Err(err) => tracing::info!(error = %err, "the first part broke off"),
        }
    }
    answered.push((header::LOCATION, location));
    Ok(answer(StatusCode::CREATED, answered))
}

#[utoipa::path(head, path = "/v1/uploads/{id}", tag = "uploads",
    summary = "Where a resumable upload stands: the offset to resume from",
    params(("id" = String, Path, description = "The upload's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upload",
            headers(("Upload-Offset" = u64, description = "Bytes stored"),
                ("Upload-Length" = u64, description = "The whole upload's size"),
                ("Mediajet-Job-Id" = String, description = "Its job, once the upload is whole"))),
        (status = 401, description = "No valid token"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 410, description = "The upload expired"),
        (status = 412, description = "Another tus version"),
    ))]
pub(super) async fn upload_offset(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Trace(trace): Trace,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let stored = upload_for(&ingest, &caller, &id).await?;
    let mut record = stored.record;
    // A whole upload whose job was not made (its process died in between)
    // is made one now, so that the answer can name the job.
    if record.whole() && !record.done {
        ingest.finish_upload(&caller, &record, &trace).await?;
        record.done = true;
    }
    Ok(answer(StatusCode::OK, progress_headers(&record)))
}

#[utoipa::path(patch, path = "/v1/uploads/{id}", tag = "uploads",
    summary = "Send a part of a resumable upload, from its offset",
    params(("id" = String, Path, description = "The upload's id"),
        ("Upload-Offset" = u64, Header, description = "Where the part starts: the upload's offset"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 <base64>` or `sha256 <base64>` of the part")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The part is stored",
            headers(("Upload-Offset" = u64, description = "Bytes stored now"),
                ("Mediajet-Job-Id" = String, description = "Its job, once the upload is whole"),
                ("Link" = String, description = "`</v1/jobs/{id}>; rel=\"job\"` once the upload is whole"))),
        (status = 400, description = "A bad header or checksum", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such upload of the caller's", body = ErrorAnswer),
        (status = 408, description = "The part came slower than the slowest rate accepted", body = ErrorAnswer),
        (status = 409, description = "`Upload-Offset` is not the upload's offset, or another request took the upload over", body = ErrorAnswer),
        (status = 410, description = "The upload expired", body = ErrorAnswer),
        (status = 412, description = "Another tus version", body = ErrorAnswer),
        (status = 413, description = "The part goes past the upload's length, or the job would pass the quota", body = ErrorAnswer),
        (status = 415, description = "Not `application/offset+octet-stream`", body = ErrorAnswer),
        (status = 460, description = "The part does not match its checksum; it was discarded", body = ErrorAnswer),
        (status = 503, description = "NATS or SurrealDB is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn write_upload(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Trace(trace): Trace,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    if headers
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes() != PART_TYPE.as_bytes())
    {
        return Err(ApiError::PartType);
    }
    let offset = byte_count(&headers, "upload-offset")?
        .ok_or_else(|| ApiError::BadRequest("bad_header", "`Upload-Offset` is required".into()))?;
    let checksum = checksum(&headers)?;
    let stored = upload_for(&ingest, &caller, &id).await?;
    let record = &stored.record;
    let declared = byte_count(&headers, header::CONTENT_LENGTH.as_str())?;
    if declared.is_some_and(|length| length > record.length.saturating_sub(offset)) {
        return Err(ApiError::TooLarge(format!(
            "the part goes past the upload's length of {} bytes",
            record.length
        )));
    }
    // A final part sent again: the job it made is the answer.
    if record.whole() && offset == record.length {
        let job = ingest.finish_upload(&caller, record, &trace).await?;
        let mut answered = progress_headers(record);
        answered.extend(job_headers(&job));
        return Ok(answer(StatusCode::NO_CONTENT, answered));
    }
    let record = write(ingest, caller, trace, stored, offset, body, checksum).await?;
    Ok(answer(StatusCode::NO_CONTENT, progress_headers(&record)))
}

/// Writes a part and, if it was the last, makes the job, in a task of its
/// own: a client that hangs up mid-part still has what was stored counted
/// (and the job made), which a dropped request would not finish.
async fn write(
    ingest: Arc<Ingest>,
    caller: Claims,
    trace: TraceContext,
    stored: Stored,
    offset: u64,
    body: Body,
    checksum: Option<Checksum>,
) -> Result<UploadRecord, ApiError> {
    let task = async move {
        let mut record = ingest.write_part(stored, offset, body, checksum).await?;
        if record.whole() {
            ingest.finish_upload(&caller, &record, &trace).await?;
            record.done = true;
        }
        Ok(record)
    };
    tokio::spawn(task.instrument(tracing::Span::current()))
        .await
        .map_err(ApiError::internal)?
}

#[utoipa::path(delete, path = "/v1/uploads/{id}", tag = "uploads",
    summary = "Give a resumable upload up (tus termination); its bytes are removed",
    params(("id" = String, Path, description = "The upload's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Gone; an upload that is already a job leaves its job"),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such upload of the caller's", body = ErrorAnswer),
        (status = 410, description = "The upload had expired", body = ErrorAnswer),
        (status = 412, description = "Another tus version", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn terminate_upload(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let stored = upload_for(&ingest, &caller, &id).await?;
    ingest.end_upload(&stored.record).await?;
    Ok(answer(StatusCode::NO_CONTENT, Vec::new()))
}
