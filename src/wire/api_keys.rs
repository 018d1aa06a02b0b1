//! API keys as the keys bucket holds them: whose, what they may do, and a
//! hash of their secret (the key itself is shown once, when it is made).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::v;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    /// Submit jobs (multipart, tus, NATS), cancel and delete them, and
    /// manage presets.
    #[serde(rename = "jobs:write")]
    JobsWrite,
    /// Read jobs, their events, audio and waveforms.
    #[serde(rename = "jobs:read")]
    JobsRead,
    /// Manage the user's webhooks.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsWrite => "jobs:write",
            Scope::JobsRead => "jobs:read",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }
}

/// An API key, keyed by its id in the API keys bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    #[serde(default = "v")]
    pub v: u32,
    /// 16 hex digits, also the key's first part after `mjk_`.
    pub id: String,
    /// User id of the owner.
    pub owner: String,
    pub owner_email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub scopes: Vec<Scope>,
    /// SHA-256 (hex) of the key's secret part.
    pub secret_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}
