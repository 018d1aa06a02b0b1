//! Auth: users, password login and token issuing, served as a NATS micro
//! service (`mediajet-auth`, discoverable through `$SRV`). It publishes its
//! public key to the keys bucket so other actors verify tokens themselves.

pub mod client;
pub mod keys;
pub mod sessions;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use async_nats::service::Request;
use futures::StreamExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actors::{Worker, WorkerError, WorkerFuture, micro};
use crate::config::Config;
use crate::storage::db::{Db, DbError};
use crate::storage::jetstream as js_setup;
use crate::token::{self, Claims, Revocations, Verifier, unix_now};
use crate::wire::{
    self, CreateUserRequest, LoginRequest, LogoutReply, LogoutRequest, RefreshRequest, Role,
    TokenReply, UserReply, subject,
};
use keys::{KeyError, SigningKey};
use sessions::{NextToken, SessionError, Sessions};
use users::{User, UserError, UserStore};

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
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
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
            SessionError::Unavailable(detail) => AuthError::Unavailable(detail),
            refused => AuthError::InvalidRefreshToken(refused),
        }
    }
}

impl From<UserError> for AuthError {
    fn from(err: UserError) -> Self {
        match err {
            UserError::Duplicate => AuthError::EmailTaken,
            UserError::Db(err @ (DbError::Timeout | DbError::Connect { .. })) => {
                AuthError::Unavailable(err.to_string())
            }
            other => AuthError::Internal(other.to_string()),
        }
    }
}

/// Auth could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    JetStream(#[from] js_setup::SetupError),
    #[error("cannot publish the token key: {0}")]
    Publish(String),
    #[error("cannot ensure the admin user: {0}")]
    Admin(String),
}

pub struct Auth {
    client: async_nats::Client,
    users: UserStore,
    key: SigningKey,
    verifier: Verifier,
    sessions: Sessions,
    token_ttl: Duration,
    /// Checked against when the email is unknown, so a wrong email costs as
    /// much time as a wrong password and reveals nothing.
    decoy_hash: String,
    /// Password checks running at once (each takes ~19 MiB and a core for
    /// a moment): a flood of logins waits here, then is turned away,
    /// instead of growing memory.
    password_checks: tokio::sync::Semaphore,
}

/// How long a login waits for a password check to be free before it is
/// turned away as busy.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(5);

/// Longest password checked; a longer one cannot be right (see
/// `check_password`) and is refused without hashing it.
const MAX_PASSWORD_BYTES: usize = 1024;

/// What start-up did that the operator must hear about.
pub struct AuthStarted {
    pub auth: Arc<Auth>,
    /// The password of `admin@localhost` when it was just generated.
    pub generated_admin_password: Option<String>,
}

