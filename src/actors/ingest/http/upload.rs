//! The multipart upload of a submission: the file is streamed into the
//! uploads bucket (bounded by the upload limit, the caller's quota and the
//! slowest rate accepted), the short fields are read with a cap, and the
//! job is created from both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use axum::extract::Multipart;
use axum::http::{HeaderMap, StatusCode, header};
use futures::TryStreamExt;
use tokio_util::io::StreamReader;

use super::FORM_OVERHEAD;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::idempotency::SubmissionKey;
use crate::actors::ingest::import::{SOURCE_URL, Submitted, Wanted, checked_source};
use crate::actors::ingest::submission::{self, Asked, Fields};
use crate::actors::ingest::{Ingest, cover, rate};
use crate::domain::JobId;
use crate::telemetry;
use crate::token::Claims;
use crate::trace_context::TraceContext;
use crate::wire::{AudioOptions, Cover, Format, Job};

/// What an upload stream notes (where it notes the status of its failure)
/// when it stops at the caller's quota.
const QUOTA_FAILURE: u16 = 1;

/// What became of an upload.
pub(super) enum Accepted {
    /// A new job, queued.
    New(Job),
    /// The job an earlier request with the same `Idempotency-Key` created;
    /// this upload was discarded.
    Earlier(Job),
}

/// Reads the multipart form: streams `file` into the object store and reads
/// `format` and the encoding options. Whatever goes wrong after the file is
/// stored removes it again.
pub(super) async fn accept_upload(
    ingest: &Ingest,
    caller: &Claims,
    trace: &TraceContext,
    headers: &HeaderMap,
    mut multipart: Multipart,
    key: Option<&SubmissionKey>,
) -> Result<Accepted, ApiError> {
    // A body that says it is too large is refused before it is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > ingest.max_upload_bytes.saturating_add(FORM_OVERHEAD))
    {
        return Err(ingest.too_large());
    }
    // Before a byte of the upload is read: a refused upload keeps nothing.
    // The upload counts as an unfinished job until it is one (or refused).
    let (_uploading, quota) = ingest.start_upload(&caller.sub).await?;
    let job_id = JobId::new();
    telemetry::record_job(&job_id);
    let mut stored: Option<(String, u64)> = None;
    let mut streamed: Option<Job> = None;
    let mut source_url: Option<String> = None;
    let upload = Upload {
        ingest,
        caller,
        trace,
        job_id: &job_id,
        quota,
        key,
        cover_stored: AtomicBool::new(false),
    };
    let result = read_form(
        &upload,
        &mut multipart,
        (&mut stored, &mut source_url),
        &mut streamed,
    )
    .await;
    if result.is_err() {
        drain(&mut multipart).await;
    }
    let result = match (result, &stored, streamed.take()) {
        (Ok(asked), Some((_, size)), Some(mut job)) => {
            // The job was queued when its first chunk was stored, with the
            // options that came before the file; later ones cannot apply.
            if (asked.format, &asked.options, &asked.more, &asked.notify_url)
                == (job.format, &job.options, &job.more_outputs, &job.notify_url)
            {
                job.input_bytes = *size;
                Ok(Accepted::New(job))
            } else {
                ingest.abandon_streamed(&job, key).await;
                Err(ApiError::BadRequest(
                    "options_after_file",
                    "`format`, `outputs`, `notify_url` and every option (the tags and \
                     `cover` too) must come before `file`"
                        .into(),
                ))
            }
        }
        (Err(err), _, Some(job)) => {
            ingest.abandon_streamed(&job, key).await;
            Err(err)
        }
        (Ok(asked), Some((filename, size)), None) => {
            let job = submission::new_job(
                job_id.clone(),
                caller,
                asked,
                filename.clone(),
                *size,
                quota,
            );
            match ingest.submit_once(&job, trace, key).await {
                Ok(None) => Ok(Accepted::New(job)),
                Ok(Some(earlier)) => {
                    ingest.discard_upload(job_id.as_str()).await;
                    Ok(Accepted::Earlier(earlier))
                }
                Err(err) => Err(err),
            }
        }
        (Ok(asked), None, None) if let Some(url) = &source_url => {
            let wanted = Wanted {
                source_url: url,
                asked,
                filename: None,
            };
            let import = ingest.submit_import(caller, wanted, quota, trace, key);
            match import.await? {
                Submitted::New(job) => Ok(Accepted::New(job)),
                Submitted::Earlier(job) => Ok(Accepted::Earlier(job)),
            }
        }
        (Ok(_), None, _) => Err(ApiError::BadRequest(
            "missing_file",
            "the multipart field `file` (or `source_url`) is required".into(),
        )),
        (Err(err), _, None) => Err(err),
    };
    match &result {
        // An import is counted once its input is stored.
        Ok(Accepted::New(job)) if job.source_url.is_none() => {
            crate::metrics::job_submitted(job.format.name(), job.input_bytes)
        }
        Ok(Accepted::New(_)) => {}
        Ok(Accepted::Earlier(_)) => {}
        Err(_) if stored.is_some() || upload.cover_stored.load(Ordering::Relaxed) => {
            ingest.discard_upload(job_id.as_str()).await
        }
        Err(_) => {}
    }
    result
}

