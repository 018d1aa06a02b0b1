//! The JSON body of a submission that names a URL to import rather than
//! uploading a file: `{"source_url": …, "filename"?, "preset"?, options…}`,
//! the options read as a multipart upload's fields would be.

use axum::body::Bytes;

use super::upload::Accepted;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::idempotency::SubmissionKey;
use crate::actors::ingest::import::{SOURCE_URL, Submitted, Wanted};
use crate::actors::ingest::submission;
use crate::token::Claims;
use crate::trace_context::TraceContext;
use crate::wire::{AudioOptions, Format};

/// Largest JSON body of a submission.
pub(super) const MAX_IMPORT_BODY: usize = 16 * 1024;

fn bad(message: String) -> ApiError {
    ApiError::BadRequest("invalid_json", message)
}

/// A text member of the body, if there.
fn text_member(
    object: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match object.remove(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(bad(format!("`{name}` must be a string"))),
    }
}

/// Makes the job a JSON submission asks for.
pub(super) async fn accept_json(
    ingest: &Ingest,
    caller: &Claims,
    trace: &TraceContext,
    body: &Bytes,
    key: Option<&SubmissionKey>,
) -> Result<Accepted, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("bad JSON body: {e}")))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(bad("the body must be a JSON object".into()));
    };
    let source_url = text_member(&mut object, SOURCE_URL)?.ok_or_else(|| {
        ApiError::BadRequest(
            "invalid_source_url",
            "a JSON submission names its input as `source_url`; upload a file as \
             multipart/form-data"
                .into(),
        )
    })?;
    let filename = text_member(&mut object, "filename")?;
    if filename.as_ref().is_some_and(|name| name.len() > 256) {
        return Err(bad("`filename` may be at most 256 bytes".into()));
    }
    let base = match text_member(&mut object, "preset")? {
        Some(name) => ingest.preset(&caller.sub, &name).await?,
        None => (Format::Mp3, AudioOptions::default()),
    };
    let asked = submission::asked_from_json(&object, base)?;
    if let Some(url) = &asked.notify_url {
        ingest.check_notify_url(&caller.sub, url).await?;
    }
    // Counted with the caller's uploads in progress until it is a job.
    let (_importing, quota) = ingest.start_upload(&caller.sub).await?;
    let wanted = Wanted {
        source_url: &source_url,
        asked,
        filename: filename.as_deref(),
    };
    let submitted = ingest.submit_import(caller, wanted, quota, trace, key);
    Ok(match submitted.await? {
        Submitted::New(job) => Accepted::New(job),
        Submitted::Earlier(job) => Accepted::Earlier(job),
    })
}
