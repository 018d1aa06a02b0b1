//! API keys: made by a logged-in user (the key is shown once), listed
//! without their secrets, revoked at once on every process. An admin may
//! list and revoke anyone's.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::Caller;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::token::api_keys::MAX_KEYS_PER_USER;
use crate::wire::{ApiKey, Role, Scope};

/// Longest name a key may have.
const MAX_NAME: usize = 100;
/// Furthest a key's expiry may lie.
const LONGEST_LIFE: time::Duration = time::Duration::days(3 * 366);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// What the key may do: `jobs:write`, `jobs:read`, `webhooks:manage`.
    #[schema(min_items = 1, max_items = 3)]
    scopes: Vec<Scope>,
    /// A name to tell keys apart.
    #[schema(max_length = 100)]
    name: Option<String>,
    /// When the key stops working (at most three years ahead); none: when
    /// it is revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
}

/// An API key as listed: never its secret.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyView {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    scopes: Vec<Scope>,
    /// The owner's user id.
    user: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    /// When a request last came with it (to the minute).
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        KeyView {
            id: key.id,
            name: key.name,
            scopes: key.scopes,
            user: key.owner,
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// A key just made: the one time its secret is shown.
#[derive(Serialize, ToSchema)]
pub(super) struct NewKeyView {
    /// The key: `Authorization: Bearer <key>` (or `ApiKey <key>`).
    key: String,
    #[serde(flatten)]
    listed: KeyView,
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "api keys",
    summary = "Make an API key",
    description = "The key is in the answer once and is kept only as a hash. It works on \
        every route its scopes allow, over HTTP and NATS, until it expires or is revoked.",
    request_body = NewKey,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The key", body = NewKeyView),
        (status = 400, description = "No or unknown scopes, a bad name or expiry", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key cannot make keys", body = ErrorAnswer),
        (status = 409, description = "The caller holds the most keys allowed", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn create_key(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<NewKeyView>), ApiError> {
    let asked: NewKey = serde_json::from_slice(&body?).map_err(|e| {
        ApiError::BadRequest(
            "invalid_key",
            format!("expected a JSON body {{\"scopes\", \"name\", \"expires_at\"}}: {e}"),
        )
    })?;
    let refuse = |message: &str| Err(ApiError::BadRequest("invalid_key", message.into()));
    let mut scopes = asked.scopes;
    if !(1..=3).contains(&scopes.len()) {
        return refuse("a key takes one to three scopes");
    }
    scopes.sort_by_key(|scope| scope.as_str());
    scopes.dedup();
    let name = asked.name.map(|name| name.trim().to_string());
    if name
        .as_ref()
        .is_some_and(|name| name.len() > MAX_NAME || name.chars().any(char::is_control))
    {
        return refuse("a key's name is at most 100 bytes, without control characters");
    }
    let now = OffsetDateTime::now_utc();
    if asked
        .expires_at
        .is_some_and(|at| at <= now || at > now + LONGEST_LIFE)
    {
        return refuse("`expires_at` must lie ahead, at most three years");
    }
    if ingest.api_keys.list(Some(&caller.sub)).len() >= MAX_KEYS_PER_USER {
        return Err(ApiError::Conflict(
            "too_many_keys",
            format!("you hold {MAX_KEYS_PER_USER} keys, the most allowed: revoke one first"),
        ));
    }
    let (key, secret) = ingest
        .api_keys
        .create((&caller.sub, &caller.email), name, scopes, asked.expires_at)
        .await?;
    let made = NewKeyView {
        key: secret,
        listed: key.into(),
    };
    Ok((StatusCode::CREATED, Json(made)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct KeysQuery {
    /// Admins: the keys of this user (`all`: everyone's).
    #[param(max_length = 64)]
    user: Option<String>,
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api keys",
    summary = "The caller's API keys, without their secrets",
    params(KeysQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys, oldest first", body = [KeyView]),
        (status = 400, description = "A bad query", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "Another user's keys, asked by a non-admin; or an API key", body = ErrorAnswer),
    ))]
pub(super) async fn list_keys(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    query: Result<Query<KeysQuery>, QueryRejection>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let Query(query) = query?;
    if query.user.as_ref().is_some_and(|user| user.len() > 64) {
        return Err(ApiError::BadRequest(
            "bad_query",
            "`user` is a user id or `all`".into(),
        ));
    }
    let owner = match query.user.as_deref() {
        None => Some(caller.sub.as_str()),
        Some(_) if caller.role != Role::Admin => {
            return Err(ApiError::Forbidden(
                "only admins list other users' keys".into(),
            ));
        }
        Some("all") => None,
        Some(user) => Some(user),
    };
    let keys = ingest.api_keys.list(owner);
    Ok(Json(keys.into_iter().map(KeyView::from).collect()))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api keys",
    summary = "Revoke an API key",
    description = "It stops working on every process at once. Admins may revoke anyone's.",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key cannot revoke keys", body = ErrorAnswer),
        (status = 404, description = "No such key of the caller's", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn revoke_key(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let owner = (caller.role != Role::Admin).then_some(caller.sub.as_str());
    let key = ingest
        .api_keys
        .list(owner)
        .into_iter()
        .find(|key| key.id == id)
        .ok_or(ApiError::NoSuchKey)?;
    ingest.api_keys.revoke(&key.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
