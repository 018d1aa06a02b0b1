//! How other actors talk to Auth: typed requests over its NATS endpoints.

use crate::wire::{
    self, CreateUserRequest, LoginRequest, LogoutReply, LogoutRequest, RefreshRequest,
    RequestError, Role, TokenReply, UserReply, subject,
};

pub async fn login(
    client: &async_nats::Client,
    email: &str,
    password: &str,
) -> Result<TokenReply, RequestError> {
    let request = LoginRequest {
        v: wire::VERSION,
        email: email.to_string(),
        password: password.to_string(),
    };
    wire::request(client, subject::LOGIN, &request).await
}

pub async fn refresh(
    client: &async_nats::Client,
    refresh_token: &str,
) -> Result<TokenReply, RequestError> {
    let request = RefreshRequest {
        v: wire::VERSION,
        refresh_token: refresh_token.to_string(),
    };
    wire::request(client, subject::REFRESH, &request).await
}

/// Ends the session of either token.
pub async fn logout(
    client: &async_nats::Client,
    access_token: Option<&str>,
    refresh_token: Option<&str>,
) -> Result<LogoutReply, RequestError> {
    let request = LogoutRequest {
        v: wire::VERSION,
        access_token: access_token.map(str::to_string),
        refresh_token: refresh_token.map(str::to_string),
    };
    wire::request(client, subject::LOGOUT, &request).await
}

pub async fn create_user(
    client: &async_nats::Client,
    token: &str,
    email: &str,
    password: &str,
    role: Role,
) -> Result<UserReply, RequestError> {
    let request = CreateUserRequest {
        v: wire::VERSION,
        token: token.to_string(),
        email: email.to_string(),
        password: password.to_string(),
        role,
    };
    wire::request(client, subject::CREATE_USER, &request).await
}
