//! Access tokens: EdDSA-signed JWTs issued by Auth and verified locally by
//! every other actor with the public keys Auth publishes in the keys bucket,
//! so Auth is not on the request path.

use std::collections::HashMap;
use std::sync::RwLock;

use async_nats::jetstream::kv;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

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

/// Verifies tokens against the published keys, caching each key by id.
pub struct Verifier {
    keys: kv::Store,
    cache: RwLock<HashMap<String, DecodingKey>>,
    validation: Validation,
}

impl Verifier {
    pub fn new(keys: kv::Store) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Verifier {
            keys,
            cache: RwLock::new(HashMap::new()),
            validation,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.key(&kid).await?;
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
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
