//! Webhooks on the wire: a user's endpoints (the webhooks bucket), the
//! deliveries Ingest queues for them (the webhooks stream) and what each
//! delivery's attempts came to (the deliveries bucket).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{JobState, v};

/// What a webhook can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    #[serde(rename = "job.completed")]
    JobCompleted,
    #[serde(rename = "job.failed")]
    JobFailed,
    #[serde(rename = "job.canceled")]
    JobCanceled,
}

impl WebhookEvent {
    /// The event a job's terminal state is.
    pub fn of(state: JobState) -> Option<WebhookEvent> {
        match state {
            JobState::Completed => Some(WebhookEvent::JobCompleted),
            JobState::Failed => Some(WebhookEvent::JobFailed),
            JobState::Canceled => Some(WebhookEvent::JobCanceled),
            JobState::Queued | JobState::Running => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::JobCompleted => "job.completed",
            WebhookEvent::JobFailed => "job.failed",
            WebhookEvent::JobCanceled => "job.canceled",
        }
    }
}

/// A user's webhook endpoint, under `<owner>.<id>` in the webhooks bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookEndpoint {
    #[serde(default = "v")]
    pub v: u32,
    /// 16 hex digits.
    pub id: String,
    pub owner: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// `whsec_` and the base64 of the key deliveries are signed with.
    pub secret: String,
    #[serde(default)]
    pub disabled: bool,
    /// Why it was disabled when it was not its owner (a 410 answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl WebhookEndpoint {
    /// Its key in the webhooks bucket.
    pub fn key(&self) -> String {
        match self.id.as_str() {
            JOB_SECRET_ID => job_secret_key(&self.owner),
            id => format!("{}.{id}", self.owner),
        }
    }
}

/// The id of the record holding a user's job secret: what deliveries to the
/// `notify_url` of their jobs are signed with. It is kept as an endpoint
/// with no URL of its own, under the user's id alone, so that the listing
/// of their endpoints (`<owner>.*`) never shows it.
pub const JOB_SECRET_ID: &str = "jobs";

/// The key of `owner`'s job secret in the webhooks bucket.
pub fn job_secret_key(owner: &str) -> String {
    owner.to_string()
}

/// One delivery to make, on the webhooks stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(default = "v")]
    pub v: u32,
    /// The endpoint's key in the webhooks bucket.
    pub endpoint: String,
    /// `webhook-id`: the same for every attempt, and for a replay.
    pub message_id: String,
    pub event: WebhookEvent,
    pub job: String,
    /// The body, as it is signed and sent.
    pub payload: String,
    /// Where it goes when that is the job's own `notify_url` rather than
    /// the endpoint's URL; the endpoint is then its owner's job secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// How a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not attempted yet, or failed and to be tried again.
    Pending,
    Delivered,
    /// Given up on after a day of attempts, or because the endpoint was
    /// disabled.
    Failed,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The receiver's status code, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed without an answer (timeout, refused address, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A delivery's record, under `<endpoint id>.<message id>` in the
/// deliveries bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryLog {
    #[serde(default = "v")]
    pub v: u32,
    pub delivery: Delivery,
    pub state: DeliveryState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub attempts: Vec<Attempt>,
}
