//! Users: creation by an admin.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{Caller, bearer_token};
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::wire::{Role, auth};

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
pub(super) struct UserView {
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
