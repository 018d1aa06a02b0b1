//! Access tokens: EdDSA-signed JWTs issued by Auth and verified locally by
//! every other actor with the public keys Auth publishes in the keys bucket,
//! so Auth is not on the request path. Revoked sessions are mirrored from
//! their bucket by a KV watch, so checking one costs no round trip either.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use futures::StreamExt;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::wire::{self, Role};

/// Issuer and audience of every token.
pub const ISSUER: &str = "mediajet";
pub const AUDIENCE: &str = "mediajet";

/// What a token says about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub email: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    /// The login session the token belongs to; revoking it ends the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Malformed, expired, forged or signed by an unknown key: the client's fault.
    #[error("invalid or expired token")]
    Invalid,
    /// The keys bucket could not be read: retry later.
    #[error("token keys unavailable: {0}")]
    Unavailable(String),
}

/// Tokens remembered as verified, at most; the memory is emptied when full.
const VERIFIED_TOKENS: usize = 10_000;

/// Seconds a token may be past its `exp` and still pass (clock skew).
const LEEWAY: u64 = 5;

/// Verifies tokens against the published keys, caching each key by id, and
/// refuses tokens of revoked sessions. A token verified once is remembered
/// until it expires, so a client that sends the same token with every
/// request costs a map lookup rather than a signature check.
pub struct Verifier {
    keys: kv::Store,
    cache: RwLock<HashMap<String, DecodingKey>>,
    verified: RwLock<HashMap<String, Claims>>,
    validation: Validation,
    revocations: Revocations,
}

impl Verifier {
    pub fn new(keys: kv::Store, revocations: Revocations) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY;
        Verifier {
            keys,
            cache: RwLock::new(HashMap::new()),
            verified: RwLock::new(HashMap::new()),
            validation,
            revocations,
        }
    }

    /// The revocations this verifier honours.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let remembered = self
            .verified
            .read()
            .ok()
            .and_then(|verified| verified.get(token).cloned());
        let claims = match remembered {
            Some(claims) if unix_now() <= claims.exp.saturating_add(LEEWAY) => claims,
            _ => self.check_signature(token).await?,
        };
        match &claims.sid {
            Some(sid) if self.revocations.is_revoked(sid) => Err(TokenError::Invalid),
            _ => Ok(claims),
        }
    }

    /// Verifies a token's signature and claims, and remembers it if valid.
    async fn check_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.key(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)?;
        if let Ok(mut verified) = self.verified.write() {
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(token.to_string(), claims.clone());
        }
        Ok(claims)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.cache.read().ok().and_then(|c| c.get(kid).cloned()) {
            return Ok(key);
        }
        // Key ids are hex; anything else cannot be a bucket key and is forged.
        if kid.is_empty() || !kid.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(TokenError::Invalid);
        }
        let entry = self
            .keys
            .get(kid)
            .await
            .map_err(|err| TokenError::Unavailable(err.to_string()))?
            .ok_or(TokenError::Invalid)?;
        let public: wire::PublicKey = wire::decode(&entry).map_err(|_| TokenError::Invalid)?;
        let key = DecodingKey::from_ed_components(&public.x).map_err(|_| TokenError::Invalid)?;
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(kid.to_string(), key.clone());
        }
        Ok(key)
    }
}

/// Revoked sessions, mirrored in memory from the revoked bucket. A revocation
/// made by this process counts here at once; one made elsewhere counts once
/// the watch delivers it (milliseconds). While NATS is unreachable the mirror
/// may miss new revocations; the short life of access tokens bounds that.
#[derive(Clone)]
pub struct Revocations {
    store: kv::Store,
    revoked: Arc<RwLock<HashMap<String, u64>>>,
    /// Stops the watch when the last clone is dropped.
    _watching: Arc<DropGuard>,
}

impl Revocations {
    /// Starts mirroring the bucket in a background task, and waits (a few
    /// seconds at most) until the revocations made so far are known, so a
    /// process that just started does not accept a revoked token.
    pub async fn watch(store: kv::Store) -> Self {
        let revoked = Arc::new(RwLock::new(HashMap::new()));
        let stop = CancellationToken::new();
        let (caught_up, known) = tokio::sync::oneshot::channel();
        tokio::spawn(mirror(
            store.clone(),
            Arc::clone(&revoked),
            caught_up,
            stop.clone(),
        ));
        if tokio::time::timeout(Duration::from_secs(5), known)
            .await
            .is_err()
        {
            tracing::warn!(
                "revoked sessions not loaded yet; carrying on while the watch catches up"
            );
        }
        Revocations {
            store,
            revoked,
            _watching: Arc::new(stop.drop_guard()),
        }
    }

    pub fn is_revoked(&self, session: &str) -> bool {
        let now = unix_now();
        self.revoked
            .read()
            .ok()
            .and_then(|revoked| revoked.get(session).copied())
            .is_some_and(|until| now <= until)
    }

    /// Counts a revocation made elsewhere at once, before the watch brings it.
    pub fn note(&self, session: &str, until: u64) {
        remember(&self.revoked, session, until);
    }

    /// Revokes a session until `until` (Unix time): for this process at once
    /// and, through the bucket, for every other.
    pub async fn revoke(&self, session: &str, until: u64) -> Result<(), TokenError> {
        let entry = wire::Revoked {
            v: wire::VERSION,
            until,
        };
        self.store
            .put(session, wire::encode(&entry))
            .await
            .map_err(|err| TokenError::Unavailable(err.to_string()))?;
        remember(&self.revoked, session, until);
        Ok(())
    }
}

fn remember(revoked: &RwLock<HashMap<String, u64>>, session: &str, until: u64) {
    if let Ok(mut revoked) = revoked.write() {
        // Entries past their time protect nothing: drop them as we go.
        let now = unix_now();
        revoked.retain(|_, until| *until >= now);
        revoked.insert(session.to_string(), until);
    }
}

/// Follows the revoked bucket from its first entry, starting over whenever
/// the watch ends, until `stop` fires. Says so on `caught_up` once it has
/// seen every entry that existed when it started.
async fn mirror(
    store: kv::Store,
    revoked: Arc<RwLock<HashMap<String, u64>>>,
    caught_up: tokio::sync::oneshot::Sender<()>,
    stop: CancellationToken,
) {
    let mut caught_up = Some(caught_up);
    loop {
        let watch = tokio::select! {
            _ = stop.cancelled() => return,
            watch = store.watch_with_history(">") => watch,
        };
        // An empty bucket has no last entry to wait for.
        let empty = store
            .stream
            .clone()
            .info()
            .await
            .is_ok_and(|info| info.state.messages == 0);
        if empty && let Some(caught_up) = caught_up.take() {
            let _ = caught_up.send(());
        }
        match watch {
            Ok(mut watch) => loop {
                let entry = tokio::select! {
                    _ = stop.cancelled() => return,
                    entry = watch.next() => entry,
                };
                match entry {
                    Some(Ok(entry)) => {
                        if entry.operation == kv::Operation::Put
                            && let Ok(value) = wire::decode::<wire::Revoked>(&entry.value)
                        {
                            remember(&revoked, &entry.key, value.until);
                        }
                        if entry.delta == 0
                            && let Some(caught_up) = caught_up.take()
                        {
                            let _ = caught_up.send(());
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "revocation watch broke off; starting over");
                        break;
                    }
                    None => break,
                }
            },
            Err(err) => tracing::warn!(error = %err, "cannot watch revoked sessions; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Seconds since the Unix epoch, as tokens count time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
