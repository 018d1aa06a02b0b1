//! Users' webhook endpoints (kept in the webhooks bucket, where Mailer
//! reads them), and the fan-out: every job event a user's endpoints ask
//! for becomes one delivery on the webhooks stream, which Mailer works off
//! with its retries. A delivery's record in the deliveries bucket is made
//! here, with its body, so it can be listed and replayed.
//!
//! A job's own `notify_url` is told of its end the same way, signed with
//! its owner's job secret, which they make (and rotate) once for all their
//! jobs.

use async_nats::jetstream::{self, kv};
use base64::Engine;
use time::OffsetDateTime;

use super::Ingest;
use super::error::ApiError;
use super::view::JobView;
use crate::storage::buckets;
use crate::wire::{
    self, Delivery, DeliveryLog, DeliveryState, JOB_SECRET_ID, Job, WebhookEndpoint, WebhookEvent,
    names, subject,
};

/// Every event a job's `notify_url` is told of.
const JOB_EVENTS: [WebhookEvent; 3] = [
    WebhookEvent::JobCompleted,
    WebhookEvent::JobFailed,
    WebhookEvent::JobCanceled,
];

/// Most endpoints one user may have.
pub const MAX_ENDPOINTS: usize = 10;
/// Most deliveries an endpoint's list shows, newest first.
const LISTED_DELIVERIES: usize = 100;

/// The `webhook-id` of `job`'s `event`: the same for every endpoint told.
fn message_id(job: &Job, event: WebhookEvent) -> String {
    let state = event.as_str().trim_start_matches("job.");
    format!("msg_{}_{state}", job.id)
}

