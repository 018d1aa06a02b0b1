//! API keys: long-lived credentials for scripts and other services,
//! `mjk_<id>_<secret>`, each limited to its scopes. The bucket holds a
//! SHA-256 of the secret (a random 256-bit value needs no slow hash), never
//! the key; every Ingest mirrors it in memory through a KV watch, so a key
//! is checked without a round trip and a revoked one stops passing on every
//! process as soon as the watch brings the change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use base64::Engine;
use time::OffsetDateTime;
use tokio_util::sync::DropGuard;

use super::TokenError;
use super::mirror::mirror_bucket;
use crate::wire::{self, ApiKey, Scope};

/// What every API key starts with.
pub const PREFIX: &str = "mjk_";
/// Most keys one user may hold.
pub const MAX_KEYS_PER_USER: usize = 20;
/// How often a key's last use is written down at most, per process.
const LAST_USE_EVERY: Duration = Duration::from_secs(60);

/// The API keys, mirrored in memory from their bucket.
#[derive(Clone)]
pub struct ApiKeys {
    store: kv::Store,
    keys: Arc<RwLock<HashMap<String, ApiKey>>>,
    /// When this process last wrote each key's last use.
    noted: Arc<RwLock<HashMap<String, Instant>>>,
    _watching: Arc<DropGuard>,
}

/// A key as it is presented: its id and its secret.
struct Presented<'a> {
    id: &'a str,
    secret: &'a str,
}

impl<'a> Presented<'a> {
    /// `mjk_<16 hex digits>_<43 base64url characters>`, or nothing.
    fn parse(key: &'a str) -> Option<Self> {
        let (id, secret) = key.strip_prefix(PREFIX)?.split_once('_')?;
        let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let secret_ok = secret.len() == 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (id_ok && secret_ok).then_some(Presented { id, secret })
    }
}

impl ApiKeys {
    /// Starts mirroring the bucket, and waits (a few seconds at most) until
    /// the keys made so far are known.
    pub async fn watch(store: kv::Store) -> Self {
        let keys = Arc::new(RwLock::new(HashMap::new()));
        let mirrored = Arc::clone(&keys);
        let watching = mirror_bucket(store.clone(), "API keys", move |entry| {
            if let Ok(mut keys) = mirrored.write() {
                match entry.operation {
                    kv::Operation::Put => {
                        if let Ok(key) = wire::decode::<ApiKey>(&entry.value) {
                            keys.insert(entry.key.clone(), key);
                        }
                    }
                    kv::Operation::Delete | kv::Operation::Purge => {
                        keys.remove(&entry.key);
                    }
                }
            }
        })
        .await;
        ApiKeys {
            store,
            keys,
            noted: Arc::default(),
            _watching: Arc::new(watching),
        }
    }

    /// The key `presented` names, if it is one and has not expired.
    pub fn check(&self, presented: &str) -> Option<ApiKey> {
        let presented = Presented::parse(presented)?;
        let key = self.keys.read().ok()?.get(presented.id).cloned()?;
        let hash = crate::hex::sha256(presented.secret.as_bytes());
        let matches = aws_lc_rs::constant_time::verify_slices_are_equal(
            hash.as_bytes(),
            key.secret_sha256.as_bytes(),
        )
        .is_ok();
        let live = key
            .expires_at
            .is_none_or(|expires| OffsetDateTime::now_utc() < expires);
        (matches && live).then_some(key)
    }

    /// The keys of `owner`, or every key, oldest first.
    pub fn list(&self, owner: Option<&str>) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self
            .keys
            .read()
            .map(|keys| {
                keys.values()
                    .filter(|key| owner.is_none_or(|owner| key.owner == owner))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        keys
    }

    /// Makes a key for `owner`; returns it as stored and the key itself,
    /// which is not kept anywhere.
    pub async fn create(
        &self,
        owner: (&str, &str),
        name: Option<String>,
        scopes: Vec<Scope>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<(ApiKey, String), TokenError> {
        let unavailable = |e: crate::error::BoxError| TokenError::Unavailable(e);
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut id).map_err(|e| unavailable(e.into()))?;
        getrandom::getrandom(&mut secret).map_err(|e| unavailable(e.into()))?;
        let id = crate::hex::encode(&id);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let key = ApiKey {
            v: wire::VERSION,
            id: id.clone(),
            owner: owner.0.to_string(),
            owner_email: owner.1.to_string(),
            name,
            scopes,
            secret_sha256: crate::hex::sha256(secret.as_bytes()),
            created_at: OffsetDateTime::now_utc(),
            expires_at,
            last_used_at: None,
        };
        self.store
            .create(&id, wire::encode(&key))
            .await
            .map_err(|e| unavailable(e.into()))?;
        self.remember(key.clone());
        Ok((key, format!("{PREFIX}{id}_{secret}")))
    }

    /// Revokes the key `id`: here at once, everywhere once the watch brings
    /// it.
    pub async fn revoke(&self, id: &str) -> Result<(), TokenError> {
        self.store
            .purge(id)
            .await
            .map_err(|e| TokenError::Unavailable(e.into()))?;
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(id);
        }
        Ok(())
    }

    /// Writes down that `key` was just used, once a minute at most per
    /// process. Best effort: a failure costs only the record.
    pub async fn used(&self, key: &ApiKey) {
        let due = self.noted.read().is_ok_and(|noted| {
            noted
                .get(&key.id)
                .is_none_or(|at| at.elapsed() >= LAST_USE_EVERY)
        });
        if !due {
            return;
        }
        if let Ok(mut noted) = self.noted.write() {
            noted.insert(key.id.clone(), Instant::now());
        }
        let mut key = key.clone();
        key.last_used_at = Some(OffsetDateTime::now_utc());
        // Only over a key that still exists: a revoked key stays revoked.
        let Ok(Some(entry)) = self.store.entry(&key.id).await else {
            return;
        };
        if entry.operation != kv::Operation::Put {
            return;
        }
        match self
            .store
            .update(&key.id, wire::encode(&key), entry.revision)
            .await
        {
            Ok(_) => self.remember(key),
            Err(err) => tracing::debug!(error = %err, "cannot note the key's use"),
        }
    }

    fn remember(&self, key: ApiKey) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(key.id.clone(), key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_only_in_their_own_shape() {
        let secret = "A".repeat(43);
        let key = format!("mjk_0123456789abcdef_{secret}");
        let presented = Presented::parse(&key).unwrap();
        assert_eq!(presented.id, "0123456789abcdef");
        assert_eq!(presented.secret, secret);
        for bad in [
            "",
            "mjk_",
            "mjk_0123456789abcdef",
            &format!("mjk_0123456789abcdeg_{secret}"),
            &format!("mjk_0123456789abcdef_{}", "A".repeat(42)),
            &format!("mjk_0123456789abcdef_{}", "A.".repeat(22)),
            &format!("mjx_0123456789abcdef_{secret}"),
        ] {
            assert!(Presented::parse(bad).is_none(), "{bad:?} parsed");
        }
    }
}
