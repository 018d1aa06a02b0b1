//! Webhook deliveries: each one POSTed to its endpoint, signed per the
//! Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256>`), to a public address only
//! (`targets`), redirects followed and checked again, the answer's body
//! read to a bound and dropped. A failure is retried with a growing delay
//! for about a day; a 410 disables the endpoint. Each delivery runs in a
//! task of its own, so a slow or dead receiver holds up no other delivery,
//! and no email.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, kv};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::actors::{WorkerError, work_off};
use crate::storage::jetstream as js_setup;
use crate::targets;
use crate::wire::{self, Attempt, Delivery, DeliveryLog, DeliveryState, WebhookEndpoint, names};

/// How long one attempt may take, the answer included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer's body read (then dropped).
const MAX_ANSWER: usize = 64 * 1024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 64;
/// The wait after each failed attempt: about a day in all, then it is given
/// up on.
const RETRIES: [Duration; 10] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(8 * 3600),
    Duration::from_secs(8 * 3600),
];

/// What delivering needs.
pub(super) struct Deliverer {
    pub webhooks: kv::Store,
    pub deliveries: kv::Store,
    pub stream: jetstream::stream::Stream,
    pub targets: targets::Policy,
}

/// How one attempt went.
enum Outcome {
    Delivered(u16),
    /// The receiver wants no more: the endpoint is disabled.
    Gone,
    /// To be tried again, unless the retries are spent.
    Failed(Option<u16>, String),
}

impl Deliverer {
    /// Works off the deliveries until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let consumer = js_setup::webhook_deliveries_consumer(&self.stream)
            .await
            .map_err(|e| WorkerError::new("webhook deliveries consumer", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| WorkerError::new("webhook deliveries consumer", e))?;
        // Attempts under way end within their timeout.
        let consumer = names::WEBHOOK_DELIVERY_CONSUMER;
        work_off(consumer, messages, IN_FLIGHT, &shutdown, |message| {
            let deliverer = self.clone();
            async move { deliverer.handle(message).await }
        })
        .await
    }

