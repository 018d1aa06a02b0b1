//! Auth: users, password login and token issuing, served as a NATS micro
//! service (`mediajet-auth`, discoverable through `$SRV`). It publishes its
//! public key to the keys bucket so other actors verify tokens themselves.
//!
//! - `endpoints`: login, refresh, logout, user creation; `accounts`: one's
//!   own account and, for admins, anyone's; `error`: refusals
//! - `users`, `sessions`, `keys`: users, refresh-token sessions, the key
//! - `admin`: the first admin

mod accounts;
mod admin;
mod endpoints;
mod error;
pub mod keys;
pub mod sessions;
pub mod users;

pub use error::AuthError;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::actors::{Worker, WorkerError, WorkerFuture, micro};
use crate::config::{AuthSettings, Shared};
use crate::error::BoxError;
use crate::storage::buckets;
use crate::storage::db::{Db, DbError};
use crate::storage::jetstream as js_setup;
use crate::token::{DisabledUsers, Revocations, Verifier};
use crate::wire::{self, subject};
use keys::{KeyError, SigningKey};
use sessions::Sessions;
use users::UserStore;

/// Auth could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    JetStream(#[from] js_setup::SetupError),
    #[error("cannot publish the token key")]
    Publish(#[source] BoxError),
    #[error("cannot ensure the admin user")]
    Admin(#[source] BoxError),
    #[error("set both MEDIAJET_ADMIN_EMAIL and MEDIAJET_ADMIN_PASSWORD, or neither")]
    HalfAnAdmin,
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
        shared: &Shared,
        settings: &AuthSettings,
        client: async_nats::Client,
        db: Db,
    ) -> Result<AuthStarted, AuthSetupError> {
        let js = js_setup::context(client.clone());
        let users = UserStore::open(db).await?;
        let key_path = settings
            .jwt_key_file
            .clone()
            .unwrap_or_else(|| shared.data_dir.join("auth").join("signing-key.pem"));
        let key = SigningKey::load_or_generate(&key_path)?;
        let keys = buckets::keys_bucket(&js, shared.replicas).await?;
        publish_key(&keys, &key).await?;
        let decoy_hash = users::hash_password("decoy password, never valid")
            .await
            .map_err(|e| AuthSetupError::Admin(e.into()))?;
        let revocations =
            Revocations::watch(buckets::revoked_bucket(&js, shared.replicas).await?).await;
        let sessions = Sessions::new(
            buckets::sessions_bucket(&js, shared.replicas).await?,
            revocations.clone(),
            settings.refresh_ttl,
            shared.token_ttl,
            settings.refresh_grace,
        );
        let auth = Auth {
            client,
            users,
            key,
            verifier: Verifier::watch(
                keys,
                revocations,
                DisabledUsers::watch(buckets::disabled_bucket(&js, shared.replicas).await?).await,
                shared.token_ttl,
            )
            .await,
            sessions,
            token_ttl: shared.token_ttl,
            decoy_hash,
            password_checks: tokio::sync::Semaphore::new(settings.max_password_checks.max(1)),
        };
        let generated_admin_password = auth
            .ensure_admin(
                settings.admin_email.as_deref(),
                settings.admin_password.as_deref(),
            )
            .await?;
        Ok(AuthStarted {
            auth: Arc::new(auth),
            generated_admin_password,
        })
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
                    subject::ACCOUNTS_ENDPOINT,
                ],
            )
            .await?;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = served.next() => match next {
                        Some((endpoint, request)) => served.answer(self.clone().serve(request, endpoint)),
                        None => return Err(WorkerError::ended("the auth endpoints")),
                    },
                }
            }
            // Answer what was already received before leaving.
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
    let publish = |e: BoxError| AuthSetupError::Publish(e);
    let current = key.public().kid.as_str();
    keys.put(current, wire::encode(key.public()))
        .await
        .map_err(|e| publish(e.into()))?;
    let published: Vec<String> = keys
        .keys()
        .await
        .map_err(|e| publish(e.into()))?
        .filter_map(|kid| async move { kid.ok() })
        .collect()
        .await;
    for retired in published.iter().filter(|kid| kid.as_str() != current) {
        keys.delete(retired).await.map_err(|e| publish(e.into()))?;
        tracing::info!(kid = %retired, "retired a signing key that is no longer configured");
    }
    Ok(())
}