/// A new signing secret: `whsec_` and 24 random bytes in base64, as the
/// Standard Webhooks libraries take it.
pub(super) fn new_secret() -> Result<String, ApiError> {
    let mut key = [0u8; 24];
    getrandom::getrandom(&mut key).map_err(ApiError::internal)?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

impl Ingest {
    /// The keys in `bucket` that match `pattern` (`<owner>.*`).
    async fn keys_matching(
        &self,
        bucket: &kv::Store,
        pattern: &str,
    ) -> Result<Vec<String>, ApiError> {
        buckets::keys_matching(bucket, pattern)
            .await
            .map_err(|e| ApiError::unavailable("the webhooks", e))
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &kv::Store,
        key: &str,
    ) -> Result<Option<(T, u64)>, ApiError> {
        buckets::read_entry(bucket, key)
            .await
            .map_err(|e| ApiError::unavailable("the webhooks", e))
    }

    /// `owner`'s endpoints, oldest first.
    pub(super) async fn endpoints(&self, owner: &str) -> Result<Vec<WebhookEndpoint>, ApiError> {
        let mut endpoints = Vec::new();
        for key in self
            .keys_matching(&self.webhooks, &format!("{owner}.*"))
            .await?
        {
            if let Some((endpoint, _)) = self.read::<WebhookEndpoint>(&self.webhooks, &key).await? {
                endpoints.push(endpoint);
            }
        }
        endpoints.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(endpoints)
    }

    /// `owner`'s endpoint `id`, and its revision.
    pub(super) async fn endpoint(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<(WebhookEndpoint, u64), ApiError> {
        let well_formed = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(ApiError::NoSuchWebhook);
        }
        self.read(&self.webhooks, &format!("{owner}.{id}"))
            .await?
            .ok_or(ApiError::NoSuchWebhook)
    }

    /// Stores `endpoint`: over `revision` when given (a change made in the
    /// meantime, such as Mailer disabling it, is not lost: 409), else as new.
    pub(super) async fn store_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        revision: Option<u64>,
    ) -> Result<(), ApiError> {
        let value = wire::encode(endpoint);
        match revision {
            Some(revision) => self
                .webhooks
                .update(endpoint.key(), value, revision)
                .await
                .map(|_| ())
                .map_err(|e| match e.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => ApiError::Conflict(
                        "changed_meanwhile",
                        "the webhook changed meanwhile; read it again".into(),
                    ),
                    _ => ApiError::unavailable("the webhooks", e),
                }),
            None => self
                .webhooks
                .create(endpoint.key(), value)
                .await
                .map(|_| ())
                .map_err(|e| ApiError::unavailable("the webhooks", e)),
        }
    }

    pub(super) async fn delete_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), ApiError> {
        self.webhooks
            .purge(endpoint.key())
            .await
            .map_err(|e| ApiError::unavailable("the webhooks", e))
    }

    /// `owner`'s job secret, if they made one.
    async fn job_secret(&self, owner: &str) -> Result<Option<(WebhookEndpoint, u64)>, ApiError> {
        self.read(&self.webhooks, &wire::job_secret_key(owner))
            .await
    }

    /// Makes `owner`'s job secret, or a new one in place of the old.
    pub(super) async fn renew_job_secret(&self, owner: &str) -> Result<WebhookEndpoint, ApiError> {
        let current = self.job_secret(owner).await?;
        let secret = WebhookEndpoint {
            v: wire::VERSION,
            id: JOB_SECRET_ID.to_string(),
            owner: owner.to_string(),
            url: String::new(),
            events: JOB_EVENTS.to_vec(),
            secret: new_secret()?,
            disabled: false,
            disabled_reason: None,
            created_at: OffsetDateTime::now_utc(),
        };
        self.store_endpoint(&secret, current.map(|(_, revision)| revision))
            .await?;
        Ok(secret)
    }

    /// Refuses a job's `notify_url` that names a private address (unless
    /// allowed), or whose owner has no job secret to sign with yet.
    pub(super) async fn check_notify_url(&self, owner: &str, url: &str) -> Result<(), ApiError> {
        let refused = |message: String| ApiError::BadRequest("invalid_notify_url", message);
        let parsed = crate::targets::parse(url).map_err(|e| refused(e.to_string()))?;
        crate::targets::check_literal(&parsed, &self.targets)
            .map_err(|e| refused(e.to_string()))?;
        if self.job_secret(owner).await?.is_none() {
            return Err(ApiError::BadRequest(
                "no_job_secret",
                "make a job secret first (POST /v1/webhooks/job-secret): it signs what is \
                 POSTed to `notify_url`"
                    .into(),
            ));
        }
        Ok(())
    }

    /// What the deliveries to `job`'s `notify_url` came to, oldest first.
    pub(super) async fn job_deliveries(&self, job: &Job) -> Result<Vec<DeliveryLog>, ApiError> {
        let mut logs = Vec::new();
        for event in JOB_EVENTS {
            let key = format!(
                "{}.{}",
                wire::job_secret_key(&job.owner),
                message_id(job, event)
            );
            if let Some((log, _)) = self.read::<DeliveryLog>(&self.deliveries, &key).await? {
                logs.push(log);
            }
        }
        logs.sort_by_key(|log| log.created_at);
        Ok(logs)
    }

    /// The deliveries to `endpoint`, newest first.
    pub(super) async fn deliveries(
        &self,
        endpoint: &WebhookEndpoint,
    ) -> Result<Vec<DeliveryLog>, ApiError> {
        let keys = self
            .keys_matching(&self.deliveries, &format!("{}.*", endpoint.id))
            .await?;
        let mut logs = Vec::new();
        for key in keys {
            if let Some((log, _)) = self.read::<DeliveryLog>(&self.deliveries, &key).await? {
                logs.push(log);
            }
        }
        logs.sort_by_key(|log| std::cmp::Reverse(log.created_at));
        logs.truncate(LISTED_DELIVERIES);
        Ok(logs)
    }

    /// Queues `delivery` (again, for a replay): its record says pending.
    /// `message_id` deduplicates the queueing, not the delivery.
    pub(super) async fn queue_delivery(
        &self,
        delivery: Delivery,
        endpoint_id: &str,
        message_id: String,
    ) -> Result<(), ApiError> {
        let unavailable = |e: crate::error::BoxError| ApiError::unavailable("the webhooks", e);
        let key = format!("{endpoint_id}.{}", delivery.message_id);
        let mut log = match self.read::<DeliveryLog>(&self.deliveries, &key).await? {
            Some((log, _)) => log,
            None => DeliveryLog {
                v: wire::VERSION,
                delivery: delivery.clone(),
                state: DeliveryState::Pending,
                created_at: OffsetDateTime::now_utc(),
                attempts: Vec::new(),
            },
        };
        log.state = DeliveryState::Pending;
        self.deliveries
            .put(&key, wire::encode(&log))
            .await
            .map_err(|e| unavailable(e.into()))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id.as_str());
        self.js
            .publish_with_headers(subject::WEBHOOK_DELIVER, headers, wire::encode(&delivery))
            .await
            .map_err(|e| unavailable(e.into()))?
            .await
            .map_err(|e| unavailable(e.into()))?;
        Ok(())
    }

    /// Queues a delivery of `job`'s end to each of its owner's endpoints
    /// that asked for it.
    pub(super) async fn fan_out(&self, job: &Job) -> Result<(), ApiError> {
        let Some(event) = WebhookEvent::of(job.state) else {
            return Ok(());
        };
        let endpoints = self.endpoints(&job.owner).await?;
        let wanted: Vec<&WebhookEndpoint> = endpoints
            .iter()
            .filter(|e| !e.disabled && e.events.contains(&event))
            .collect();
        if wanted.is_empty() && job.notify_url.is_none() {
            return Ok(());
        }
        // Standard Webhooks' envelope: what happened, when, and the job as
        // its owner sees it.
        let payload = serde_json::json!({
            "type": event.as_str(),
            "timestamp": job
                .finished_at
                .unwrap_or(job.updated_at)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "data": JobView::new(job.clone(), None, &self.links),
        })
        .to_string();
        let message_id = message_id(job, event);
        let delivery = |endpoint: String, url: Option<String>| Delivery {
            v: wire::VERSION,
            endpoint,
            message_id: message_id.clone(),
            event,
            job: job.id.to_string(),
            payload: payload.clone(),
            url,
        };
        for endpoint in wanted {
            let dedup = format!("{message_id}.{}", endpoint.id);
            self.queue_delivery(delivery(endpoint.key(), None), &endpoint.id, dedup)
                .await?;
        }
        if let Some(url) = &job.notify_url {
            let key = wire::job_secret_key(&job.owner);
            let dedup = format!("{message_id}.{JOB_SECRET_ID}");
            self.queue_delivery(delivery(key.clone(), Some(url.clone())), &key, dedup)
                .await?;
        }
        Ok(())
    }

    /// Works off the job events for webhooks until `shutdown`: each is
    /// acknowledged once its deliveries are queued, else retried. One at a
    /// time: queueing is quick, and the deliveries are what take long.
    pub(super) async fn run_fan_out(
        self: std::sync::Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<(), crate::actors::WorkerError> {
        use crate::actors::{WorkerError, work_off};
        use crate::storage::jetstream as js_setup;
        let consumer = js_setup::events_consumer(
            &self.events,
            names::WEBHOOK_FANOUT_CONSUMER,
            subject::terminal_job_events(),
        )
        .await
        .map_err(|e| WorkerError::new("webhook fan-out consumer", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| WorkerError::new("webhook fan-out consumer", e))?;
        work_off(
            names::WEBHOOK_FANOUT_CONSUMER,
            messages,
            1,
            &shutdown,
            |message| {
                let ingest = self.clone();
                async move { ingest.fan_out_event(message).await }
            },
        )
        .await
    }

    async fn fan_out_event(&self, message: jetstream::Message) {
        let job: Job = match wire::decode(&message.payload) {
            Ok(job) => job,
            Err(_) => {
                let _ = message.ack_with(jetstream::AckKind::Term).await;
                return;
            }
        };
        match self.fan_out(&job).await {
            Ok(()) => {
                let _ = message.ack().await;
            }
            Err(err) => {
                tracing::warn!(job = %job.id, error = %crate::error::chain(&err), "cannot queue the webhooks; retrying");
                let delay = std::time::Duration::from_secs(2);
                let _ = message.ack_with(jetstream::AckKind::Nak(Some(delay))).await;
            }
        }
    }
}
