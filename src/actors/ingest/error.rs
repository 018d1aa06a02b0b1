//! The HTTP API's error type and its one mapping to status codes and JSON.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{BoxError, chain};
use crate::token::TokenError;
use crate::wire::{ErrorBody, ErrorReply, RequestError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Wrong HTTP Basic credentials: challenged with Basic again.
    #[error("wrong email or password")]
    InvalidCredentials,
    /// Wrong credentials in a JSON body. Not challenged with Basic, which
    /// would make a browser's `fetch` open a password dialog.
    #[error("wrong email or password")]
    InvalidJsonCredentials,
    #[error("send HTTP Basic credentials or a JSON body {{\"email\", \"password\"}}")]
    MissingCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("no such job")]
    NotFound,
    #[error("you have no such preset")]
    NoSuchPreset,
    #[error("no such user")]
    NoSuchUser,
    #[error("you have no such API key")]
    NoSuchKey,
    #[error("no such feed")]
    NoFeed,
    #[error("you have no such webhook")]
    NoSuchWebhook,
    #[error("the job has no such output")]
    NoSuchOutput,
    #[error("the job has no waveform: it could not be made of its audio")]
    NoWaveform,
    /// A NATS submission names an object the uploads bucket does not hold.
    #[error("{0}")]
    NoSuchUpload(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("{0}")]
    TooLarge(String),
    /// The caller's stored uploads and audio have reached this many bytes.
    #[error("your uploads and audio take up your whole quota of {0} bytes; delete some jobs first")]
    QuotaExceeded(u64),
    /// An upload arrived slower than this many bytes per second.
    #[error("the upload was slower than {0} bytes per second over 30 seconds")]
    TooSlow(u64),
    /// Too many requests of this kind: try again after this many seconds.
    #[error("{1}")]
    TooMany(&'static str, String, u64),
    /// The job's audio was removed after the retention period.
    #[error("{0}")]
    Gone(String),
    /// A download link whose signature does not match: altered, or made
    /// before its job's links were revoked.
    #[error("the link is not valid: it was altered, or its job's links were revoked")]
    InvalidLink,
    /// A download link past its expiry.
    #[error("the link has expired; ask its owner for a new one")]
    LinkExpired,
    /// A resumable upload that was given up because no byte came for too
    /// long; its bytes are gone.
    #[error("the upload expired: nothing was sent for too long; start it again")]
    UploadExpired,
    /// A part of a resumable upload whose bytes do not match its
    /// `Upload-Checksum`; it was discarded.
    #[error("the part does not match its checksum; it was discarded: send it again")]
    ChecksumMismatch,
    /// A request that is not in a version of the tus protocol spoken here.
    #[error("this server speaks tus 1.0.0 only; send `Tus-Resumable: 1.0.0`")]
    TusVersion,
    /// A part that is not sent as `application/offset+octet-stream`.
    #[error("a part must be sent as `Content-Type: application/offset+octet-stream`")]
    PartType,
    /// A `Range` outside an object of this many bytes.
    #[error("the range is outside the file's {0} bytes")]
    RangeNotSatisfiable(u64),
    /// A dependency (NATS, JetStream, SurrealDB, Auth) is down: retry later.
    /// The client hears which one; only the log hears why.
    #[error("{what} is unavailable; try again later")]
    Unavailable {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// Not answered in time (a dependency is slow): retry later.
    #[error("the request took too long to answer; try again later")]
    TimedOut,
    /// Answered by another actor with its own status and code.
    #[error("{}", .1.message)]
    Remote(u16, ErrorBody),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// A failure of the service's own (not the caller's), to be logged once
/// with its whole chain of causes: by the HTTP layer for a response
/// (`http::log_errors`), or by the NATS service for a reply.
#[derive(Debug, Clone)]
pub struct ErrorLog {
    /// A bug rather than a dependency that is down.
    pub internal: bool,
    pub chain: String,
}

impl ErrorLog {
    pub fn emit(&self, route: &str) {
        if self.internal {
            tracing::error!(route, error = %self.chain, "request failed");
        } else {
            tracing::warn!(route, error = %self.chain, "dependency unavailable");
        }
    }
}

impl ApiError {
    pub fn internal(err: impl Into<BoxError>) -> Self {
        ApiError::Internal(err.into())
    }

    pub fn unavailable(what: &'static str, err: impl Into<BoxError>) -> Self {
        ApiError::Unavailable {
            what,
            source: err.into(),
        }
    }

    /// A refused value, said to be found at `place` (`outputs[1]`).
    pub fn within(self, place: &str) -> Self {
        match self {
            ApiError::BadRequest(code, message) => {
                ApiError::BadRequest(code, format!("{place}: {message}"))
            }
            other => other,
        }
    }

    /// What to log of this error, if it is the service's failure.
    pub fn to_log(&self) -> Option<ErrorLog> {
        let internal = match self {
            ApiError::Internal(_) => true,
            ApiError::Unavailable { .. } => false,
            _ => return None,
        };
        Some(ErrorLog {
            internal,
            chain: chain(self),
        })
    }

    pub fn status_and_code(&self) -> (StatusCode, &str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidCredentials | ApiError::InvalidJsonCredentials => {
                (StatusCode::UNAUTHORIZED, "invalid_credentials")
            }
            ApiError::MissingCredentials => (StatusCode::UNAUTHORIZED, "missing_credentials"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NoSuchPreset => (StatusCode::NOT_FOUND, "no_such_preset"),
            ApiError::NoSuchUser => (StatusCode::NOT_FOUND, "no_such_user"),
            ApiError::NoSuchKey => (StatusCode::NOT_FOUND, "no_such_key"),
            ApiError::NoFeed => (StatusCode::NOT_FOUND, "no_feed"),
            ApiError::NoSuchWebhook => (StatusCode::NOT_FOUND, "no_such_webhook"),
            ApiError::NoSuchOutput => (StatusCode::NOT_FOUND, "no_such_output"),
            ApiError::NoWaveform => (StatusCode::NOT_FOUND, "no_waveform"),
            ApiError::NoSuchUpload(_) => (StatusCode::NOT_FOUND, "no_such_upload"),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, code),
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::TooSlow(_) => (StatusCode::REQUEST_TIMEOUT, "upload_too_slow"),
            ApiError::QuotaExceeded(_) => (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"),
            ApiError::TooMany(code, ..) => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::Gone(_) => (StatusCode::GONE, "output_expired"),
            ApiError::InvalidLink => (StatusCode::FORBIDDEN, "invalid_link"),
            ApiError::LinkExpired => (StatusCode::GONE, "link_expired"),
            ApiError::UploadExpired => (StatusCode::GONE, "upload_expired"),
            ApiError::ChecksumMismatch => (
                StatusCode::from_u16(crate::actors::ingest::tus::write::CHECKSUM_MISMATCH)
                    .unwrap_or(StatusCode::BAD_REQUEST),
                "checksum_mismatch",
            ),
            ApiError::TusVersion => (StatusCode::PRECONDITION_FAILED, "tus_version"),
            ApiError::PartType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_content_type"),
            ApiError::RangeNotSatisfiable(_) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TimedOut => (StatusCode::SERVICE_UNAVAILABLE, "timed_out"),
            ApiError::Remote(status, body) => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
                body.code.as_str(),
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Invalid => ApiError::Unauthorized,
            TokenError::Unavailable(detail) => ApiError::unavailable("token verification", detail),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(err: BytesRejection) -> Self {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge("the request body is too large".into());
        }
        ApiError::BadRequest("bad_body", err.body_text())
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(err: MultipartRejection) -> Self {
        ApiError::BadRequest(
            "bad_multipart",
            format!("expected a multipart/form-data body: {}", err.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(err: QueryRejection) -> Self {
        ApiError::BadRequest("bad_query", err.body_text())
    }
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Rejected { body, .. } if body.code == "invalid_credentials" => {
                ApiError::InvalidCredentials
            }
            RequestError::Rejected { status, body } => ApiError::Remote(status, body),
            RequestError::Unavailable(detail) => ApiError::unavailable("the auth service", detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let log = self.to_log();
        let body = ErrorReply {
            error: ErrorBody {
                code: code.to_string(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(log) = log {
            response.extensions_mut().insert(log);
        }
        if matches!(
            self,
            ApiError::TooMany(..)
                | ApiError::TooLarge(_)
                | ApiError::PartType
                | ApiError::TooSlow(_)
                | ApiError::QuotaExceeded(_)
                | ApiError::BadRequest("field_too_long" | "bad_idempotency_key", _)
        ) {
            // Refused before the request body was read (an upload): the
            // connection cannot carry another request, so say so rather than
            // let the client reuse it and fail.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let ApiError::TooMany(_, _, seconds) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            return response;
        }
        if let ApiError::TusVersion = self {
            response.headers_mut().insert(
                "tus-version",
                HeaderValue::from_static(crate::actors::ingest::tus::VERSION),
            );
        }
        if let ApiError::RangeNotSatisfiable(size) = self {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match self {
                ApiError::InvalidCredentials | ApiError::MissingCredentials => {
                    "Basic realm=\"mediajet\""
                }
                _ => "Bearer realm=\"mediajet\"",
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
