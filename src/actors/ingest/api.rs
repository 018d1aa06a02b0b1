//! HTTP routes of the API, including the seed project's routes
//! (`/login`, `/upload`, `/download`) so its clients keep working.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequestParts, Multipart, Path, Query, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::io::StreamReader;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::{Ingest, new_job, queue_position};
use crate::actors::auth::client as auth;
use crate::storage::objects;
use crate::token::Claims;
use crate::wire::{AudioOptions, ErrorReply, FORMATS, Format, Job, JobState, Role};

/// Largest JSON body accepted (logins, user creation).
const JSON_BODY_LIMIT: usize = 64 * 1024;

/// What an upload stream notes (where it notes the status of its failure)
/// when it stops at the caller's quota.
const QUOTA_FAILURE: u16 = 1;

/// Room for the multipart framing and the short fields around an upload.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// The API's routes and, at `/openapi.json`, their OpenAPI document. Both
/// come from the same `routes!` lists, so no route goes undocumented.
pub fn router(ingest: Arc<Ingest>) -> Router {
    // Uploads may be large; the limit is the configured upload size plus
    // room for the multipart framing.
    let upload_limit = usize::try_from(ingest.max_upload_bytes.saturating_add(FORM_OVERHEAD))
        .unwrap_or(usize::MAX);
    let (router, document) = documented_routes(upload_limit, ingest.request_timeout)
        .with_state(ingest)
        .split_for_parts();
    let document = document.to_json().unwrap_or_default();
    router
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
        .merge(super::web::router())
}

fn documented_routes(upload_limit: usize, request_timeout: Duration) -> OpenApiRouter<Arc<Ingest>> {
    // Only uploads may be large: any other body is read into memory whole.
    // Only uploads may take long, too: anything else has `request_timeout`
    // to answer (a stream's answer is its first line, not its end).
    let small_bodies = OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(create_user))
        .routes(routes!(get_job, cancel_or_delete_job))
        .routes(routes!(download))
        .routes(routes!(job_events))
        .routes(routes!(seed_login))
        .routes(routes!(seed_download))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            time_limit,
        ));
    let uploads = OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(seed_upload))
        .layer(DefaultBodyLimit::max(upload_limit));
    OpenApiRouter::with_openapi(super::openapi::ApiDoc::openapi())
        .merge(small_bodies)
        .merge(uploads)
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

/// The verified bearer of the request's token.
pub struct Caller(pub Claims);

impl FromRequestParts<Arc<Ingest>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ingest: &Arc<Ingest>) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        Ok(Caller(ingest.verifier.verify(token).await?))
    }
}

/// Credentials as a JSON body (HTTP Basic works too).
#[derive(Deserialize, ToSchema)]
struct Credentials {
    email: String,
    password: String,
    /// Whether they came as HTTP Basic.
    #[serde(skip)]
    #[schema(ignore)]
    basic: bool,
}

/// Credentials from HTTP Basic, or else from a JSON body.
fn credentials(headers: &HeaderMap, body: &Bytes) -> Result<Credentials, ApiError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    if let Some(encoded) = basic {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                ApiError::BadRequest("bad_credentials", "malformed Basic credentials".into())
            })?;
        let (email, password) = decoded.split_once(':').ok_or_else(|| {
            ApiError::BadRequest("bad_credentials", "malformed Basic credentials".into())
        })?;
        return Ok(Credentials {
            email: email.to_string(),
            password: password.to_string(),
            basic: true,
        });
    }
    if body.is_empty() {
        return Err(ApiError::MissingCredentials);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(
            "bad_json",
            format!("expected a JSON body {{\"email\", \"password\"}}: {e}"),
        )
    })
}

/// A short-lived access token and the refresh token that renews it.
#[derive(Serialize, ToSchema)]
struct LoginResponse {
    access_token: String,
    token_type: String,
    /// Seconds the access token is valid.
    expires_in: u64,
    /// Spend at `POST /v1/tokens/refresh` for a new pair; each is good once.
    refresh_token: String,
    /// Seconds the session can still be renewed.
    refresh_expires_in: u64,
}

impl From<crate::wire::TokenReply> for LoginResponse {
    fn from(token: crate::wire::TokenReply) -> Self {
        LoginResponse {
            access_token: token.access_token,
            token_type: token.token_type,
            expires_in: token.expires_in,
            refresh_token: token.refresh_token,
            refresh_expires_in: token.refresh_expires_in,
        }
    }
}

