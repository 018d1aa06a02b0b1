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

/// Longest token looked at. Auth's are about 600 bytes; anything much
/// longer is forged, and its parts must not reach a subject or a key.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Unknown key ids remembered as unknown, at most, and for how long: a
/// flood of forged kids costs one bucket read each per minute at most.
const UNKNOWN_KEYS: usize = 1024;
const UNKNOWN_KEY_MEMORY: Duration = Duration::from_secs(60);

/// Verifies tokens against the keys Auth currently publishes, which it
/// mirrors from the keys bucket, and refuses tokens of revoked sessions. A
/// token verified once is remembered until it expires (or its key is
/// retired), so a client that sends the same token with every request costs
/// a map lookup rather than a signature check.
pub struct Verifier {
    keys: PublishedKeys,
    verified: RwLock<HashMap<String, (String, Claims)>>,
    validation: Validation,
    /// Longest a token may live (`exp - iat`): the configured access token
    /// lifetime plus the leeway.
    max_lifetime: u64,
    revocations: Revocations,
}

impl Verifier {
    /// A verifier of tokens that live at most `token_ttl`. Waits (a few
    /// seconds at most) until the published keys are known.
    pub async fn watch(keys: kv::Store, revocations: Revocations, token_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY;
        Verifier {
            keys: PublishedKeys::watch(keys).await,
            verified: RwLock::new(HashMap::new()),
            validation,
            max_lifetime: token_ttl.as_secs().saturating_add(LEEWAY),
            revocations,
        }
    }

    /// The revocations this verifier honours.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let remembered = self
            .verified
            .read()
            .ok()
            .and_then(|verified| verified.get(token).cloned());
        let claims = match remembered {
            Some((kid, claims))
                if unix_now() <= claims.exp.saturating_add(LEEWAY) && self.keys.has(&kid) =>
            {
                claims
            }
            _ => self.check_signature(token).await?,
        };
        match &claims.sid {
            Some(sid) if !self.revocations.is_revoked(sid) => Ok(claims),
            _ => Err(TokenError::Invalid),
        }
    }

    /// Verifies a token's signature and claims, and remembers it if valid.
    async fn check_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.keys.get(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)?;
        // A token valid for longer than Auth ever issues was not issued by
        // it, whoever signed it.
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime || claims.sid.is_none() {
            return Err(TokenError::Invalid);
        }
        if let Ok(mut verified) = self.verified.write() {
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(token.to_string(), (kid, claims.clone()));
        }
        Ok(claims)
    }
}

/// Whether `kid` has the form of the key ids Auth makes (16 hex digits,
/// see `auth::keys`): only such an id may become part of a bucket key.
pub fn is_key_id(kid: &str) -> bool {
    kid.len() == 16 && kid.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The public keys Auth currently publishes, mirrored from the keys bucket:
/// a key Auth retires (deletes) stops verifying anything within
/// milliseconds. A key id the mirror does not know yet (published a moment
/// ago) is read from the bucket once; one the bucket does not know either
/// is remembered as unknown for a minute.
struct PublishedKeys {
    store: kv::Store,
    known: Arc<RwLock<HashMap<String, DecodingKey>>>,
    unknown: RwLock<HashMap<String, std::time::Instant>>,
    _watching: DropGuard,
}

impl PublishedKeys {
    async fn watch(store: kv::Store) -> Self {
        let known = Arc::new(RwLock::new(HashMap::new()));
        let mirrored = Arc::clone(&known);
        let watching = mirror_bucket(store.clone(), "token keys", move |entry| {
            let Ok(mut known) = mirrored.write() else {
                return;
            };
            match decoding_key(entry) {
                Some(key) => known.insert(entry.key.clone(), key),
                None => known.remove(&entry.key),
            };
        })
        .await;
        PublishedKeys {
            store,
            known,
            unknown: RwLock::new(HashMap::new()),
            _watching: watching,
        }
    }

    fn has(&self, kid: &str) -> bool {
        self.known.read().is_ok_and(|known| known.contains_key(kid))
    }

    async fn get(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if !is_key_id(kid) {
            return Err(TokenError::Invalid);
        }
        if let Some(key) = self.known.read().ok().and_then(|k| k.get(kid).cloned()) {
            return Ok(key);
        }
        let recently_unknown = self.unknown.read().ok().and_then(|u| u.get(kid).copied());
        if recently_unknown.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_MEMORY) {
            return Err(TokenError::Invalid);
        }
        let entry = self
            .store
            .entry(kid)
            .await
            .map_err(|err| TokenError::Unavailable(err.to_string()))?;
        match entry.as_ref().and_then(decoding_key) {
            Some(key) => {
                if let Ok(mut known) = self.known.write() {
                    known.insert(kid.to_string(), key.clone());
                }
                Ok(key)
            }
            None => {
                if let Ok(mut unknown) = self.unknown.write() {
                    if unknown.len() >= UNKNOWN_KEYS {
                        unknown.clear();
                    }
                    unknown.insert(kid.to_string(), std::time::Instant::now());
                }
                Err(TokenError::Invalid)
            }
        }
    }
}

