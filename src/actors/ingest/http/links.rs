//! Signed links, which need no token. Downloads:
//! `/d/<job>/<output>[/<track>]?exp=…&sig=…` serves the audio (byte ranges
//! too, so players seek) as long as the signature matches the job's
//! current link generation and the link has not expired; their owner can
//! revoke them. And the unsubscribe link of every email, `/u/<user>?sig=…`:
//! a page with one button, and the one-click `POST` of RFC 8058 that mail
//! clients send.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kv::UpdateErrorKind;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Caller;
use super::download::{send_audio, small_number};
use super::waveform::send_object;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::token::links::Link;
use crate::token::unix_now;
use crate::wire::{self, Job, Notify};
use async_nats::jetstream::kv;

/// A link's query: when it expires and its signature.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Signed {
    /// Seconds since the Unix epoch.
    #[param(maximum = 99_999_999_999_u64)]
    exp: Option<u64>,
    /// The link's signature (base64url).
    #[param(max_length = 43)]
    sig: Option<String>,
}

#[utoipa::path(get, path = "/d/{id}/{n}", tag = "links",
    summary = "An output's audio through a signed link",
    description = "The address of a completed job's `share_url` (and of each output's and \
        track's): no token needed, byte ranges served.",
    params(
        ("id" = String, Path, description = "The job id"),
        ("n" = String, Path, description = "The output's number, from 0"),
        Signed,
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=a-b`"),
    ),
    security(()),
    responses(
        (status = 200, description = "The whole file", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"), ("application/zip"))),
        (status = 206, description = "The range asked for", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"), ("application/zip"))),
        (status = 400, description = "A query that is no link's", body = ErrorAnswer),
        (status = 403, description = "The signature does not match (altered, or revoked)", body = ErrorAnswer),
        (status = 404, description = "No such job or output", body = ErrorAnswer),
        (status = 410, description = "The link expired, or the audio was removed", body = ErrorAnswer),
        (status = 416, description = "The range starts past the end", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn linked_output(
    State(ingest): State<Arc<Ingest>>,
    Path((id, n)): Path<(String, String)>,
    signed: Result<Query<Signed>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let n = small_number(&n).ok_or(ApiError::NoSuchOutput)?;
    let Query(signed) = signed?;
    linked(&ingest, &id, n, None, signed, &headers).await
}

#[utoipa::path(get, path = "/d/{id}/{n}/{k}", tag = "links",
    summary = "One track of a split output through a signed link",
    params(
        ("id" = String, Path, description = "The job id"),
        ("n" = String, Path, description = "The output's number, from 0"),
        ("k" = String, Path, description = "The track's number, from 0"),
        Signed,
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=a-b`"),
    ),
    security(()),
    responses(
        (status = 200, description = "The whole track", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 206, description = "The range asked for", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 400, description = "A query that is no link's", body = ErrorAnswer),
        (status = 403, description = "The signature does not match (altered, or revoked)", body = ErrorAnswer),
        (status = 404, description = "No such job, output or track", body = ErrorAnswer),
        (status = 410, description = "The link expired, or the audio was removed", body = ErrorAnswer),
        (status = 416, description = "The range starts past the end", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn linked_track(
    State(ingest): State<Arc<Ingest>>,
    Path((id, n, k)): Path<(String, String, String)>,
    signed: Result<Query<Signed>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let n = small_number(&n).ok_or(ApiError::NoSuchOutput)?;
    let k = small_number(&k).ok_or(ApiError::NoSuchOutput)?;
    let Query(signed) = signed?;
    linked(&ingest, &id, n, Some(k), signed, &headers).await
}

#[utoipa::path(get, path = "/d/{id}/cover.jpg", tag = "links",
    summary = "A job's cover picture through a signed link",
    description = "The address of a completed job's `cover_url`, as podcast feeds name it: \
        the first output's cover picture, a JPEG.",
    params(
        ("id" = String, Path, description = "The job id"),
        Signed,
    ),
    security(()),
    responses(
        (status = 200, description = "The picture", content_type = "image/jpeg", body = Vec<u8>),
        (status = 400, description = "A query that is no link's", body = ErrorAnswer),
        (status = 403, description = "The signature does not match (altered, or revoked)", body = ErrorAnswer),
        (status = 404, description = "No such job, or it has no cover", body = ErrorAnswer),
        (status = 410, description = "The link expired, or the picture was removed", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn linked_cover(
    State(ingest): State<Arc<Ingest>>,
    Path(id): Path<String>,
    signed: Result<Query<Signed>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(signed) = signed?;
    let (expires, signature) = signed.parts()?;
    let job = ingest.job(&id).await?.ok_or(ApiError::NotFound)?;
    let key = ingest.links.key();
    if !key.verify_cover(job.id.as_str(), expires, job.link_generation, &signature)
        || ingest.verifier.disabled().is_disabled(&job.owner)
    {
        return Err(ApiError::InvalidLink);
    }
    if unix_now() > expires {
        return Err(ApiError::LinkExpired);
    }
    if job.artwork_bytes.is_none() {
        return Err(ApiError::NotFound);
    }
    let object = wire::artwork_object(job.id.as_str());
    send_object(&ingest, &object, "cover picture", "image/jpeg").await
}

impl Signed {
    /// The expiry and signature, which a link must carry.
    fn parts(self) -> Result<(u64, String), ApiError> {
        match (self.exp, self.sig) {
            (Some(expires), Some(signature)) => Ok((expires, signature)),
            _ => Err(ApiError::BadRequest(
                "bad_query",
                "a link carries `exp` and `sig`".into(),
            )),
        }
    }
}

/// Serves what a link names once its signature and expiry hold. The
/// signature is checked first, so an unsigned guess learns nothing of the
/// job, not even whether it exists beyond the one lookup.
async fn linked(
    ingest: &Ingest,
    id: &str,
    output: usize,
    track: Option<usize>,
    signed: Signed,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (expires, signature) = signed.parts()?;
    let job = ingest.job(id).await?.ok_or(ApiError::NotFound)?;
    let link = Link {
        job: job.id.to_string(),
        output,
        track,
        expires,
    };
    // A disabled owner's links open nothing either.
    if !ingest
        .links
        .key()
        .verify(&link, job.link_generation, &signature)
        || ingest.verifier.disabled().is_disabled(&job.owner)
    {
        return Err(ApiError::InvalidLink);
    }
    if unix_now() > expires {
        return Err(ApiError::LinkExpired);
    }
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    send_audio(ingest, &job, output, track, range).await
}

#[utoipa::path(delete, path = "/v1/jobs/{id}/links", tag = "links",
    summary = "Revoke the job's download links",
    description = "Every signed link to the job made so far (its `share_url`, the links in its \
        email) stops working at once; the job's view then carries new ones.",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn revoke_links(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = ingest.job_for(&caller.sub, &id).await?;
    ingest.revoke_links(&job).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The query of an unsubscribe link.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Unsubscribe {
    /// The link's signature (base64url).
    #[param(max_length = 43)]
    sig: Option<String>,
}

/// The user an unsubscribe link names, once its signature holds.
fn unsubscriber(ingest: &Ingest, user: &str, query: Unsubscribe) -> Result<(), ApiError> {
    let signed = query
        .sig
        .is_some_and(|sig| ingest.links.key().verify_unsubscribe(user, &sig));
    match signed {
        true => Ok(()),
        false => Err(ApiError::InvalidLink),
    }
}

/// A small page of the unsubscribe link's, in the web page's style.
fn unsubscribe_html(body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mediajet</title><link rel=\"stylesheet\" href=\"/app.css\"></head>\
         <body><main>{body}</main></body></html>"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

#[utoipa::path(get, path = "/u/{user}", tag = "links",
    summary = "The page of an email's unsubscribe link",
    description = "A page with one button that turns the user's notification emails off; \
        visiting it changes nothing.",
    params(("user" = String, Path, description = "The user's id"), Unsubscribe),
    security(()),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 400, description = "A query that is no link's", body = ErrorAnswer),
        (status = 403, description = "The signature does not match", body = ErrorAnswer),
    ))]
pub(super) async fn unsubscribe_page(
    State(ingest): State<Arc<Ingest>>,
    Path(user): Path<String>,
    query: Result<Query<Unsubscribe>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let sig = query.sig.clone().unwrap_or_default();
    unsubscriber(&ingest, &user, query)?;
    Ok(unsubscribe_html(&format!(
        "<h2>Notification emails</h2><form method=\"post\" action=\"/u/{user}?sig={sig}\">\
         <p>Stop the emails mediajet sends when your conversions end?</p>\
         <button type=\"submit\">Turn them off</button></form>"
    )))
}

#[utoipa::path(post, path = "/u/{user}", tag = "links",
    summary = "Turn a user's notification emails off (one click)",
    description = "What a mail client sends for `List-Unsubscribe-Post: \
        List-Unsubscribe=One-Click` (RFC 8058), and the page's button. The user can turn \
        them on again in their account.",
    params(("user" = String, Path, description = "The user's id"), Unsubscribe),
    security(()),
    responses(
        (status = 200, description = "Turned off", content_type = "text/html"),
        (status = 400, description = "A query that is no link's", body = ErrorAnswer),
        (status = 403, description = "The signature does not match", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn unsubscribe(
    State(ingest): State<Arc<Ingest>>,
    Path(user): Path<String>,
    query: Result<Query<Unsubscribe>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    unsubscriber(&ingest, &user, query)?;
    ingest.set_notify(&user, Notify::None).await?;
    Ok(unsubscribe_html(
        "<h2>Notification emails are off</h2>\
         <p>Turn them on again in your account on mediajet.</p>",
    ))
}

impl Ingest {
    /// Raises the job's link generation with a compare-and-set over its
    /// live state, so a transcoder's write at the same moment is kept.
    async fn revoke_links(&self, job: &Job) -> Result<(), ApiError> {
        let unavailable = |e: crate::error::BoxError| ApiError::unavailable("the jobs bucket", e);
        let key = job.id.as_str();
        for _ in 0..5 {
            let entry = self
                .jobs
                .entry(key)
                .await
                .map_err(|e| unavailable(e.into()))?
                .filter(|entry| entry.operation == kv::Operation::Put)
                .ok_or(ApiError::NotFound)?;
            let mut job: Job = wire::decode(&entry.value).map_err(ApiError::internal)?;
            job.link_generation = job.link_generation.saturating_add(1);
            match self
                .jobs
                .update(key, wire::encode(&job), entry.revision)
                .await
            {
                Ok(revision) => {
                    self.finished.written(revision, &job);
                    return Ok(());
                }
                Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => continue,
                Err(err) => return Err(unavailable(err.into())),
            }
        }
        Err(ApiError::unavailable(
            "the jobs bucket",
            "the job kept changing",
        ))
    }
}
