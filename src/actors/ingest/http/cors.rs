//! Cross-origin requests: a web app served from another origin (one named
//! by `--cors-origins`) may call the API, tus uploads included, from a
//! browser. The page mediajet serves itself is same-origin and needs none
//! of this. Requests carry the token in `Authorization`, never a cookie, so
//! no credentials mode is offered.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The request headers a cross-origin client may send: the token, the
/// tus protocol's, and an idempotency key.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, Tus-Resumable, \
    Upload-Length, Upload-Metadata, Upload-Offset, Upload-Checksum, Upload-Defer-Length, \
    X-HTTP-Method-Override, X-Requested-With";
/// The answer headers its scripts may read: the tus protocol's, the job an
/// upload became, paging and retries.
const EXPOSED_HEADERS: &str = "Location, Link, Retry-After, Idempotent-Replayed, Tus-Resumable, \
    Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Upload-Offset, \
    Upload-Length, Upload-Expires, Mediajet-Job-Id";
const ALLOWED_METHODS: &str = "GET, POST, HEAD, PATCH, DELETE, OPTIONS";

/// The origins allowed, as `--cors-origins` lists them (`*` for any).
#[derive(Debug, Clone, Default)]
pub struct Origins(Arc<Vec<String>>);

impl Origins {
    pub fn new(origins: Vec<String>) -> Origins {
        Origins(Arc::new(origins))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`,
    /// if it is allowed.
    fn allow(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        if self.0.iter().any(|allowed| allowed == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        self.0
            .iter()
            .any(|allowed| allowed.as_bytes() == origin.as_bytes())
            .then(|| origin.clone())
    }
}

/// Checks an origin given to `--cors-origins`: `*`, or a scheme, host and
/// port with nothing after, as a browser sends it in `Origin`.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid = text == "*"
        || (text.len() <= 256
            && (text.starts_with("http://") || text.starts_with("https://"))
            && !text.ends_with('/')
            && text.split("://").nth(1).is_some_and(|rest| {
                !rest.is_empty()
                    && !rest.contains('/')
                    && rest.bytes().all(|b| b.is_ascii_graphic())
            }));
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not an origin such as https://app.example.com or *"
        ))
    }
}

/// Answers preflights from allowed origins, and tells the browser which
/// answers their scripts may read. Requests from other origins are served
/// as ever, without the headers, so the browser keeps their answers from
/// the script that asked.
pub async fn cors(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    let allowed = origins.allow(request.headers());
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let Some(allowed) = allowed else {
        return next.run(request).await;
    };
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    } else {
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_scheme_a_host_and_a_port() {
        for good in ["*", "https://app.example.com", "http://127.0.0.1:8080"] {
            assert!(parse_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://a/b",
            "ftp://x",
            "https://",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