/// The verification key a keys bucket entry publishes, if it publishes one.
fn decoding_key(entry: &kv::Entry) -> Option<DecodingKey> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    let public: wire::PublicKey = wire::decode(&entry.value).ok()?;
    DecodingKey::from_ed_components(&public.x).ok()
}

/// Revoked sessions, mirrored in memory from the revoked bucket. A revocation
/// made by this process counts here at once; one made elsewhere counts once
/// the watch delivers it (milliseconds). While NATS is unreachable the mirror
/// may miss new revocations; the short life of access tokens bounds that.
#[derive(Clone)]
pub struct Revocations {
    store: kv::Store,
    revoked: Arc<Revoked>,
    /// Stops the watch when the last clone is dropped.
    _watching: Arc<DropGuard>,
}

/// The revoked sessions known here, and a signal that fires when one is
/// added (an open event stream then checks whether it was its own).
#[derive(Default)]
struct Revoked {
    sessions: RwLock<HashMap<String, u64>>,
    added: tokio::sync::Notify,
}

impl Revocations {
    /// Starts mirroring the bucket in a background task, and waits (a few
    /// seconds at most) until the revocations made so far are known, so a
    /// process that just started does not accept a revoked token.
    pub async fn watch(store: kv::Store) -> Self {
        let revoked = Arc::new(Revoked::default());
        let mirrored = Arc::clone(&revoked);
        let watching = mirror_bucket(store.clone(), "revoked sessions", move |entry| {
            if entry.operation == kv::Operation::Put
                && let Ok(value) = wire::decode::<wire::Revoked>(&entry.value)
            {
                remember(&mirrored, &entry.key, value.until);
            }
        })
        .await;
        Revocations {
            store,
            revoked,
            _watching: Arc::new(watching),
        }
    }

    pub fn is_revoked(&self, session: &str) -> bool {
        let now = unix_now();
        self.revoked
            .sessions
            .read()
            .ok()
            .and_then(|revoked| revoked.get(session).copied())
            .is_some_and(|until| now <= until)
    }

    /// Completes once `session` is revoked.
    pub async fn revoked(&self, session: &str) {
        loop {
            let added = self.revoked.added.notified();
            if self.is_revoked(session) {
                return;
            }
            added.await;
        }
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

fn remember(revoked: &Revoked, session: &str, until: u64) {
    if let Ok(mut sessions) = revoked.sessions.write() {
        // Entries past their time protect nothing: drop them as we go.
        let now = unix_now();
        sessions.retain(|_, until| *until >= now);
        sessions.insert(session.to_string(), until);
    }
    revoked.added.notify_waiters();
}

/// Mirrors a bucket into memory: `apply` sees every entry from the first
/// on, then every change, in a background task that starts over whenever
/// the watch ends, until the returned guard is dropped. Waits (5 s at most)
/// until the entries that existed at the start have been applied, so a
/// process that just started does not act on a stale picture.
async fn mirror_bucket(
    store: kv::Store,
    what: &'static str,
    apply: impl Fn(&kv::Entry) + Send + 'static,
) -> DropGuard {
    let stop = CancellationToken::new();
    let (caught_up, known) = tokio::sync::oneshot::channel();
    tokio::spawn(follow_bucket(store, what, apply, caught_up, stop.clone()));
    if tokio::time::timeout(Duration::from_secs(5), known)
        .await
        .is_err()
    {
        tracing::warn!(
            bucket = what,
            "not loaded yet; carrying on while the watch catches up"
        );
    }
    stop.drop_guard()
}

async fn follow_bucket(
    store: kv::Store,
    what: &'static str,
    apply: impl Fn(&kv::Entry),
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
                        apply(&entry);
                        if entry.delta == 0
                            && let Some(caught_up) = caught_up.take()
                        {
                            let _ = caught_up.send(());
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(bucket = what, error = %err, "watch broke off; starting over");
                        break;
                    }
                    None => break,
                }
            },
            Err(err) => tracing::warn!(bucket = what, error = %err, "cannot watch; retrying"),
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
