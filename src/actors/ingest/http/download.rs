//! Downloads: a finished job's audio (any of its outputs), streamed from
//! the object store whole or as one byte range.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Caller;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::storage::objects;
use crate::token::Claims;
use crate::wire::{Job, JobState};

#[utoipa::path(get, path = "/v1/jobs/{id}/output", tag = "jobs",
    summary = "The audio of a completed job (its first output)",
    params(
        ("id" = String, Path, description = "The job id"),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=a-b`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The whole file", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 206, description = "The range asked for", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's", body = ErrorAnswer),
        (status = 409, description = "Not completed (yet)", body = ErrorAnswer),
        (status = 410, description = "The audio was removed after the retention period", body = ErrorAnswer),
        (status = 416, description = "The range starts past the end", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn download(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    stream_output(&ingest, &caller, &id, 0, range).await
}

#[utoipa::path(get, path = "/v1/jobs/{id}/outputs/{n}", tag = "jobs",
    summary = "One output's audio of a completed job",
    description = "Outputs count from 0 in the order the job's `outputs` listed them; a job \
        without `outputs` has the one output 0.",
    params(
        ("id" = String, Path, description = "The job id"),
        ("n" = String, Path, description = "The output's number, from 0"),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=a-b`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The whole file", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 206, description = "The range asked for", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's, or no such output", body = ErrorAnswer),
        (status = 409, description = "Not completed (yet)", body = ErrorAnswer),
        (status = 410, description = "The audio was removed after the retention period", body = ErrorAnswer),
        (status = 416, description = "The range starts past the end", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn download_output(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path((id, n)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let n = small_number(&n).ok_or(ApiError::NoSuchOutput)?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    stream_output(&ingest, &caller, &id, n, range).await
}

#[utoipa::path(get, path = "/v1/jobs/{id}/outputs/{n}/tracks/{k}", tag = "jobs",
    summary = "One track of a split output",
    description = "A `split=chapters` output is a zip of its tracks and a playlist; each \
        track is also served on its own, numbered from 0 as the output's `tracks` list them.",
    params(
        ("id" = String, Path, description = "The job id"),
        ("n" = String, Path, description = "The output's number, from 0"),
        ("k" = String, Path, description = "The track's number, from 0"),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=a-b`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The whole track", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 206, description = "The range asked for", content(
            ("audio/mpeg"), ("audio/mp4"), ("audio/ogg"), ("audio/flac"), ("audio/wav"))),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's, no such output, or no such track", body = ErrorAnswer),
        (status = 409, description = "Not completed (yet)", body = ErrorAnswer),
        (status = 410, description = "The audio was removed after the retention period", body = ErrorAnswer),
        (status = 416, description = "The range starts past the end", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn download_track(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path((id, n, k)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let n = small_number(&n).ok_or(ApiError::NoSuchOutput)?;
    let k = small_number(&k).ok_or(ApiError::NoSuchOutput)?;
    let job = ingest.job_for(&caller.sub, &id).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    send_audio(&ingest, &job, n, Some(k), range).await
}

/// A number in a path that counts outputs or tracks: small, so anything
/// longer is none.
pub(super) fn small_number(text: &str) -> Option<usize> {
    Some(text)
        .filter(|text| text.len() <= 3)
        .and_then(|text| text.parse().ok())
}

/// Streams the audio of a finished job's output `n` from the object store:
/// all of it, or the one byte range a `Range` header asks for (206), so
/// players can seek and broken downloads resume.
pub(super) async fn stream_output(
    ingest: &Ingest,
    caller: &Claims,
    job_id: &str,
    n: usize,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let job = ingest.job_for(&caller.sub, job_id).await?;
    send_audio(ingest, &job, n, None, range).await
}

/// Streams output `n` of `job` (or track `track` of it, a run of the
/// output's zip) once the job has completed, whole or the one byte range
/// asked for.
pub(super) async fn send_audio(
    ingest: &Ingest,
    job: &Job,
    n: usize,
    track: Option<usize>,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let spec = job.specs().nth(n).ok_or(ApiError::NoSuchOutput)?;
    completed(job)?;
    let output = job.results().nth(n).ok_or(ApiError::NoSuchOutput)?;
    let served = match track {
        None => Served {
            object: &output.object,
            window: None,
            filename: &output.filename,
            content_type: &output.content_type,
        },
        Some(k) => {
            let track = output.tracks.get(k).ok_or(ApiError::NoSuchOutput)?;
            Served {
                object: &output.object,
                window: Some((track.offset, track.bytes)),
                filename: &track.filename,
                content_type: spec.format.content_type(),
            }
        }
    };
    serve(ingest, served, range).await
}

/// What a download serves: an object of the outputs bucket, or the run of
/// its bytes `window` (offset, length) holds, under its own name and type.
struct Served<'a> {
    object: &'a str,
    window: Option<(u64, u64)>,
    filename: &'a str,
    content_type: &'a str,
}

/// Streams `served`, whole or the one byte range asked for.
async fn serve(
    ingest: &Ingest,
    served: Served<'_>,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let (info, chunks) = match ingest.outputs.read(served.object).await {
        Ok(object) => object,
        Err(objects::ReadError::NotFound) => {
            return Err(ApiError::Gone(
                "the audio of this job has been removed: outputs are kept for a limited time"
                    .into(),
            ));
        }
        Err(err) => return Err(ApiError::unavailable("the object store", err)),
    };
    let (offset, size) = served.window.unwrap_or((0, info.size as u64));
    let requested = range.map_or(ByteRange::Whole, |r| parse_range(r, size));
    let (status, body, length, content_range) = match requested {
        ByteRange::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable(size)),
        ByteRange::Part { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            objects::slice(chunks, offset + start, end + 1 - start),
            end + 1 - start,
            Some(format!("bytes {start}-{end}/{size}")),
        ),
        ByteRange::Whole if served.window.is_some() => (
            StatusCode::OK,
            objects::slice(chunks, offset, size),
            size,
            None,
        ),
        ByteRange::Whole => (StatusCode::OK, chunks, size, None),
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        ascii_filename(served.filename)
    );
    let mut response = (status, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(served.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Refuses what only a completed job has, saying why the job has none.
pub(super) fn completed(job: &Job) -> Result<(), ApiError> {
    match job.state {
        JobState::Completed => Ok(()),
        JobState::Failed => Err(ApiError::Conflict(
            "job_failed",
            "the job failed; there is no output".into(),
        )),
        JobState::Canceled => Err(ApiError::Conflict(
            "job_canceled",
            "the job was canceled; there is no output".into(),
        )),
        JobState::Queued | JobState::Running => Err(ApiError::Conflict(
            "not_ready",
            "the job has not finished yet".into(),
        )),
    }
}

/// What a `Range` header asks of a file of a known size.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// Not a single byte range we serve (several ranges, other units, bad
    /// syntax): the whole file, as RFC 9110 allows.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end, or an empty file.
    Unsatisfiable,
}

fn parse_range(header: &str, size: u64) -> ByteRange {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        // `bytes=-n`: the last n bytes.
        (true, false) => last
            .parse::<u64>()
            .ok()
            .map(|n| (size.saturating_sub(n), size.saturating_sub(1), n == 0)),
        // `bytes=a-`: from a to the end.
        (false, true) => first
            .parse::<u64>()
            .ok()
            .map(|a| (a, size.saturating_sub(1), false)),
        (false, false) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => Some((a, b.min(size.saturating_sub(1)), false)),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => ByteRange::Whole,
        Some((_, _, true)) => ByteRange::Unsatisfiable,
        Some((start, _, false)) if size == 0 || start >= size => ByteRange::Unsatisfiable,
        Some((start, end, false)) => ByteRange::Part { start, end },
    }
}

/// A file name safe inside a quoted header parameter.
fn ascii_filename(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        let part = |start, end| ByteRange::Part { start, end };
        assert_eq!(parse_range("bytes=0-99", 1000), part(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), part(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), part(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), part(0, 999));
        assert_eq!(parse_range("bytes=500-5000", 1000), part(500, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0,5-9", 1000), ByteRange::Whole);
        assert_eq!(parse_range("bytes=9-5", 1000), ByteRange::Whole);
        assert_eq!(parse_range("items=0-5", 1000), ByteRange::Whole);
        assert_eq!(parse_range("bytes=x-5", 1000), ByteRange::Whole);
    }

    #[test]
    fn download_names_are_header_safe() {
        assert_eq!(ascii_filename("my \"song\".mp3"), "my _song_.mp3");
        assert_eq!(ascii_filename("café.mp3"), "caf_.mp3");
    }
}
