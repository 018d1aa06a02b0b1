//! Who is calling: the bearer of a session's access token, or of an API
//! key, which reaches only what its scopes allow. Which scope each route
//! needs is said here once, for HTTP and NATS alike; a route not listed
//! takes session tokens only (accounts, sessions, keys themselves).

use axum::http::Method;

use super::Ingest;
use super::error::ApiError;
use crate::token::{AUDIENCE, Claims, Credential, ISSUER, credential, unix_now};
use crate::wire::{ApiKey, Role, Scope};

/// Longest a key's caller is taken to last for what ends with its token
/// (an event stream): a key does not expire with a session.
const KEY_CALL_SECONDS: u64 = 24 * 3600;

/// What a route lets a caller in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A session's token, or an API key with this scope.
    TokenOrKey(Scope),
    /// A session's token only.
    TokenOnly,
}

/// The access `method route` (the route as the router spells it) allows.
pub fn route_access(method: &Method, route: &str) -> Access {
    use Scope::{JobsRead, JobsWrite, WebhooksManage};
    let read_or_write = match *method {
        Method::GET | Method::HEAD => JobsRead,
        _ => JobsWrite,
    };
    let scope = match route {
        "/v1/jobs" | "/v1/jobs/{id}" | "/v1/presets" | "/v1/presets/{name}" => read_or_write,
        "/v1/jobs/{id}/events"
        | "/v1/jobs/{id}/deliveries"
        | "/v1/jobs/{id}/output"
        | "/v1/jobs/{id}/outputs/{n}"
        | "/v1/jobs/{id}/outputs/{n}/tracks/{k}"
        | "/v1/jobs/{id}/waveform.json"
        | "/v1/jobs/{id}/waveform.png"
        | "/download" => JobsRead,
        "/v1/jobs/{id}/links" | "/v1/uploads" | "/v1/uploads/{id}" | "/upload" => JobsWrite,
        route if route.starts_with("/v1/webhooks") => WebhooksManage,
        _ => return Access::TokenOnly,
    };
    Access::TokenOrKey(scope)
}

impl Ingest {
    /// The caller an `Authorization` value names, let in with `access`.
    pub(super) async fn authenticate(
        &self,
        authorization: Option<&str>,
        access: Access,
    ) -> Result<Claims, ApiError> {
        match authorization.and_then(credential) {
            None => Err(ApiError::Unauthorized),
            Some(Credential::Token(token)) => Ok(self.verifier.verify(token).await?),
            Some(Credential::Key(presented)) => {
                let key = self
                    .api_keys
                    .check(presented)
                    .filter(|key| !self.verifier.disabled().is_disabled(&key.owner))
                    .ok_or(ApiError::Unauthorized)?;
                let scope = match access {
                    Access::TokenOrKey(scope) => scope,
                    Access::TokenOnly => {
                        return Err(ApiError::Forbidden(
                            "an API key cannot be used here; log in".into(),
                        ));
                    }
                };
                if !key.scopes.contains(&scope) {
                    return Err(ApiError::Forbidden(format!(
                        "this API key lacks the scope `{}`",
                        scope.as_str()
                    )));
                }
                let keys = self.api_keys.clone();
                let used = key.clone();
                tokio::spawn(async move { keys.used(&used).await });
                Ok(key_caller(&key))
            }
        }
    }
}

/// The claims a key's caller is taken to have: its owner, never an admin.
fn key_caller(key: &ApiKey) -> Claims {
    let now = unix_now();
    let expires = key
        .expires_at
        .map_or(u64::MAX, |at| at.unix_timestamp().max(0) as u64);
    Claims {
        sub: key.owner.clone(),
        email: key.owner_email.clone(),
        role: Role::User,
        iss: ISSUER.to_string(),
        aud: AUDIENCE.to_string(),
        iat: now,
        exp: expires.min(now + KEY_CALL_SECONDS),
        sid: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reach_jobs_and_webhooks_by_scope_and_nothing_of_accounts() {
        let get = |route| route_access(&Method::GET, route);
        let post = |route| route_access(&Method::POST, route);
        assert_eq!(get("/v1/jobs"), Access::TokenOrKey(Scope::JobsRead));
        assert_eq!(post("/v1/jobs"), Access::TokenOrKey(Scope::JobsWrite));
        let delete = route_access(&Method::DELETE, "/v1/jobs/{id}");
        assert_eq!(delete, Access::TokenOrKey(Scope::JobsWrite));
        assert_eq!(
            route_access(&Method::PATCH, "/v1/uploads/{id}"),
            Access::TokenOrKey(Scope::JobsWrite)
        );
        assert_eq!(
            post("/v1/webhooks/{id}/rotate"),
            Access::TokenOrKey(Scope::WebhooksManage)
        );
        for route in [
            "/v1/me",
            "/v1/me/password",
            "/v1/users",
            "/v1/api-keys",
            "/v1/logout",
        ] {
            assert_eq!(get(route), Access::TokenOnly, "{route}");
            assert_eq!(post(route), Access::TokenOnly, "{route}");
        }
    }
}
