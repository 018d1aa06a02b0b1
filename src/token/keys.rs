//! The public keys Auth publishes, mirrored from the keys bucket.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_nats::jetstream::kv;
use jsonwebtoken::DecodingKey;
use tokio_util::sync::DropGuard;

use super::mirror::mirror_bucket;
use super::{TokenError, UNKNOWN_KEY_MEMORY, UNKNOWN_KEYS, is_key_id};
use crate::wire;

/// The public keys Auth currently publishes, mirrored from the keys bucket:
/// a key Auth retires (deletes) stops verifying anything within
/// milliseconds. A key id the mirror does not know yet (published a moment
/// ago) is read from the bucket once; one the bucket does not know either
/// is remembered as unknown for a minute.
pub(super) struct PublishedKeys {
    store: kv::Store,
    known: Arc<RwLock<HashMap<String, DecodingKey>>>,
    unknown: RwLock<HashMap<String, std::time::Instant>>,
    _watching: DropGuard,
}

impl PublishedKeys {
    pub(super) async fn watch(store: kv::Store) -> Self {
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

    pub(super) fn has(&self, kid: &str) -> bool {
        self.known.read().is_ok_and(|known| known.contains_key(kid))
    }

    pub(super) async fn get(&self, kid: &str) -> Result<DecodingKey, TokenError> {
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
            .map_err(|err| TokenError::Unavailable(err.into()))?;
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