#[utoipa::path(post, path = "/v1/login", tag = "users",
    summary = "Exchange credentials for an access token and a refresh token",
    request_body(content = Credentials, description = "Or no body, with HTTP Basic credentials"),
    security((), ("basic" = [])),
    responses(
        (status = 200, description = "The tokens of a new session", body = LoginResponse),
        (status = 400, description = "Malformed credentials", body = ErrorReply),
        (status = 401, description = "Wrong or missing credentials", body = ErrorReply),
        (status = 429, description = "Too many failed logins lately; see Retry-After", body = ErrorReply),
        (status = 503, description = "Auth is unavailable", body = ErrorReply),
    ))]
async fn login(
    State(ingest): State<Arc<Ingest>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    let creds = credentials(&headers, &body?)?;
    let token = ingest
        .login(
            &creds.email,
            &creds.password,
            ingest.client_address(peer, &headers),
        )
        .await
        .map_err(|err| match err {
            ApiError::InvalidCredentials if !creds.basic => ApiError::InvalidJsonCredentials,
            other => other,
        })?;
    Ok(Json(token.into()))
}

/// A refresh token, as the body of a refresh or a logout.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshToken {
    refresh_token: String,
}

fn refresh_token_of(body: &Bytes) -> Result<String, ApiError> {
    serde_json::from_slice::<RefreshToken>(body)
        .map(|body| body.refresh_token)
        .map_err(|e| {
            ApiError::BadRequest(
                "bad_json",
                format!("expected a JSON body {{\"refresh_token\"}}: {e}"),
            )
        })
}

#[utoipa::path(post, path = "/v1/tokens/refresh", tag = "users",
    summary = "Spend a refresh token for a new access token and refresh token",
    description = "Each refresh token is good once. Presenting a spent one again \
        revokes its whole session (code `refresh_token_reused`): someone else holds a copy.",
    request_body = RefreshToken,
    security(()),
    responses(
        (status = 200, description = "The session's next tokens", body = LoginResponse),
        (status = 400, description = "Malformed JSON", body = ErrorReply),
        (status = 401, description = "Invalid, expired, spent or revoked refresh token", body = ErrorReply),
        (status = 503, description = "Auth is unavailable", body = ErrorReply),
    ))]
async fn refresh(
    State(ingest): State<Arc<Ingest>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    let refresh_token = refresh_token_of(&body?)?;
    let token = auth::refresh(&ingest.client, &refresh_token).await?;
    Ok(Json(token.into()))
}

#[utoipa::path(post, path = "/v1/logout", tag = "users",
    summary = "End a session",
    description = "Revokes the session of the refresh token in the body or, without a \
        body, of the bearer token: its refresh token stops working and so do its \
        access tokens, at once.",
    request_body(content = Option<RefreshToken>, description = "Or no body, with a bearer token"),
    security(("bearer" = []), ()),
    responses(
        (status = 204, description = "The session has ended"),
        (status = 400, description = "Malformed JSON", body = ErrorReply),
        (status = 401, description = "Neither token is valid", body = ErrorReply),
        (status = 503, description = "Auth is unavailable", body = ErrorReply),
    ))]
async fn logout(
    State(ingest): State<Arc<Ingest>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body?;
    let refresh_token = if body.is_empty() {
        None
    } else {
        Some(refresh_token_of(&body)?)
    };
    let access_token = bearer_token(&headers);
    if refresh_token.is_none() && access_token.is_none() {
        return Err(ApiError::Unauthorized);
    }
    let ended = auth::logout(&ingest.client, access_token, refresh_token.as_deref()).await?;
    // This process refuses the session's tokens from now on; others do once
    // their revocation watch delivers.
    ingest
        .verifier
        .revocations()
        .note(&ended.session, ended.until);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct NewUser {
    #[schema(format = Email)]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    #[serde(default = "default_role")]
    role: Role,
}

fn default_role() -> Role {
    Role::User
}

#[derive(Serialize, ToSchema)]
struct UserView {
    id: String,
    email: String,
    role: Role,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[utoipa::path(post, path = "/v1/users", tag = "users",
    summary = "Create a user (admins only)",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "Invalid email, password or JSON", body = ErrorReply),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 403, description = "Not an admin", body = ErrorReply),
        (status = 409, description = "The email is taken", body = ErrorReply),
        (status = 503, description = "Auth is unavailable", body = ErrorReply),
    ))]