    async fn handle(&self, message: jetstream::Message) {
        let Ok(delivery) = wire::decode::<Delivery>(&message.payload) else {
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        let attempt = message.info().map_or(1, |info| info.delivered.max(1));
        let endpoint = match self.webhooks.entry(&delivery.endpoint).await {
            Ok(entry) => entry
                .filter(|e| e.operation == kv::Operation::Put)
                .and_then(|e| {
                    wire::decode::<WebhookEndpoint>(&e.value)
                        .ok()
                        .map(|w| (w, e.revision))
                }),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the webhook; retrying");
                let _ = message.ack_with(AckKind::Nak(Some(RETRIES[0]))).await;
                return;
            }
        };
        // Deleted or disabled meanwhile: nothing to deliver.
        let Some((endpoint, revision)) = endpoint.filter(|(e, _)| !e.disabled) else {
            self.record(&delivery, None, DeliveryState::Failed).await;
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        let started = Instant::now();
        let outcome = self.attempt(&endpoint, &delivery).await;
        let elapsed = started.elapsed();
        let latency_ms = elapsed.as_millis() as u64;
        let mut record = Attempt {
            at: OffsetDateTime::now_utc(),
            status: None,
            latency_ms,
            error: None,
        };
        let retry = RETRIES.get(attempt as usize - 1).copied();
        let (state, ack) = match outcome {
            Outcome::Delivered(status) => {
                record.status = Some(status);
                (DeliveryState::Delivered, AckKind::Ack)
            }
            Outcome::Gone => {
                record.status = Some(410);
                // A job's own `notify_url` going away says nothing of the
                // owner's other jobs: their job secret stays.
                if delivery.url.is_none() {
                    self.disable(endpoint.clone(), revision).await;
                }
                (DeliveryState::Failed, AckKind::Term)
            }
            Outcome::Failed(status, error) => {
                record.status = status;
                record.error = Some(error);
                match retry {
                    Some(delay) => (DeliveryState::Pending, AckKind::Nak(Some(delay))),
                    None => (DeliveryState::Failed, AckKind::Term),
                }
            }
        };
        let outcome = match (&record.status, &state) {
            (_, DeliveryState::Delivered) => "delivered",
            (Some(410), DeliveryState::Failed) => "gone",
            _ => "failed",
        };
        let ended = match state {
            DeliveryState::Delivered => Some("delivered"),
            DeliveryState::Failed => Some("given_up"),
            DeliveryState::Pending => None,
        };
        crate::metrics::webhook_attempt(outcome, elapsed.as_secs_f64(), ended);
        tracing::info!(
            endpoint = %endpoint.id,
            id = %delivery.message_id,
            attempt,
            status = ?record.status,
            error = ?record.error,
            "webhook attempt"
        );
        self.record(&delivery, Some(record), state).await;
        let _ = message.ack_with(ack).await;
    }

    /// POSTs the delivery, following redirects to addresses that are
    /// allowed too.
    async fn attempt(&self, endpoint: &WebhookEndpoint, delivery: &Delivery) -> Outcome {
        let failed = |error: String| Outcome::Failed(None, error);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let Some(signature) = sign(
            &endpoint.secret,
            &delivery.message_id,
            timestamp,
            &delivery.payload,
        ) else {
            return failed("the webhook's secret is malformed".into());
        };
        let target = delivery.url.as_deref().unwrap_or(&endpoint.url);
        let url = match targets::parse(target) {
            Ok(url) => url,
            Err(err) => return failed(err.to_string()),
        };
        let deadline = tokio::time::Instant::now() + ATTEMPT_TIMEOUT;
        let client = || {
            reqwest::Client::builder()
                .timeout(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .user_agent("mediajet-webhooks")
        };
        let request = |client: &reqwest::Client, url| {
            client
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", &delivery.message_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", &signature)
                .body(delivery.payload.clone())
        };
        let mut response = match targets::follow(url, &self.targets, client, request).await {
            Ok((_, response)) => response,
            Err(targets::FollowError::BadRedirect(status)) => {
                return Outcome::Failed(Some(status), "a bad redirect".into());
            }
            Err(err) => return failed(err.to_string()),
        };
        let status = response.status();
        // The answer's body is not needed: read a little of it, so the
        // connection ends cleanly, and no more.
        let mut read = 0;
        while read < MAX_ANSWER {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        match status.as_u16() {
            200..=299 => Outcome::Delivered(status.as_u16()),
            410 => Outcome::Gone,
            code => Outcome::Failed(Some(code), format!("answered {code}")),
        }
    }

    /// Disables an endpoint whose receiver answered 410, over the revision
    /// read (its owner's change in the meantime wins).
    async fn disable(&self, mut endpoint: WebhookEndpoint, revision: u64) {
        endpoint.disabled = true;
        endpoint.disabled_reason = Some("the receiver answered 410 Gone".into());
        if let Err(err) = self
            .webhooks
            .update(endpoint.key(), wire::encode(&endpoint), revision)
            .await
        {
            tracing::warn!(error = %err, "cannot disable the webhook");
        }
    }

    /// Writes down an attempt and where the delivery stands. Best effort:
    /// the delivery itself does not depend on it.
    async fn record(&self, delivery: &Delivery, attempt: Option<Attempt>, state: DeliveryState) {
        let endpoint_id = delivery.endpoint.rsplit('.').next().unwrap_or_default();
        let key = format!("{endpoint_id}.{}", delivery.message_id);
        let mut log = match self.deliveries.get(&key).await {
            Ok(Some(value)) => match wire::decode::<DeliveryLog>(&value) {
                Ok(log) => log,
                Err(_) => return,
            },
            Ok(None) => DeliveryLog {
                v: wire::VERSION,
                delivery: delivery.clone(),
                state,
                created_at: OffsetDateTime::now_utc(),
                attempts: Vec::new(),
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot record the webhook attempt");
                return;
            }
        };
        log.state = state;
        log.attempts.extend(attempt);
        if let Err(err) = self.deliveries.put(&key, wire::encode(&log)).await {
            tracing::warn!(error = %err, "cannot record the webhook attempt");
        }
    }
}

/// The `webhook-signature` of a delivery: `v1,` and the base64 HMAC-SHA256,
/// under the secret's key, of `<id>.<timestamp>.<body>`.
fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", STANDARD.encode(tag.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("no prefix", "x", 0, ""), None);
    }
}