impl Auth {
    pub async fn build(
        config: &Config,
        client: async_nats::Client,
        db: Db,
    ) -> Result<AuthStarted, AuthSetupError> {
        let js = js_setup::context(client.clone());
        let users = UserStore::open(db).await?;
        let key_path = config
            .jwt_key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("auth").join("signing-key.pem"));
        let key = SigningKey::load_or_generate(&key_path)?;
        let keys = js_setup::keys_bucket(&js, config.replicas).await?;
        publish_key(&keys, &key).await?;
        let decoy_hash = users::hash_password("decoy password, never valid")
            .await
            .map_err(|e| AuthSetupError::Admin(e.to_string()))?;
        let revocations =
            Revocations::watch(js_setup::revoked_bucket(&js, config.replicas).await?).await;
        let sessions = Sessions::new(
            js_setup::sessions_bucket(&js, config.replicas).await?,
            revocations.clone(),
            config.refresh_ttl,
            config.token_ttl,
            config.refresh_grace,
        );
        let auth = Auth {
            client,
            users,
            key,
            verifier: Verifier::watch(keys, revocations, config.token_ttl).await,
            sessions,
            token_ttl: config.token_ttl,
            decoy_hash,
            password_checks: tokio::sync::Semaphore::new(config.max_password_checks.max(1)),
        };
        let generated_admin_password = auth
            .ensure_admin(
                config.admin_email.as_deref(),
                config.admin_password.as_deref(),
            )
            .await?;
        Ok(AuthStarted {
            auth: Arc::new(auth),
            generated_admin_password,
        })
    }

    /// Ensures the configured admin exists with the configured password; with
    /// none configured and no user at all, creates `admin@localhost` with a
    /// random password and returns it.
    async fn ensure_admin(
        &self,
        email: Option<&str>,
        password: Option<&str>,
    ) -> Result<Option<String>, AuthSetupError> {
        let admin = |e: UserError| AuthSetupError::Admin(e.to_string());
        match (email, password) {
            (Some(email), Some(password)) => {
                let email =
                    normalize_email(email).map_err(|e| AuthSetupError::Admin(e.to_string()))?;
                check_password(password).map_err(|e| AuthSetupError::Admin(e.to_string()))?;
                if self
                    .users
                    .find_by_email(&email)
                    .await
                    .map_err(admin)?
                    .is_some()
                {
                    self.users
                        .update(&email, password, Role::Admin)
                        .await
                        .map_err(admin)?;
                } else {
                    self.users
                        .create(&email, password, Role::Admin)
                        .await
                        .map_err(admin)?;
                }
                Ok(None)
            }
            (Some(_), None) | (None, Some(_)) => Err(AuthSetupError::Admin(
                "set both MEDIAJET_ADMIN_EMAIL and MEDIAJET_ADMIN_PASSWORD, or neither".to_string(),
            )),
            (None, None) => {
                if self.users.count().await.map_err(admin)? > 0 {
                    return Ok(None);
                }
                let password = random_password().map_err(AuthSetupError::Admin)?;
                self.users
                    .create("admin@localhost", &password, Role::Admin)
                    .await
                    .map_err(admin)?;
                Ok(Some(password))
            }
        }
    }

    pub async fn login(&self, request: LoginRequest) -> Result<TokenReply, AuthError> {
        let email = normalize_email(&request.email).unwrap_or_default();
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
        crate::metrics::login(true);
        let session = self.sessions.start(&user.email).await?;
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
    async fn renew(&self, refresh_token: &str) -> Result<TokenReply, AuthError> {
        let renewal = self.sessions.check(refresh_token).await?;
        let Some(user) = self.users.find_by_email(renewal.email()).await? else {
            self.sessions.revoke(renewal.session()).await?;
            return Err(AuthError::InvalidRefreshToken(SessionError::Invalid));
        };
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
    fn issue(&self, user: User, session: NextToken) -> Result<TokenReply, AuthError> {
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
            .map_err(|e| AuthError::Internal(e.to_string()))?;
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
        let email = normalize_email(&request.email)?;
        check_password(&request.password)?;
        let user = self
            .users
            .create(&email, &request.password, request.role)
            .await?;
        Ok(UserReply {
            v: wire::VERSION,
            id: user.uid,
            email: user.email,
            role: user.role,
            created_at: user.created_at,
        })
    }

    async fn serve(self: Arc<Self>, request: Request, endpoint: &'static str) {
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
            _ => match wire::decode::<CreateUserRequest>(payload) {
                Ok(create) => self
                    .create_user(create)
                    .await
                    .map(|reply| wire::encode(&reply)),
                Err(err) => Err(AuthError::BadRequest(err.to_string())),
            },
        };
        let sent = match result {
            Ok(body) => request.respond(Ok(body)).await,
            Err(err) => {
                match &err {
                    AuthError::Internal(detail) => {
                        tracing::error!(endpoint, error = %detail, "auth request failed");
                    }
                    AuthError::Unavailable(detail) => {
                        tracing::warn!(endpoint, error = %detail, "auth request failed");
                    }
                    _ => {}
                }
                let (status, code) = err.status_and_code();
                let (headers, body) = wire::error_reply(status, code, &err.to_string());
                request.respond_with_headers(Ok(body), headers).await
            }
        };
        if let Err(err) = sent {
            tracing::warn!(endpoint, error = %err, "cannot send auth reply");
        }
    }
}

impl Worker for Auth {
    const NAME: &'static str = "auth";

    fn run(self: Arc<Self>, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move {
            let mut served = micro::start(
                &self.client,
                subject::AUTH_SERVICE,
                "mediajet users, login and tokens",
                subject::AUTH_GROUP,
                &[
                    subject::LOGIN_ENDPOINT,
                    subject::REFRESH_ENDPOINT,
                    subject::LOGOUT_ENDPOINT,
                    subject::CREATE_USER_ENDPOINT,
                ],
            )
            .await?;
            let mut in_flight = JoinSet::new();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    Some((endpoint, request)) = served.requests.next() => {
                        in_flight.spawn(self.clone().serve(request, endpoint));
                    }
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                    else => return Err(WorkerError("auth endpoints closed".to_string())),
                }
            }
            // Answer what was already received before leaving.
            while in_flight.join_next().await.is_some() {}
            served.stop().await
        })
    }
}

/// Publishes the signing key's public half and retires every other key in
/// the bucket: tokens signed with a key that is no longer configured stop
/// passing everywhere, and their holders renew them with their refresh
/// token. Every Auth process of a deployment therefore uses the same key
/// file.
async fn publish_key(
    keys: &async_nats::jetstream::kv::Store,
    key: &SigningKey,
) -> Result<(), AuthSetupError> {
    let publish = |e: &dyn std::fmt::Display| AuthSetupError::Publish(e.to_string());
    let current = key.public().kid.as_str();
    keys.put(current, wire::encode(key.public()))
        .await
        .map_err(|e| publish(&e))?;
    let published: Vec<String> = keys
        .keys()
        .await
        .map_err(|e| publish(&e))?
        .filter_map(|kid| async move { kid.ok() })
        .collect()
        .await;
    for retired in published.iter().filter(|kid| kid.as_str() != current) {
        keys.delete(retired).await.map_err(|e| publish(&e))?;
        tracing::info!(kid = %retired, "retired a signing key that is no longer configured");
    }
    Ok(())
}

/// Trims and lowercases an email and checks it looks like one.
pub fn normalize_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(AuthError::BadRequest(
            "`email` is not a valid email address".to_string(),
        ))
    }
}

fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(AuthError::BadRequest(
            "`password` must be 8 to 1024 characters long".to_string(),
        ));
    }
    Ok(())
}

fn random_password() -> Result<String, String> {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_nonsense_refused() {
        assert_eq!(
            normalize_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        assert!(normalize_email("no-at-sign").is_err());
        assert!(normalize_email("a@b@c").is_err());
        assert!(normalize_email("@example.com").is_err());
        assert!(normalize_email("a b@example.com").is_err());
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
    }
}