async fn create_user(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    if caller.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "creating users needs an admin token".into(),
        ));
    }
    let user: NewUser = serde_json::from_slice(&body?).map_err(|e| {
        ApiError::BadRequest(
            "bad_json",
            format!("expected a JSON body {{\"email\", \"password\", \"role\"}}: {e}"),
        )
    })?;
    let token = bearer_token(&headers).ok_or(ApiError::Unauthorized)?;
    let created = auth::create_user(
        &ingest.client,
        token,
        &user.email,
        &user.password,
        user.role,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            id: created.id,
            email: created.email,
            role: created.role,
            created_at: created.created_at,
        }),
    ))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// A job as its owner sees it.
#[derive(Serialize, ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    id: String,
    state: JobState,
    progress: f64,
    /// Encode speed as a multiple of real time, while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<f64>,
    /// Seconds until the encode should end, while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    eta_seconds: Option<f64>,
    /// Place in the queue while queued; 1 starts next.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_position: Option<u64>,
    format: Format,
    #[serde(flatten)]
    options: AudioOptions,
    filename: String,
    input_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    finished_at: Option<OffsetDateTime>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<OutputView>,
}

/// A completed job's audio.
#[derive(Serialize, ToSchema)]
#[schema(as = Output)]
struct OutputView {
    url: String,
    filename: String,
    content_type: String,
    bytes: u64,
    duration_seconds: f64,
}

impl JobView {
    /// The view of a job, with its queue place worked out from the last
    /// work item taken (see [`Ingest::work_taken`]).
    pub fn new(job: Job, taken: Option<u64>) -> Self {
        let queue_position = queue_position(&job, taken);
        JobView {
            queue_position,
            ..JobView::from(job)
        }
    }

    pub fn state(&self) -> JobState {
        self.state
    }

    pub fn queue_position(&self) -> Option<u64> {
        self.queue_position
    }
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        let output = job.output.map(|o| OutputView {
            url: format!("/v1/jobs/{}/output", job.id),
            filename: o.filename,
            content_type: o.content_type,
            bytes: o.bytes,
            duration_seconds: o.duration_seconds,
        });
        JobView {
            id: job.id,
            state: job.state,
            progress: job.progress,
            speed: job.speed,
            eta_seconds: job.eta_seconds,
            queue_position: None,
            format: job.format,
            options: job.options,
            filename: job.filename,
            input_bytes: job.input_bytes,
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
            attempts: job.attempts,
            error: job.error,
            output,
        }
    }
}

#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    summary = "Upload a video and queue its conversion",
    request_body(content = super::openapi::JobForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The job, queued", body = JobView),
        (status = 400, description = "No file, an empty file, or options the format cannot take", body = ErrorReply),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 408, description = "The upload was slower than the slowest rate accepted", body = ErrorReply),
        (status = 413, description = "Larger than the upload limit (`too_large`), or past the caller's storage quota (`quota_exceeded`)", body = ErrorReply),
        (status = 429, description = "Too many unfinished jobs; see Retry-After", body = ErrorReply),
        (status = 503, description = "NATS or SurrealDB is unavailable; nothing was kept", body = ErrorReply),
    ))]
async fn create_job(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let job = accept_upload(&ingest, &caller, &headers, multipart?).await?;
    Ok((StatusCode::ACCEPTED, Json(JobView::from(job))))
}

