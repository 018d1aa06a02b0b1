//! Auth's endpoints: login, refresh, logout, user creation and accounts
//! (`accounts.rs`), each a typed
//! request in and a reply or an `AuthError` out, and the dispatch of the
//! micro service's requests to them.

use std::sync::Arc;

use async_nats::service::Request;
use tracing::Instrument;

use super::admin::check_password;
use super::error::AuthError;
use super::sessions::{NextToken, SessionError};
use super::users::{self, User};
use super::{Auth, MAX_PASSWORD_BYTES, PASSWORD_CHECK_WAIT};
use crate::actors::micro;
use crate::domain::Email;
use crate::token::{self, Claims, unix_now};
use crate::wire::{
    self, AccountRequest, CreateUserRequest, LoginRequest, LogoutReply, LogoutRequest,
    RefreshRequest, Role, TokenReply, UserReply, subject,
};

impl Auth {
    pub async fn login(&self, request: LoginRequest) -> Result<TokenReply, AuthError> {
        // An email that is not one names no user: the login fails as a
        // wrong password would.
        let email = Email::parse(&request.email)
            .map(|email| email.to_string())
            .unwrap_or_default();
        if request.password.len() > MAX_PASSWORD_BYTES {
            crate::metrics::login(false);
            return Err(AuthError::InvalidCredentials);
        }
        let user = self.users.find_by_email(&email).await?;
        let hash = user
            .as_ref()
            .map_or(self.decoy_hash.as_str(), |u| u.password_hash.as_str());
        let _checking = tokio::time::timeout(PASSWORD_CHECK_WAIT, self.password_checks.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                crate::metrics::refused("password_checks");
                AuthError::Busy
            })?;
        let matches = users::verify_password(&request.password, hash).await;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                crate::metrics::login(false);
                return Err(AuthError::InvalidCredentials);
            }
        };
        // Told only to whoever knows the password.
        if user.disabled {
            crate::metrics::login(false);
            return Err(AuthError::Disabled);
        }
        crate::metrics::login(true);
        let session = self.sessions.start(&user.uid, &user.email).await?;
        self.issue(user, session)
    }

    /// Spends a refresh token for a new access token and the session's next
    /// refresh token. The user is read again, so a changed role or a removed
    /// account counts from the next refresh on.
    pub async fn refresh(&self, request: RefreshRequest) -> Result<TokenReply, AuthError> {
        let refreshed = self.renew(&request.refresh_token).await;
        crate::metrics::token_refresh(match &refreshed {
            Ok(_) => "success",
            Err(AuthError::InvalidRefreshToken(SessionError::Replayed)) => "replayed",
            Err(AuthError::InvalidRefreshToken(_)) => "refused",
            Err(_) => "unavailable",
        });
        refreshed
    }

    /// Everything a refresh reads comes before the token is spent: a
    /// failure on the way (SurrealDB slow) leaves the token good for a retry.
    pub(super) async fn renew(&self, refresh_token: &str) -> Result<TokenReply, AuthError> {
        let renewal = self.sessions.check(refresh_token).await?;
        let user = match self.users.find_by_email(renewal.email()).await? {
            Some(user) if !user.disabled => user,
            _ => {
                self.sessions.revoke(renewal.session()).await?;
                return Err(AuthError::InvalidRefreshToken(SessionError::Invalid));
            }
        };
        self.sessions
            .note_user(&user.uid, renewal.session())
            .await?;
        let next = self.sessions.rotate(refresh_token, renewal).await?;
        self.issue(user, next)
    }

    /// Ends the session of the given access or refresh token. Ending a
    /// session that has already ended succeeds too.
    pub async fn logout(&self, request: LogoutRequest) -> Result<LogoutReply, AuthError> {
        let (session, until) = match (&request.access_token, &request.refresh_token) {
            (_, Some(refresh)) => self.sessions.end(refresh).await?,
            (Some(access), None) => {
                let session = self
                    .verifier
                    .verify(access)
                    .await
                    .map_err(|_| AuthError::InvalidToken)?
                    .sid
                    .ok_or(AuthError::InvalidToken)?;
                let until = self.sessions.revoke(&session).await?;
                (session, until)
            }
            (None, None) => {
                return Err(AuthError::BadRequest(
                    "give `access_token` or `refresh_token`".to_string(),
                ));
            }
        };
        crate::metrics::session_revoked("logout");
        Ok(LogoutReply {
            v: wire::VERSION,
            session,
            until,
        })
    }

    /// Signs an access token for the user within the session.
    pub(super) fn issue(&self, user: User, session: NextToken) -> Result<TokenReply, AuthError> {
        let now = unix_now();
        let claims = Claims {
            sub: user.uid,
            email: user.email,
            role: user.role,
            iss: token::ISSUER.to_string(),
            aud: token::AUDIENCE.to_string(),
            iat: now,
            exp: now + self.token_ttl.as_secs(),
            sid: Some(session.session),
        };
        let access_token = self
            .key
            .sign(&claims)
            .map_err(|e| AuthError::Internal(e.into()))?;
        Ok(TokenReply {
            v: wire::VERSION,
            access_token,
            token_type: "Bearer".to_string(),
            expires_in: self.token_ttl.as_secs(),
            refresh_token: session.refresh_token,
            refresh_expires_in: session.expires_at.saturating_sub(now),
        })
    }

    pub async fn create_user(&self, request: CreateUserRequest) -> Result<UserReply, AuthError> {
        let claims = self
            .verifier
            .verify(&request.token)
            .await
            .map_err(|_| AuthError::InvalidToken)?;
        if claims.role != Role::Admin {
            return Err(AuthError::Forbidden);
        }
        let email = Email::parse(&request.email)
            .map_err(|e| AuthError::BadRequest(e.to_string()))?
            .to_string();
        check_password(&request.password)?;
        let user = self
            .users
            .create(&email, &request.password, request.role)
            .await?;
        Ok(super::accounts::reply(user))
    }

    pub(super) async fn serve(self: Arc<Self>, request: Request, endpoint: &'static str) {
        let (span, _) = micro::request_span(endpoint, &request);
        async move {
            let payload = &request.message.payload;
            let result = match endpoint {
                subject::LOGIN_ENDPOINT => match wire::decode::<LoginRequest>(payload) {
                    Ok(login) => self.login(login).await.map(|reply| wire::encode(&reply)),
                    Err(err) => Err(AuthError::BadRequest(err.to_string())),
                },
                subject::REFRESH_ENDPOINT => match wire::decode::<RefreshRequest>(payload) {
                    Ok(refresh) => self
                        .refresh(refresh)
                        .await
                        .map(|reply| wire::encode(&reply)),
                    Err(err) => Err(AuthError::BadRequest(err.to_string())),
                },
                subject::LOGOUT_ENDPOINT => match wire::decode::<LogoutRequest>(payload) {
                    Ok(logout) => self.logout(logout).await.map(|reply| wire::encode(&reply)),
                    Err(err) => Err(AuthError::BadRequest(err.to_string())),
                },
                subject::ACCOUNTS_ENDPOINT => match wire::decode::<AccountRequest>(payload) {
                    Ok(request) => self.account(request).await,
                    Err(err) => Err(AuthError::BadRequest(err.to_string())),
                },
                _ => match wire::decode::<CreateUserRequest>(payload) {
                    Ok(create) => self
                        .create_user(create)
                        .await
                        .map(|reply| wire::encode(&reply)),
                    Err(err) => Err(AuthError::BadRequest(err.to_string())),
                },
            };
            micro::respond("auth", request, endpoint, result).await;
        }
        .instrument(span)
        .await;
    }
}
