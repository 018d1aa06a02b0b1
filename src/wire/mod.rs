//! The NATS wire contract: every subject, stream, bucket and message type that
//! crosses an actor boundary lives here, so the contract can be read in one
//! place. Messages carry a version field `v`; a receiver rejects versions it
//! does not know instead of guessing.
//!
//! - `subject`: every subject, and the micro services' names and endpoints
//! - `names`: streams, consumers and buckets
//! - `auth`: Auth's messages, what it keeps in buckets, and its typed client
//! - `jobs`: the job, its owner record, the work item, NATS submissions
//! - `rpc`: error replies and the request helper

pub mod api_keys;
pub mod auth;
mod jobs;
pub mod names;
mod notify;
mod rpc;
pub mod subject;
mod webhooks;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use crate::audio::{AudioOptions, Cover, FORMATS, Format};
pub use api_keys::{ApiKey, Scope};
pub use auth::{
    AccountOp, AccountRequest, CreateUserRequest, Disabled, LoginRequest, LogoutReply,
    LogoutRequest, PublicKey, RefreshRequest, Revoked, Session, TokenReply, UserPage, UserReply,
};
pub use jobs::{
    Job, JobOwner, JobState, MAX_OUTPUTS, Output, OutputSpec, StatusRequest, SubmitRequest, Track,
    Waveform, WorkItem, artwork_object, cover_object, output_object, side_objects,
    waveform_objects,
};
pub use notify::{Notify, NotifySetting};
pub use rpc::{
    ERROR_CODE_HEADER, ERROR_HEADER, ErrorBody, ErrorReply, RequestError, error_reply, header_safe,
    request,
};
pub use webhooks::{
    Attempt, Delivery, DeliveryLog, DeliveryState, JOB_SECRET_ID, WebhookEndpoint, WebhookEvent,
    job_secret_key,
};

/// The version of every message type in this module.
pub const VERSION: u32 = 1;

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported message version {0} (this build speaks version {VERSION})")]
    Version(u32),
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

/// Decodes a versioned message, refusing versions this build does not speak.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    let probe: VersionProbe = serde_json::from_slice(payload)?;
    if probe.v != VERSION {
        return Err(DecodeError::Version(probe.v));
    }
    Ok(serde_json::from_slice(payload)?)
}

/// Encodes a message; the types in this module always serialize.
pub fn encode<T: Serialize>(message: &T) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(message).unwrap_or_default())
}

fn v() -> u32 {
    VERSION
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_an_unknown_version_is_refused() {
        let err = decode::<WorkItem>(br#"{"v":2,"job_id":"x"}"#).unwrap_err();
        assert!(matches!(err, DecodeError::Version(2)));
    }

    #[test]
    fn a_work_item_round_trips() {
        let item = WorkItem {
            v: VERSION,
            job_id: crate::domain::JobId::new(),
        };
        let back: WorkItem = decode(&encode(&item)).unwrap();
        assert_eq!(back.job_id, item.job_id);
    }
}
