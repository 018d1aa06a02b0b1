//! Access tokens: EdDSA-signed JWTs issued by Auth and verified locally by
//! every other actor with the public keys Auth publishes in the keys bucket,
//! so Auth is not on the request path. Revoked sessions and disabled users
//! are mirrored from their buckets by KV watches, so checking one costs no
//! round trip either.
//!
//! - `api_keys`: API keys, mirrored from their bucket, each limited to its
//!   scopes
//! - `links`: signed download links, which need no token
//! - `keys`: the mirror of the keys Auth publishes
//! - `revocations`: the mirror of revoked sessions
//! - `disabled`: the mirror of disabled and removed users
//! - `mirror`: following a bucket into memory, for both

pub mod api_keys;
mod disabled;
mod keys;
pub mod links;
mod mirror;
mod revocations;

pub use disabled::DisabledUsers;
use keys::PublishedKeys;
pub use revocations::Revocations;

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::wire::Role;

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
    #[error("token keys unavailable")]
    Unavailable(#[source] crate::error::BoxError),
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
    disabled: DisabledUsers,
}

impl Verifier {
    /// A verifier of tokens that live at most `token_ttl`. Waits (a few
    /// seconds at most) until the published keys are known.
    pub async fn watch(
        keys: kv::Store,
        revocations: Revocations,
        disabled: DisabledUsers,
        token_ttl: Duration,
    ) -> Self {
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
            disabled,
        }
    }

    /// The disabled users this verifier refuses.
    pub fn disabled(&self) -> &DisabledUsers {
        &self.disabled
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
        if self.disabled.is_disabled(&claims.sub) {
            return Err(TokenError::Invalid);
        }
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

/// The token of an `Authorization` value of the `Bearer` scheme (RFC 6750;
/// the scheme's name in any case), whether it came in an HTTP or a NATS
/// header.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What an `Authorization` value carries: an access token, or an API key
/// (`Bearer mjk_…` or `ApiKey mjk_…`).
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    Token(&'a str),
    Key(&'a str),
}

/// The credential of an `Authorization` value, whether it came in an HTTP
/// or a NATS header.
pub fn credential(authorization: &str) -> Option<Credential<'_>> {
    let (scheme, value) = authorization.trim().split_once(' ')?;
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("apikey") {
        return Some(Credential::Key(value));
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(match value.starts_with(api_keys::PREFIX) {
        true => Credential::Key(value),
        false => Credential::Token(value),
    })
}

/// Whether `kid` has the form of the key ids Auth makes (16 hex digits,
/// see `auth::keys`): only such an id may become part of a bucket key.
pub fn is_key_id(kid: &str) -> bool {
    kid.len() == 16 && kid.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Seconds since the Unix epoch, as tokens count time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_taken_in_any_case_of_the_scheme_and_nothing_else() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn an_api_key_comes_as_a_bearer_or_with_its_own_scheme() {
        assert_eq!(credential("Bearer abc"), Some(Credential::Token("abc")));
        assert_eq!(
            credential("Bearer mjk_1_x"),
            Some(Credential::Key("mjk_1_x"))
        );
        assert_eq!(
            credential("apikey mjk_1_x"),
            Some(Credential::Key("mjk_1_x"))
        );
        assert_eq!(credential("Basic abc"), None);
        assert_eq!(credential("ApiKey "), None);
    }
}
