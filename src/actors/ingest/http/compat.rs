//! The routes of the service mediajet replaces, answering as it did: a
//! bare token from `/login`, a bare job id from `/upload`, and the audio
//! from `/download?fid=<job id>`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, Multipart, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::download::stream_output;
use super::sessions::credentials;
use super::upload::{Accepted, accept_upload};
use super::{Caller, Trace};
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;

/// Seed-compatible login: Basic credentials in, the bare token out.
#[utoipa::path(post, path = "/login", tag = "compatibility",
    summary = "Login of the service mediajet replaces: the bare token",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The token", body = String),
        (status = 401, description = "Wrong or missing credentials", body = ErrorAnswer),
        (status = 429, description = "Too many failed logins lately; see Retry-After", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn seed_login(
    State(ingest): State<Arc<Ingest>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, ApiError> {
    let creds = credentials(&headers, &body?)?;
    Ok(ingest
        .login(
            &creds.email,
            &creds.password,
            ingest.client_address(peer, &headers),
        )
        .await?
        .access_token)
}

/// Seed-compatible upload: the bare job id out.
#[utoipa::path(post, path = "/upload", tag = "compatibility",
    summary = "Upload of the service mediajet replaces: the bare job id",
    request_body(content = crate::actors::ingest::openapi::JobForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job id", body = String),
        (status = 400, description = "No file, or bad options", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 408, description = "The upload was slower than the slowest rate accepted", body = ErrorAnswer),
        (status = 413, description = "Larger than the upload limit (`too_large`), or past the caller's storage quota (`quota_exceeded`)", body = ErrorAnswer),
        (status = 429, description = "Too many unfinished jobs; see Retry-After", body = ErrorAnswer),
        (status = 503, description = "NATS or SurrealDB is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn seed_upload(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Trace(trace): Trace,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<String, ApiError> {
    match accept_upload(&ingest, &caller, &trace, &headers, multipart?, None).await? {
        Accepted::New(job) | Accepted::Earlier(job) => Ok(job.id.into()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct FidQuery {
    /// The job id. Required; a request without it gets a 400 that says so.
    #[param(required = true, value_type = uuid::Uuid)]
    fid: Option<String>,
}

/// Seed-compatible download by `?fid=<job id>`.
#[utoipa::path(get, path = "/download", tag = "compatibility",
    summary = "Download of the service mediajet replaces",
    params(FidQuery, ("Range" = Option<String>, Header, description = "One byte range")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The whole file", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 206, description = "The range asked for", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 400, description = "No `fid`", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's", body = ErrorAnswer),
        (status = 409, description = "Not completed (yet)", body = ErrorAnswer),
        (status = 410, description = "The audio was removed after the retention period", body = ErrorAnswer),
        (status = 416, description = "The range starts past the end", body = ErrorAnswer),
    ))]
pub(super) async fn seed_download(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    query: Result<Query<FidQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let fid = query.fid.ok_or_else(|| {
        ApiError::BadRequest(
            "missing_fid",
            "the query parameter `fid` is required".into(),
        )
    })?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    stream_output(&ingest, &caller, &fid, 0, range).await
}
