//! Sessions: login (JSON or HTTP Basic), refresh, logout.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bearer_token;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::wire::auth;

/// Credentials as a JSON body (HTTP Basic works too).
#[derive(Deserialize, ToSchema)]
pub(super) struct Credentials {
    pub(super) email: String,
    pub(super) password: String,
    /// Whether they came as HTTP Basic.
    #[serde(skip)]
    #[schema(ignore)]
    pub(super) basic: bool,
}

/// Credentials from HTTP Basic, or else from a JSON body.
pub(super) fn credentials(headers: &HeaderMap, body: &Bytes) -> Result<Credentials, ApiError> {
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
pub(super) struct LoginResponse {
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
        (status = 400, description = "Malformed credentials", body = ErrorAnswer),
        (status = 401, description = "Wrong or missing credentials", body = ErrorAnswer),
        (status = 429, description = "Too many failed logins lately; see Retry-After", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn login(
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
        (status = 400, description = "Malformed JSON", body = ErrorAnswer),
        (status = 401, description = "Invalid, expired, spent or revoked refresh token", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn refresh(
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
        (status = 400, description = "Malformed JSON", body = ErrorAnswer),
        (status = 401, description = "Neither token is valid", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn logout(
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