/// Who is uploading what: the context of one form.
struct Upload<'a> {
    ingest: &'a Ingest,
    caller: &'a Claims,
    trace: &'a TraceContext,
    job_id: &'a JobId,
    quota: u64,
    key: Option<&'a SubmissionKey>,
    /// Whether a cover picture came with the form and was stored.
    cover_stored: AtomicBool,
}

/// Reads the form: the file stored (its name and size), or the URL to
/// import instead. A `format` field before the file lets the job be queued
/// while the file arrives (`streamed`), if its container allows.
async fn read_form(
    upload: &Upload<'_>,
    multipart: &mut Multipart,
    (stored, source_url): (&mut Option<(String, u64)>, &mut Option<String>),
    streamed: &mut Option<Job>,
) -> Result<Asked, ApiError> {
    let Upload {
        ingest,
        job_id,
        quota,
        ..
    } = *upload;
    let mut fields = Fields::over((Format::Mp3, AudioOptions::default()));
    let mut format_given = false;
    let mut options_given = false;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e.status(), e.body_text()))?
    {
        match field.name() {
            Some("file") | Some(SOURCE_URL) if source_url.is_some() => {
                return Err(both_sources());
            }
            Some(SOURCE_URL) if stored.is_some() => return Err(both_sources()),
            Some(SOURCE_URL) => {
                let text = bounded_text(field, SOURCE_URL, crate::targets::MAX_URL).await?;
                checked_source(&text, &ingest.targets)?;
                *source_url = Some(text);
            }
            Some("file") if stored.is_none() => {
                let filename = submission::clean_filename(field.file_name());
                // The multipart error's status (413 past the size limit)
                // is lost inside the object store's error; keep it aside.
                let failure = Arc::new(AtomicU16::new(0));
                let seen = failure.clone();
                let body = field.map_err(move |e| {
                    seen.store(e.status().as_u16(), Ordering::Relaxed);
                    std::io::Error::other(e.body_text())
                });
                let slow = failure.clone();
                let body = rate::at_least(body, ingest.upload_min_rate).map_err(move |e| {
                    if e.kind() == std::io::ErrorKind::TimedOut {
                        slow.store(StatusCode::REQUEST_TIMEOUT.as_u16(), Ordering::Relaxed);
                    }
                    e
                });
                // No further than the caller's quota allows.
                let over = failure.clone();
                let mut counted = 0u64;
                let body = body.and_then(move |chunk| {
                    counted = counted.saturating_add(chunk.len() as u64);
                    let past_quota = counted > quota;
                    if past_quota {
                        over.store(QUOTA_FAILURE, Ordering::Relaxed);
                    }
                    futures::future::ready(if past_quota {
                        Err(std::io::Error::other("past the storage quota"))
                    } else {
                        Ok(chunk)
                    })
                });
                let body = StreamReader::new(Box::pin(body));
                let early = fields.clone().finish().ok().filter(|_| format_given);
                let outcome = if let Some(asked) = early {
                    let early = submission::new_job(
                        job_id.clone(),
                        upload.caller,
                        asked,
                        filename.clone(),
                        0,
                        quota,
                    );
                    let (outcome, queued) = ingest
                        .store_upload_streaming(early, body, upload.trace, upload.key)
                        .await;
                    *streamed = queued;
                    outcome
                } else {
                    ingest.store_upload(job_id.as_str(), body).await
                };
                match outcome {
                    Ok(0) => {
                        ingest.discard_upload(job_id.as_str()).await;
                        return Err(submission::empty_file());
                    }
                    Ok(size) => *stored = Some((filename, size)),
                    Err(err) => {
                        return Err(match failure.load(Ordering::Relaxed) {
                            0 => ApiError::unavailable("the object store", err),
                            413 => ingest.too_large(),
                            408 => ApiError::TooSlow(ingest.upload_min_rate),
                            QUOTA_FAILURE => ApiError::QuotaExceeded(ingest.max_user_bytes),
                            status => multipart_error(
                                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                                err.to_string(),
                            ),
                        });
                    }
                }
            }
            Some("cover") if field.file_name().is_some() => {
                if fields.options.cover.is_some() {
                    return Err(submission::refused("cover", submission::cover_twice()));
                }
                let bytes = bounded_cover(field).await?;
                cover::check_picture(&bytes)?;
                ingest.store_cover(job_id, bytes).await?;
                upload.cover_stored.store(true, Ordering::Relaxed);
                fields.options.cover = Some(Cover::Upload);
                options_given = true;
            }
            // A preset is the base the other fields are laid over: it
            // comes first.
            Some("preset") => {
                let text = bounded_text(field, "preset", MAX_FIELD_BYTES).await?;
                if options_given || stored.is_some() {
                    return Err(ApiError::BadRequest(
                        "invalid_preset",
                        "`preset` must come before `format`, the options and `file`".into(),
                    ));
                }
                fields = Fields::over(ingest.preset(&upload.caller.sub, &text).await?);
                format_given = true;
                options_given = true;
            }
            Some(name) if Fields::takes(name) => {
                let name = name.to_string();
                let limit = match name.as_str() {
                    "outputs" => submission::MAX_OUTPUTS_TEXT,
                    submission::NOTIFY_URL => crate::targets::MAX_URL,
                    _ => MAX_FIELD_BYTES,
                };
                let text = bounded_text(field, &name, limit).await?;
                fields.set(&name, &text)?;
                if name == submission::NOTIFY_URL {
                    ingest
                        .check_notify_url(&upload.caller.sub, text.trim())
                        .await?;
                }
                if name == "format" {
                    format_given = stored.is_none();
                }
                options_given = true;
            }
            // Further files are skipped: the parser reads past them without
            // keeping them.
            _ if field.file_name().is_some() => {}
            // Unknown fields are skipped too, but only short ones.
            _ => {
                let name = field
                    .name()
                    .unwrap_or_default()
                    .chars()
                    .take(32)
                    .collect::<String>();
                bounded_text(field, &name, MAX_FIELD_BYTES).await?;
            }
        }
    }
    fields.finish()
}