/// Reads the multipart form: streams `file` into the object store and reads
/// `format`, `bitrate` and `sample_rate`. Whatever goes wrong after the file
/// is stored removes it again.
async fn accept_upload(
    ingest: &Ingest,
    caller: &Claims,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<Job, ApiError> {
    // A body that says it is too large is refused before it is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > ingest.max_upload_bytes.saturating_add(FORM_OVERHEAD))
    {
        return Err(ApiError::TooLarge(format!(
            "the upload is larger than the limit of {} bytes",
            ingest.max_upload_bytes
        )));
    }
    // Before a byte of the upload is read: a refused upload keeps nothing.
    // The upload counts as an unfinished job until it is one (or refused).
    let _uploading = ingest.start_upload(&caller.sub).await?;
    let quota = ingest.quota_left(&caller.sub).await?;
    let job_id = uuid::Uuid::now_v7().to_string();
    let mut stored: Option<(String, u64)> = None;
    let result = read_form(ingest, &job_id, quota, &mut multipart, &mut stored).await;
    let result = match (result, &stored) {
        (Ok((format, options)), Some((filename, size))) => {
            let mut job = new_job(job_id.clone(), caller, format, filename.clone(), *size);
            job.options = options;
            job.max_output_bytes = Some(quota.saturating_sub(*size));
            ingest.submit(&job).await.map(|()| job)
        }
        (Ok(_), None) => Err(ApiError::BadRequest(
            "missing_file",
            "the multipart field `file` is required".into(),
        )),
        (Err(err), _) => Err(err),
    };
    match &result {
        Ok(job) => crate::metrics::job_submitted(job.format.name(), job.input_bytes),
        Err(_) if stored.is_some() => ingest.discard_upload(&job_id).await,
        Err(_) => {}
    }
    result
}

async fn read_form(
    ingest: &Ingest,
    job_id: &str,
    quota: u64,
    multipart: &mut Multipart,
    stored: &mut Option<(String, u64)>,
) -> Result<(Format, AudioOptions), ApiError> {
    let mut format = Format::Mp3;
    let mut options = AudioOptions::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e.status(), e.body_text()))?
    {
        match field.name() {
            Some("file") if stored.is_none() => {
                let filename = clean_filename(field.file_name());
                // The multipart error's status (413 past the size limit)
                // is lost inside the object store's error; keep it aside.
                let failure = Arc::new(AtomicU16::new(0));
                let seen = failure.clone();
                let body = field.map_err(move |e| {
                    seen.store(e.status().as_u16(), Ordering::Relaxed);
                    std::io::Error::other(e.body_text())
                });
                let slow = failure.clone();
                let body = super::rate::at_least(body, ingest.upload_min_rate).map_err(move |e| {
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
                let body = Box::pin(body);
                match ingest.store_upload(job_id, StreamReader::new(body)).await {
                    Ok(0) => {
                        ingest.discard_upload(job_id).await;
                        return Err(ApiError::BadRequest(
                            "empty_file",
                            "the uploaded file is empty".into(),
                        ));
                    }
                    Ok(size) => *stored = Some((filename, size)),
                    Err(err) => {
                        return Err(match failure.load(Ordering::Relaxed) {
                            0 => ApiError::unavailable("the object store", err),
                            413 => ApiError::TooLarge(format!(
                                "the upload is larger than the limit of {} bytes",
                                ingest.max_upload_bytes
                            )),
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
            Some(name @ ("format" | "bitrate" | "sample_rate")) => {
                let name = name.to_string();
                let text = bounded_text(field, &name).await?;
                let text = text.trim();
                match name.as_str() {
                    "format" => format = parse_format(text)?,
                    "bitrate" => options.bitrate = Some(parse_number(&name, text, Some('k'))?),
                    _ => options.sample_rate = Some(parse_number(&name, text, None)?),
                }
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
                bounded_text(field, &name).await?;
            }
        }
    }
    format
        .check(options)
        .map_err(|message| ApiError::BadRequest("invalid_options", message))?;
    Ok((format, options))
}

/// Longest value of a form field other than the file.
const MAX_FIELD_BYTES: usize = 256;

/// The text of a form field, read a chunk at a time and refused (400) as
/// soon as it is longer than [`MAX_FIELD_BYTES`]: a field is never held
/// whole unless it is short.
async fn bounded_text(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e.status(), e.body_text()))?
    {
        if text.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(ApiError::BadRequest(
                "field_too_long",
                format!("the form field `{name}` is longer than {MAX_FIELD_BYTES} bytes"),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text)
        .map_err(|_| ApiError::BadRequest("invalid_options", format!("`{name}` is not UTF-8 text")))
}

/// A format the caller named, or a 400 that lists the formats there are.
pub(super) fn parse_format(text: &str) -> Result<Format, ApiError> {
    Format::parse(text).ok_or_else(|| {
        let names: Vec<&str> = FORMATS.iter().map(|f| f.name()).collect();
        // Echo a short name back, not whatever a client sent.
        let asked: String = text.chars().take(32).collect();
        ApiError::BadRequest(
            "unsupported_format",
            format!(
                "unsupported format `{asked}`; use one of {}",
                names.join(", ")
            ),
        )
    })
}

/// A whole number from a form field, with an optional unit suffix (`128k`).
fn parse_number(field: &str, text: &str, suffix: Option<char>) -> Result<u32, ApiError> {
    let digits = suffix
        .and_then(|unit| {
            text.strip_suffix(unit)
                .or_else(|| text.strip_suffix(unit.to_ascii_uppercase()))
        })
        .unwrap_or(text);
    digits.parse().map_err(|_| {
        ApiError::BadRequest(
            "invalid_options",
            format!("`{field}` must be a whole number, not `{text}`"),
        )
    })
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

/// Keeps the base name of a client-supplied file name, without control
/// characters, at most 200 characters.
pub(super) fn clean_filename(name: Option<&str>) -> String {
    let base = name
        .unwrap_or("upload")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("upload");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "upload".to_string()
    } else {
        clean
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Only jobs older than this job id (the cursor of the previous page).
    #[param(value_type = Option<uuid::Uuid>)]
    before: Option<String>,
}

/// The caller's jobs, newest first, a page at a time: a full page carries a
/// `Link` header to the next one.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    summary = "The caller's jobs, newest first",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of jobs", body = Vec<JobView>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when there may be more"))),
        (status = 400, description = "A bad query", body = ErrorReply),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 503, description = "SurrealDB is unavailable", body = ErrorReply),
    ))]
async fn list_jobs(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "bad_query",
            "`limit` must be 1 to 500".into(),
        ));
    }
    let before = match query.before.as_deref() {
        None => None,
        Some(before) => Some(super::canonical_job_id(before).ok_or_else(|| {
            ApiError::BadRequest("bad_query", "`before` must be a job id".into())
        })?),
    };
    let (jobs, next) = ingest
        .jobs_for(&caller.sub, query.state, before.as_deref(), limit)
        .await?;
    let taken = if jobs.iter().any(|job| job.state == JobState::Queued) {
        ingest.work_taken().await
    } else {
        None
    };
    let views: Vec<JobView> = jobs
        .into_iter()
        .map(|job| JobView::new(job, taken))
        .collect();
    let mut response = Json(views).into_response();
    if let Some(next) = next {
        let state = query
            .state
            .map(|s| format!("&state={}", s.as_str()))
            .unwrap_or_default();
        let link = format!("</v1/jobs?limit={limit}{state}&before={next}>; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    summary = "One job, with its live progress",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 404, description = "No such job of the caller's", body = ErrorReply),
        (status = 503, description = "NATS is unavailable", body = ErrorReply),
    ))]
