//! Auth's part of the contract: the messages of its endpoints, what it
//! keeps in its buckets, and the typed client other actors call it with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::rpc::{RequestError, request};
use super::{Role, VERSION, subject, v};

/// Login request to Auth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    #[serde(default = "v")]
    pub v: u32,
    pub email: String,
    pub password: String,
}

/// A freshly signed access token and the refresh token of its session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenReply {
    #[serde(default = "v")]
    pub v: u32,
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

/// Exchanges a refresh token for a new pair; the old one is spent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRequest {
    #[serde(default = "v")]
    pub v: u32,
    pub refresh_token: String,
}

/// Ends the session of either token; at least one must be given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutRequest {
    #[serde(default = "v")]
    pub v: u32,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Auth's answer to a logout: the session has ended, and its access tokens
/// are refused until `until` (Unix time; 0 when it had ended before).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutReply {
    #[serde(default = "v")]
    pub v: u32,
    pub session: String,
    pub until: u64,
}

/// A login session: who it is for and which refresh token is current.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(default = "v")]
    pub v: u32,
    pub email: String,
    /// Bumped by every refresh.
    pub generation: u64,
    /// SHA-256 (hex) of the current refresh token's secret.
    pub secret_sha256: String,
    /// SHA-256 (hex) of the secrets the last refreshes spent, oldest first
    /// (a few at most): one of them coming back is a replay, or, for the
    /// last one within seconds of its refresh, a client retrying a refresh
    /// whose answer it never got.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spent_sha256: Vec<String>,
    /// Unix time of the last refresh.
    #[serde(default)]
    pub rotated_at: u64,
    /// Unix time after which the session cannot be refreshed.
    pub expires_at: u64,
}

/// A revoked session: its access tokens fail until `until` (Unix time),
/// after which none of them is valid anyway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    #[serde(default = "v")]
    pub v: u32,
    pub until: u64,
}

/// User creation request to Auth; `token` must belong to an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUserRequest {
    #[serde(default = "v")]
    pub v: u32,
    pub token: String,
    pub email: String,
    pub password: String,
    pub role: Role,
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserReply {
    #[serde(default = "v")]
    pub v: u32,
    pub id: String,
    pub email: String,
    pub role: Role,
    /// A disabled user can neither log in nor use a token, key or link.
    #[serde(default)]
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A request about accounts, made with the caller's access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountRequest {
    #[serde(default = "v")]
    pub v: u32,
    pub token: String,
    #[serde(flatten)]
    pub op: AccountOp,
}

/// What an account request asks: of the caller's own account, or (the
/// rest) of anyone's, by an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AccountOp {
    /// The caller's account. Answered with a [`UserReply`].
    Me,
    /// Sets the caller's password; every other session of theirs ends.
    /// Answered with a [`UserReply`].
    ChangePassword {
        current_password: String,
        new_password: String,
    },
    /// A page of users in the order of their ids, after `after`. Answered
    /// with a [`UserPage`].
    List { after: Option<String>, limit: u32 },
    /// Changes a user; disabling one ends their sessions, and their tokens
    /// stop passing everywhere. Answered with a [`UserReply`].
    Update {
        id: String,
        role: Option<Role>,
        disabled: Option<bool>,
        password: Option<String>,
    },
    /// Removes a user: disabled for good, sessions ended, the account
    /// gone. Answered with the [`UserReply`] it was.
    Delete { id: String },
}

/// A page of users, and the id to ask for the next page after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserPage {
    #[serde(default = "v")]
    pub v: u32,
    pub users: Vec<UserReply>,
    pub next: Option<String>,
}

/// A user disabled, as the disabled bucket holds it (keyed by user id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Disabled {
    #[serde(default = "v")]
    pub v: u32,
    /// The account was removed, not only disabled.
    #[serde(default)]
    pub removed: bool,
}

/// A public token verification key, as Auth publishes it in the keys bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKey {
    #[serde(default = "v")]
    pub v: u32,
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// The raw Ed25519 public key, base64url without padding (JWK `x`).
    pub x: String,
}

// The typed client: how other actors call Auth's endpoints.

pub async fn login(
    client: &async_nats::Client,
    email: &str,
    password: &str,
) -> Result<TokenReply, RequestError> {
    let message = LoginRequest {
        v: VERSION,
        email: email.to_string(),
        password: password.to_string(),
    };
    request(client, subject::LOGIN, &message).await
}

pub async fn refresh(
    client: &async_nats::Client,
    refresh_token: &str,
) -> Result<TokenReply, RequestError> {
    let message = RefreshRequest {
        v: VERSION,
        refresh_token: refresh_token.to_string(),
    };
    request(client, subject::REFRESH, &message).await
}

/// Ends the session of either token.
pub async fn logout(
    client: &async_nats::Client,
    access_token: Option<&str>,
    refresh_token: Option<&str>,
) -> Result<LogoutReply, RequestError> {
    let message = LogoutRequest {
        v: VERSION,
        access_token: access_token.map(str::to_string),
        refresh_token: refresh_token.map(str::to_string),
    };
    request(client, subject::LOGOUT, &message).await
}

/// Asks Auth `op` with the caller's `token`; the reply's type depends on
/// the operation (see [`AccountOp`]).
pub async fn account<R: serde::de::DeserializeOwned>(
    client: &async_nats::Client,
    token: &str,
    op: AccountOp,
) -> Result<R, RequestError> {
    let message = AccountRequest {
        v: VERSION,
        token: token.to_string(),
        op,
    };
    request(client, subject::ACCOUNTS, &message).await
}

pub async fn create_user(
    client: &async_nats::Client,
    token: &str,
    email: &str,
    password: &str,
    role: Role,
) -> Result<UserReply, RequestError> {
    let message = CreateUserRequest {
        v: VERSION,
        token: token.to_string(),
        email: email.to_string(),
        password: password.to_string(),
        role,
    };
    request(client, subject::CREATE_USER, &message).await
}
