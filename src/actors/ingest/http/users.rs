//! Users: one's own account (read it, change one's password) and, for an
//! admin, everyone's (create, list, change, remove). Auth keeps the
//! accounts; removing one also removes, here, everything its user left.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{Caller, Trace, bearer_token};
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::wire::{AccountOp, Notify, Role, UserPage, UserReply, auth};

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

/// A user as the API shows them.
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub(super) struct UserView {
    id: String,
    email: String,
    role: Role,
    /// A disabled user can neither log in nor use a token or link.
    disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<UserReply> for UserView {
    fn from(user: UserReply) -> Self {
        UserView {
            id: user.id,
            email: user.email,
            role: user.role,
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

#[utoipa::path(post, path = "/v1/users", tag = "users",
    summary = "Create a user (admins only)",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "Invalid email, password or JSON", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "Not an admin", body = ErrorAnswer),
        (status = 409, description = "The email is taken", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn create_user(
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
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The body of a JSON request, or a 400 naming what was expected.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest("bad_json", format!("expected a JSON body {expected}: {e}"))
    })
}

/// Asks Auth `op` with the caller's own token.
async fn account<R: serde::de::DeserializeOwned>(
    ingest: &Ingest,
    headers: &HeaderMap,
    op: AccountOp,
) -> Result<R, ApiError> {
    let token = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
    Ok(auth::account(&ingest.client, token, op).await?)
}

/// The caller's account, and which emails they want.
#[derive(Serialize, ToSchema)]
pub(super) struct MeView {
    #[serde(flatten)]
    user: UserView,
    notify: Notify,
}

#[utoipa::path(get, path = "/v1/me", tag = "users",
    summary = "The caller's own account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = MeView),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn me(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Json<MeView>, ApiError> {
    let me: UserReply = account(&ingest, &headers, AccountOp::Me).await?;
    let notify = ingest.notify_setting(&caller.sub).await?;
    Ok(Json(MeView {
        user: me.into(),
        notify,
    }))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NotifyBody {
    /// `all` (every completed and failed job), `failures`, or `none`.
    notify: Notify,
}

#[utoipa::path(put, path = "/v1/me/notifications", tag = "users",
    summary = "Choose which emails the caller gets",
    request_body = NotifyBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The setting", body = NotifyBody),
        (status = 400, description = "Bad JSON", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn set_notifications(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<NotifyBody>, ApiError> {
    let asked: NotifyBody = json_body(&body?, r#"{"notify": "all" | "failures" | "none"}"#)?;
    ingest.set_notify(&caller.sub, asked.notify).await?;
    Ok(Json(asked))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    #[schema(max_length = 1024)]
    current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
}

#[utoipa::path(post, path = "/v1/me/password", tag = "users",
    summary = "Change the caller's password",
    description = "Every other session of the caller's ends at once (their tokens stop \
        working and cannot be refreshed); the one the request came with goes on.",
    request_body = NewPassword,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "A new password that is too short or too long, or bad JSON", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "The current password is wrong", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn change_password(
    State(ingest): State<Arc<Ingest>>,
    Caller(_): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let asked: NewPassword = json_body(&body?, r#"{"current_password", "new_password"}"#)?;
    let op = AccountOp::ChangePassword {
        current_password: asked.current_password,
        new_password: asked.new_password,
    };
    let _: UserReply = account(&ingest, &headers, op).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses anyone but an admin.
fn admin_only(caller: &crate::token::Claims) -> Result<(), ApiError> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::User => Err(ApiError::Forbidden("this needs an admin token".into())),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UserPageQuery {
    /// The users after this id (the `Link` header's next page).
    #[param(max_length = 64)]
    after: Option<String>,
    /// At most this many (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/users", tag = "users",
    summary = "Every user, a page at a time (admins only)",
    params(UserPageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users, oldest first", body = [UserView],
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when there may be more"))),
        (status = 400, description = "A bad query", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "Not an admin", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn list_users(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    query: Result<Query<UserPageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "bad_query",
            "`limit` is 1 to 500".into(),
        ));
    }
    if query.after.as_ref().is_some_and(|after| after.len() > 64) {
        return Err(ApiError::BadRequest(
            "bad_query",
            "`after` is a user id".into(),
        ));
    }
    let op = AccountOp::List {
        after: query.after,
        limit,
    };
    let page: UserPage = account(&ingest, &headers, op).await?;
    let users: Vec<UserView> = page.users.into_iter().map(UserView::from).collect();
    let mut response = Json(users).into_response();
    if let Some(next) = page.next {
        let link = format!("</v1/users?limit={limit}&after={next}>; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserChanges {
    role: Option<Role>,
    /// A disabled user's tokens, keys and links stop working on every
    /// process at once, and their sessions end.
    disabled: Option<bool>,
    /// A new password; the user's sessions end.
    #[schema(min_length = 8, max_length = 1024)]
    password: Option<String>,
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users",
    summary = "Change a user (admins only)",
    params(("id" = String, Path, description = "The user's id")),
    request_body = UserChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user as changed", body = UserView),
        (status = 400, description = "Bad JSON, a bad password, or an admin changing themselves out of admin", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "Not an admin", body = ErrorAnswer),
        (status = 404, description = "No such user", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn change_user(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UserView>, ApiError> {
    admin_only(&caller)?;
    let id = user_id(&id)?;
    let changes: UserChanges = json_body(&body?, r#"{"role", "disabled", "password"}"#)?;
    let op = AccountOp::Update {
        id,
        role: changes.role,
        disabled: changes.disabled,
        password: changes.password,
    };
    let user: UserReply = account(&ingest, &headers, op).await?;
    Ok(Json(user.into()))
}

#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users",
    summary = "Remove a user and everything they left (admins only)",
    description = "Their sessions end at once; their jobs (unfinished ones canceled), \
        uploads, audio, links and presets go. Repeating a removal cut short finishes it.",
    params(("id" = String, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "An admin removing themselves", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "Not an admin", body = ErrorAnswer),
        (status = 404, description = "No such user", body = ErrorAnswer),
        (status = 503, description = "Auth is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn remove_user(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Trace(trace): Trace,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    admin_only(&caller)?;
    let id = user_id(&id)?;
    // Auth first: from then on nothing of theirs is reachable, whatever
    // happens to the removal of what they left. A user already removed is
    // only finished off.
    let removed: Result<UserReply, ApiError> =
        account(&ingest, &headers, AccountOp::Delete { id: id.clone() }).await;
    match removed {
        Ok(_) => {}
        Err(ApiError::Remote(404, _)) if ingest.verifier.disabled().is_disabled(&id) => {}
        Err(err) => return Err(err),
    }
    ingest.remove_owner(&id, &trace).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user id from a path: a UUID in its canonical form, else no user's.
fn user_id(text: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(text)
        .ok()
        .map(|id| id.to_string())
        .filter(|id| id == text)
        .ok_or(ApiError::NoSuchUser)
}