async fn get_job(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = ingest.job_for(&caller.sub, &id).await?;
    Ok(Json(ingest.view(job).await))
}

/// Server-Sent Events of the caller's job: an event `state` whenever its
/// state changes and `progress` for progress and queue moves, each carrying
/// the whole job as JSON, until the job ends (or `deleted`).
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    summary = "Live job events (Server-Sent Events)",
    description = "Event `state` at every state change and `progress` for progress and queue \
        moves; each event's data is the job as JSON. The stream ends after the terminal state \
        (or with `deleted`).",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content(("text/event-stream"))),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 404, description = "No such job of the caller's", body = ErrorReply),
        (status = 429, description = "Too many event streams open; see Retry-After", body = ErrorReply),
        (status = 503, description = "NATS is unavailable", body = ErrorReply),
    ))]
async fn job_events(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let job = ingest.job_for(&caller.sub, &id).await?;
    let events = super::follow::job_events(ingest, job, &caller).await?;
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Cancels a queued or running job (202 with the job, now `canceled`), or
/// deletes a finished one and its audio (204).
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    summary = "Cancel an unfinished job, or delete a finished one with its audio",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The job, now canceled", body = JobView),
        (status = 204, description = "The finished job and its audio are gone"),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 404, description = "No such job of the caller's", body = ErrorReply),
        (status = 409, description = "The job ended before it could be canceled", body = ErrorReply),
        (status = 503, description = "NATS or SurrealDB is unavailable", body = ErrorReply),
    ))]
