//! A completed job's waveform: the peaks as JSON (the audiowaveform format
//! the `waveform-data` npm package reads) and the picture as a PNG, both
//! of the job's first output.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::Caller;
use super::download::completed;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::storage::objects;
use crate::wire::waveform_objects;

#[utoipa::path(get, path = "/v1/jobs/{id}/waveform.json", tag = "jobs",
    summary = "The peaks of a completed job's audio",
    description = "JSON in the format of audiowaveform (version 2, one channel, 8 bits): \
        about a thousand min/max pairs, which the `waveform-data` npm package reads.",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The peaks", content_type = "application/json", body = serde_json::Value),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's, or it has no waveform", body = ErrorAnswer),
        (status = 409, description = "Not completed (yet)", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn waveform_peaks(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    serve(&ingest, &caller.sub, &id, 0, "application/json").await
}

#[utoipa::path(get, path = "/v1/jobs/{id}/waveform.png", tag = "jobs",
    summary = "A picture of a completed job's waveform",
    description = "A PNG of 1800 × 280 pixels, made by ffmpeg's `showwavespic`.",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The picture", content_type = "image/png", body = Vec<u8>),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's, or it has no waveform", body = ErrorAnswer),
        (status = 409, description = "Not completed (yet)", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn waveform_picture(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    serve(&ingest, &caller.sub, &id, 1, "image/png").await
}

/// Streams one of the job's waveform objects (0 the peaks, 1 the picture).
async fn serve(
    ingest: &Ingest,
    owner: &str,
    job_id: &str,
    which: usize,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    let job = ingest.job_for(owner, job_id).await?;
    completed(&job)?;
    if job.waveform.is_none() {
        return Err(ApiError::NoWaveform);
    }
    let object = waveform_objects(job.id.as_str())
        .into_iter()
        .nth(which)
        .ok_or(ApiError::NoWaveform)?;
    send_object(ingest, &object, "waveform", content_type).await
}

/// Streams `object` of the outputs bucket as `content_type`; `what` it is
/// names it in the answer when it is gone.
pub(super) async fn send_object(
    ingest: &Ingest,
    object: &str,
    what: &str,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    let (info, chunks) = match ingest.outputs.read(object).await {
        Ok(object) => object,
        Err(objects::ReadError::NotFound) => {
            return Err(ApiError::Gone(format!(
                "the {what} of this job has been removed: outputs are kept for a limited time"
            )));
        }
        Err(err) => return Err(ApiError::unavailable("the object store", err)),
    };
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size as u64));
    Ok(response)
}
