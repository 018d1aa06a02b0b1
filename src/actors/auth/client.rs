//! How other actors talk to Auth: typed requests over its NATS endpoints.

use crate::wire::{
    self, CreateUserRequest, LoginRequest, RequestError, Role, TokenReply, UserReply, subject,
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