async fn cancel_or_delete_job(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match ingest.cancel_or_delete(&caller.sub, &id).await? {
        Some(job) => (StatusCode::ACCEPTED, Json(JobView::from(job))).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

#[utoipa::path(get, path = "/v1/jobs/{id}/output", tag = "jobs",
    summary = "The audio of a completed job",
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
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 404, description = "No such job of the caller's", body = ErrorReply),
        (status = 409, description = "Not completed (yet)", body = ErrorReply),
        (status = 410, description = "The audio was removed after the retention period", body = ErrorReply),
        (status = 416, description = "The range starts past the end", body = ErrorReply),
        (status = 503, description = "NATS is unavailable", body = ErrorReply),
    ))]
async fn download(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    stream_output(&ingest, &caller, &id, range).await
}

/// Streams a finished job's audio from the object store: all of it, or the
/// one byte range a `Range` header asks for (206), so players can seek and
/// broken downloads resume.
async fn stream_output(
    ingest: &Ingest,
    caller: &Claims,
    job_id: &str,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let job = ingest.job_for(&caller.sub, job_id).await?;
    let output = match (&job.state, job.output) {
        (JobState::Completed, Some(output)) => output,
        (JobState::Failed, _) => {
            return Err(ApiError::Conflict(
                "job_failed",
                "the job failed; there is no output".into(),
            ));
        }
        (JobState::Canceled, _) => {
            return Err(ApiError::Conflict(
                "job_canceled",
                "the job was canceled; there is no output".into(),
            ));
        }
        _ => {
            return Err(ApiError::Conflict(
                "not_ready",
                "the job has not finished yet".into(),
            ));
        }
    };
    let (info, chunks) = match ingest.outputs.read(output.object.as_str()).await {
        Ok(object) => object,
        Err(objects::ReadError::NotFound) => {
            return Err(ApiError::Gone(
                "the audio of this job has been removed: outputs are kept for a limited time"
                    .into(),
            ));
        }
        Err(err) => return Err(ApiError::unavailable("the object store", err)),
    };
    let size = info.size as u64;
    let requested = range.map_or(ByteRange::Whole, |r| parse_range(r, size));
    let (status, body, length, content_range) = match requested {
        ByteRange::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable(size)),
        ByteRange::Part { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            objects::slice(chunks, start, end + 1 - start),
            end + 1 - start,
            Some(format!("bytes {start}-{end}/{size}")),
        ),
        ByteRange::Whole => (StatusCode::OK, chunks, size, None),
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        ascii_filename(&output.filename)
    );
    let mut response = (status, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&output.content_type)
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

/// Seed-compatible login: Basic credentials in, the bare token out.
#[utoipa::path(post, path = "/login", tag = "compatibility",
    summary = "Login of the service mediajet replaces: the bare token",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The token", body = String),
        (status = 401, description = "Wrong or missing credentials", body = ErrorReply),
        (status = 429, description = "Too many failed logins lately; see Retry-After", body = ErrorReply),
        (status = 503, description = "Auth is unavailable", body = ErrorReply),
    ))]
async fn seed_login(
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
    request_body(content = super::openapi::JobForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job id", body = String),
        (status = 400, description = "No file, or bad options", body = ErrorReply),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 408, description = "The upload was slower than the slowest rate accepted", body = ErrorReply),
        (status = 413, description = "Larger than the upload limit (`too_large`), or past the caller's storage quota (`quota_exceeded`)", body = ErrorReply),
        (status = 429, description = "Too many unfinished jobs; see Retry-After", body = ErrorReply),
        (status = 503, description = "NATS or SurrealDB is unavailable", body = ErrorReply),
    ))]
async fn seed_upload(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<String, ApiError> {
    Ok(accept_upload(&ingest, &caller, &headers, multipart?)
        .await?
        .id)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FidQuery {
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
        (status = 400, description = "No `fid`", body = ErrorReply),
        (status = 401, description = "No valid token", body = ErrorReply),
        (status = 404, description = "No such job of the caller's", body = ErrorReply),
        (status = 409, description = "Not completed (yet)", body = ErrorReply),
        (status = 410, description = "The audio was removed after the retention period", body = ErrorReply),
        (status = 416, description = "The range starts past the end", body = ErrorReply),
    ))]
async fn seed_download(
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
    stream_output(&ingest, &caller, &fid, range).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_directories_and_control_characters() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("C:\\videos\\clip.mp4")), "clip.mp4");
        assert_eq!(clean_filename(Some("a\nb.mp4")), "ab.mp4");
        assert_eq!(clean_filename(None), "upload");
        assert_eq!(clean_filename(Some("")), "upload");
    }

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
