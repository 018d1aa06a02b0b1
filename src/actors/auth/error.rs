//! What Auth answers when it turns a request down or cannot serve it: a
//! status and a stable code for the reply, the cause for the log.

use super::sessions::SessionError;
use super::users::UserError;
use crate::actors::micro;
use crate::error::{BoxError, chain};
use crate::storage::db::DbError;

/// A request Auth turns down, or could not serve.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("{0}")]
    InvalidRefreshToken(SessionError),
    #[error("this needs an admin token")]
    Forbidden,
    #[error("this account is disabled")]
    Disabled,
    #[error("no such user")]
    NoSuchUser,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    BadRequest(String),
    /// Too many password checks are waiting: try again later.
    #[error("too many logins at once; try again shortly")]
    Busy,
    /// A dependency (JetStream, SurrealDB) failed: try again later. The
    /// cause goes to the log, not to the caller.
    #[error("temporarily unavailable; try again later")]
    Unavailable(#[source] BoxError),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl AuthError {
    /// HTTP-like status and stable code, shared by the NATS reply and HTTP.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            AuthError::InvalidCredentials => (401, "invalid_credentials"),
            AuthError::InvalidToken => (401, "invalid_token"),
            AuthError::InvalidRefreshToken(SessionError::Replayed) => (401, "refresh_token_reused"),
            AuthError::InvalidRefreshToken(_) => (401, "invalid_refresh_token"),
            AuthError::Forbidden => (403, "forbidden"),
            AuthError::Disabled => (403, "account_disabled"),
            AuthError::NoSuchUser => (404, "no_such_user"),
            AuthError::WrongPassword => (403, "wrong_password"),
            AuthError::EmailTaken => (409, "email_taken"),
            AuthError::BadRequest(_) => (400, "bad_request"),
            AuthError::Busy => (503, "busy"),
            AuthError::Unavailable(_) => (503, "unavailable"),
            AuthError::Internal(_) => (500, "internal"),
        }
    }
}

impl From<SessionError> for AuthError {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::Unavailable(cause) => AuthError::Unavailable(cause),
            refused => AuthError::InvalidRefreshToken(refused),
        }
    }
}

impl From<UserError> for AuthError {
    fn from(err: UserError) -> Self {
        match err {
            UserError::Duplicate => AuthError::EmailTaken,
            UserError::Db(err @ (DbError::Timeout | DbError::Connect { .. })) => {
                AuthError::Unavailable(err.into())
            }
            other => AuthError::Internal(other.into()),
        }
    }
}

impl micro::ServiceError for AuthError {
    fn status_and_code(&self) -> (u16, &str) {
        AuthError::status_and_code(self)
    }

    fn log(&self, endpoint: &str) {
        match self {
            AuthError::Internal(_) => {
                tracing::error!(endpoint, error = %chain(self), "auth request failed");
            }
            AuthError::Unavailable(_) => {
                tracing::warn!(endpoint, error = %chain(self), "auth request failed");
            }
            _ => {}
        }
    }
}
