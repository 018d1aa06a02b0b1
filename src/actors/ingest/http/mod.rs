//! The HTTP API: the router, with every route's OpenAPI attributes next to
//! its handler, and what the handlers share (the caller's token, the time
//! limit). One file per group of routes:
//!
//! - `sessions`: login, refresh, logout
//! - `api_keys`: API keys, made, listed and revoked
//! - `users`: one's own account, and everyone's for admins
//! - `jobs`: submit, list, show, follow (SSE), cancel or delete
//! - `upload`: the multipart upload a submission streams into the store;
//!   `import`: the JSON submission of a URL to import instead
//! - `tus`: resumable uploads (tus 1.0.0), which become jobs once whole
//! - `download`: a finished job's audio (any output, or one track of a
//!   split output), whole or a byte range
//! - `links`: signed download links (`/d/…`), which need no token, and
//!   their revocation
//! - `podcast`: the user's podcast feed, and the feed itself
//! - `waveform`: a finished job's waveform, as peaks and as a picture
//! - `webhooks`: the user's webhooks and their deliveries; `notify_url`:
//!   the job secret a job's own `notify_url` is told with, and its deliveries
//! - `cors`: cross-origin requests from the web apps `--cors-origins` names
//! - `compat`: the routes of the service mediajet replaces (`/login`,
//!   `/upload`, `/download`), so its clients keep working

mod api_keys;
mod compat;
pub mod cors;
mod download;
mod import;
mod jobs;
mod links;
mod notify_url;
mod podcast;
mod presets;
mod sessions;
mod tus;
mod upload;
mod users;
mod waveform;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Ingest;
use super::callers::route_access;
use super::error::{ApiError, ErrorLog};
use crate::token::Claims;
use crate::trace_context::TraceContext;

/// Largest JSON body accepted (logins, user creation).
const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Room for the multipart framing and the short fields around an upload.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// The API's routes and, at `/openapi.json`, their OpenAPI document. Both
/// come from the same `routes!` lists, so no route goes undocumented.
pub fn router(ingest: Arc<Ingest>) -> Router {
    // Uploads may be large; the limit is the configured upload size plus
    // room for the multipart framing.
    let upload_limit = usize::try_from(ingest.max_upload_bytes.saturating_add(FORM_OVERHEAD))
        .unwrap_or(usize::MAX);
    let cors_origins = ingest.cors_origins.clone();
    let (router, document) = documented_routes(upload_limit, ingest.request_timeout)
        .with_state(ingest)
        .split_for_parts();
    let document = document.to_json().unwrap_or_default();
    let origins = cors::Origins::new(cors_origins);
    router
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
        .merge(super::web::router())
        .layer(axum::middleware::from_fn(log_errors))
        .layer(axum::middleware::from_fn_with_state(origins, cors::cors))
}

/// Logs the service's own failures once, with their causes, outside the
/// handlers (see `ErrorLog`): the client got a fixed message and a code.
async fn log_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    if let Some(log) = response.extensions().get::<ErrorLog>() {
        log.emit(&route);
    }
    response
}

fn documented_routes(upload_limit: usize, request_timeout: Duration) -> OpenApiRouter<Arc<Ingest>> {
    // Only uploads may be large: any other body is read into memory whole.
    // Only uploads may take long, too: anything else has `request_timeout`
    // to answer (a stream's answer is its first line, not its end).
    let small_bodies = OpenApiRouter::new()
        .routes(routes!(sessions::login))
        .routes(routes!(sessions::refresh))
        .routes(routes!(sessions::logout))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::change_user, users::remove_user))
        .routes(routes!(users::me))
        .routes(routes!(users::change_password))
        .routes(routes!(users::set_notifications))
        .routes(routes!(
            podcast::enable_feed,
            podcast::get_feed,
            podcast::disable_feed
        ))
        .routes(routes!(podcast::podcast))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::change_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::replay_delivery))
        .routes(routes!(notify_url::renew_job_secret))
        .routes(routes!(notify_url::job_deliveries))
        .routes(routes!(links::unsubscribe_page, links::unsubscribe))
        .routes(routes!(api_keys::create_key, api_keys::list_keys))
        .routes(routes!(api_keys::revoke_key))
        .routes(routes!(presets::list_presets))
        .routes(routes!(
            presets::put_preset,
            presets::get_preset,
            presets::delete_preset
        ))
        .routes(routes!(jobs::get_job, jobs::cancel_or_delete_job))
        .routes(routes!(download::download))
        .routes(routes!(download::download_output))
        .routes(routes!(download::download_track))
        .routes(routes!(links::linked_output))
        .routes(routes!(links::linked_track))
        .routes(routes!(links::linked_cover))
        .routes(routes!(links::revoke_links))
        .routes(routes!(waveform::waveform_peaks))
        .routes(routes!(waveform::waveform_picture))
        .routes(routes!(jobs::job_events))
        .routes(routes!(compat::seed_login))
        .routes(routes!(compat::seed_download))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            time_limit,
        ));
    let uploads = OpenApiRouter::new()
        .routes(routes!(jobs::create_job, jobs::list_jobs))
        .routes(routes!(compat::seed_upload))
        .layer(DefaultBodyLimit::max(upload_limit));
    // Parts are read as streams, bounded by the upload's own length.
    let resumable = OpenApiRouter::new()
        .routes(routes!(tus::create_upload, tus::upload_options))
        .routes(routes!(
            tus::upload_offset,
            tus::write_upload,
            tus::terminate_upload,
            tus::upload_item_options
        ))
        .layer(axum::middleware::from_fn(tus::resumable));
    OpenApiRouter::with_openapi(super::openapi::ApiDoc::openapi())
        .merge(small_bodies)
        .merge(uploads)
        .merge(resumable)
}

/// The OpenAPI document of the HTTP API, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes(JSON_BODY_LIMIT, Duration::from_secs(60)).into_openapi()
}

/// Answers 503 for a request that is not answered within `limit`.
async fn time_limit(
    State(limit): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut.into_response(),
    }
}

/// The verified bearer of the request's access token, or of an API key
/// whose scopes allow the route (`callers::route_access`).
pub struct Caller(pub Claims);

impl FromRequestParts<Arc<Ingest>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ingest: &Arc<Ingest>) -> Result<Self, ApiError> {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str);
        let access = route_access(&parts.method, route);
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Ok(Caller(ingest.authenticate(authorization, access).await?))
    }
}

/// The trace of the request, as `ops::track` gave it; a new one where no
/// middleware did (a router built without it).
pub struct Trace(pub TraceContext);

impl<S: Sync> FromRequestParts<S> for Trace {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Trace(
            parts
                .extensions
                .get::<TraceContext>()
                .copied()
                .unwrap_or_default(),
        ))
    }
}

/// The token of the request's `Authorization: Bearer` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::token::bearer)
}
