//! Request and reply over NATS: the error reply every service sends (NATS
//! micro's headers plus a JSON body) and the helper that sends a request
//! and reads either answer.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{decode, encode};

/// Error body used by every reply and every HTTP error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// A stable machine-readable code, such as `invalid_credentials`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

/// `{"error": {...}}`: the shape of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: ErrorBody,
}

/// Header carrying the HTTP-like status of an error reply (NATS micro convention).
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";
/// Header carrying the message of an error reply (NATS micro convention).
pub const ERROR_HEADER: &str = "Nats-Service-Error";

/// A request over NATS did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The service answered with an error: usually the caller's fault.
    #[error("{}: {}", .body.code, .body.message)]
    Rejected { status: u16, body: ErrorBody },
    /// Nobody answered, or the answer could not be read: retry later.
    #[error("service unavailable")]
    Unavailable(#[source] crate::error::BoxError),
}

/// Builds the headers and body of an error reply.
pub fn error_reply(
    status: u16,
    code: &str,
    message: &str,
) -> (async_nats::HeaderMap, bytes::Bytes) {
    let message = header_safe(message);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(ERROR_CODE_HEADER, status.to_string().as_str());
    headers.insert(ERROR_HEADER, message.as_str());
    let body = encode(&ErrorReply {
        error: ErrorBody {
            code: code.to_string(),
            message,
        },
    });
    (headers, body)
}

/// Longest error message sent in a reply header.
const MAX_ERROR_MESSAGE: usize = 512;

/// `text` fit for a NATS header value, which may hold no line breaks (the
/// client refuses to send one and panics): control characters become
/// spaces, and a long text is cut at a character boundary.
pub fn header_safe(text: &str) -> String {
    let mut safe = String::with_capacity(text.len().min(MAX_ERROR_MESSAGE));
    for c in text.chars() {
        if safe.len() + c.len_utf8() > MAX_ERROR_MESSAGE {
            break;
        }
        safe.push(if c.is_control() { ' ' } else { c });
    }
    safe
}

/// Sends a request and decodes the reply, or the error reply, of a service.
pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    request: &Req,
) -> Result<Resp, RequestError> {
    let reply = client
        .request(subject.to_string(), encode(request))
        .await
        .map_err(|err| RequestError::Unavailable(err.into()))?;
    let status = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(ERROR_CODE_HEADER))
        .and_then(|v| v.as_str().parse::<u16>().ok());
    match status {
        Some(status) => {
            let body = serde_json::from_slice::<ErrorReply>(&reply.payload)
                .map(|r| r.error)
                .unwrap_or_else(|_| ErrorBody {
                    code: "error".to_string(),
                    message: String::from_utf8_lossy(&reply.payload).into_owned(),
                });
            Err(RequestError::Rejected { status, body })
        }
        None => decode(&reply.payload).map_err(|err| RequestError::Unavailable(err.into())),
    }
}