/// The refusal of a form with a file and a URL to import, or two URLs.
fn both_sources() -> ApiError {
    ApiError::BadRequest(
        "invalid_source_url",
        "give one `file` or one `source_url`, not both".into(),
    )
}

/// Reads and drops what is left of a refused form, up to a bound: a client
/// still sending a small body then reads the refusal, rather than a
/// connection reset under its last writes. A large upload is cut off.
async fn drain(multipart: &mut Multipart) {
    const MOST_BYTES: usize = 8 << 20;
    let read = async {
        let mut read = 0;
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                read += chunk.len();
                if read > MOST_BYTES {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read).await;
}

/// The bytes of a cover picture part, refused (400) as soon as they are
/// more than [`cover::MAX_COVER_BYTES`].
async fn bounded_cover(field: axum::extract::multipart::Field<'_>) -> Result<Vec<u8>, ApiError> {
    bounded_bytes(field, cover::MAX_COVER_BYTES, || {
        ApiError::BadRequest(
            "invalid_cover",
            format!(
                "the cover may be at most {} MiB",
                cover::MAX_COVER_BYTES >> 20
            ),
        )
    })
    .await
}

/// The bytes of a form field, read a chunk at a time and refused with
/// `too_long()` as soon as they are more than `most`: a field is never
/// held whole unless it is within its bound.
async fn bounded_bytes(
    mut field: axum::extract::multipart::Field<'_>,
    most: usize,
    too_long: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e.status(), e.body_text()))?
    {
        if bytes.len() + chunk.len() > most {
            return Err(too_long());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Longest value of a form field other than the file and `outputs`.
const MAX_FIELD_BYTES: usize = 256;

/// The text of a form field, read a chunk at a time and refused (400) as
/// soon as it is longer than `limit`: a field is never held
/// whole unless it is short.
async fn bounded_text(
    field: axum::extract::multipart::Field<'_>,
    name: &str,
    limit: usize,
) -> Result<String, ApiError> {
    let text = bounded_bytes(field, limit, || {
        ApiError::BadRequest(
            "field_too_long",
            format!("the form field `{name}` is longer than {limit} bytes"),
        )
    })
    .await?;
    String::from_utf8(text)
        .map_err(|_| ApiError::BadRequest("invalid_options", format!("`{name}` is not UTF-8 text")))
}

fn multipart_error(status: StatusCode, detail: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge(detail);
    }
    ApiError::BadRequest(
        "bad_multipart",
        format!("malformed multipart body: {detail}"),
    )
}
