//! Webhooks: a user's endpoints (made with a signing secret shown once,
//! listed, changed, rotated, disabled, deleted), and what the deliveries to
//! each came to, any of which can be sent again.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::Caller;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;
use crate::actors::ingest::webhooks::{MAX_ENDPOINTS, new_secret};
use crate::targets;
use crate::wire::{self, Attempt, DeliveryLog, DeliveryState, WebhookEndpoint, WebhookEvent};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewWebhook {
    /// Where deliveries are POSTed: http or https, a public address.
    #[schema(max_length = 2048, example = "https://example.com/hooks/mediajet")]
    url: String,
    /// What it is told of.
    #[schema(min_items = 1, max_items = 3)]
    events: Vec<WebhookEvent>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookChanges {
    #[schema(max_length = 2048)]
    url: Option<String>,
    #[schema(min_items = 1, max_items = 3)]
    events: Option<Vec<WebhookEvent>>,
    /// Off: nothing is delivered to it; on again: deliveries resume.
    disabled: Option<bool>,
}

/// An endpoint as listed: never its secret.
#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
pub(super) struct WebhookView {
    id: String,
    url: String,
    events: Vec<WebhookEvent>,
    disabled: bool,
    /// Why it was disabled, when the service did it (the receiver answered 410).
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<WebhookEndpoint> for WebhookView {
    fn from(endpoint: WebhookEndpoint) -> Self {
        WebhookView {
            id: endpoint.id,
            url: endpoint.url,
            events: endpoint.events,
            disabled: endpoint.disabled,
            disabled_reason: endpoint.disabled_reason,
            created_at: endpoint.created_at,
        }
    }
}

/// An endpoint just made, or its secret just rotated: the one time the
/// secret is shown.
#[derive(Serialize, ToSchema)]
pub(super) struct WebhookWithSecret {
    /// `whsec_…`: verify deliveries with it (Standard Webhooks).
    secret: String,
    #[serde(flatten)]
    webhook: WebhookView,
}

/// One delivery and its attempts.
#[derive(Serialize, ToSchema)]
pub(super) struct DeliveryView {
    /// Its `webhook-id`.
    id: String,
    event: WebhookEvent,
    job: String,
    state: DeliveryState,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    attempts: Vec<Attempt>,
}

impl From<DeliveryLog> for DeliveryView {
    fn from(log: DeliveryLog) -> Self {
        DeliveryView {
            id: log.delivery.message_id,
            event: log.delivery.event,
            job: log.delivery.job,
            state: log.state,
            created_at: log.created_at,
            attempts: log.attempts,
        }
    }
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest("invalid_webhook", format!("bad JSON body: {e}")))
}

/// The receiver's address, refused unless http(s) with a public address
/// (a name is checked again each time it is resolved for a delivery).
fn checked_url(ingest: &Ingest, url: &str) -> Result<String, ApiError> {
    let refused = |e: targets::TargetError| ApiError::BadRequest("invalid_url", e.to_string());
    let parsed = targets::parse(url).map_err(refused)?;
    targets::check_literal(&parsed, &ingest.targets).map_err(refused)?;
    Ok(parsed.to_string())
}

fn checked_events(mut events: Vec<WebhookEvent>) -> Result<Vec<WebhookEvent>, ApiError> {
    if !(1..=3).contains(&events.len()) {
        return Err(ApiError::BadRequest(
            "invalid_webhook",
            "a webhook takes one to three events".into(),
        ));
    }
    events.sort_by_key(|event| event.as_str());
    events.dedup();
    Ok(events)
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    summary = "Add a webhook",
    description = "Deliveries are POSTed to the URL, signed per the Standard Webhooks \
        specification with the secret in this answer (shown once), and retried for about a \
        day while the receiver fails; a 410 answer disables the webhook.",
    request_body = NewWebhook,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The webhook and its secret", body = WebhookWithSecret),
        (status = 400, description = "A bad URL (not http(s), a private address, credentials in it) or events", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 409, description = "The most webhooks allowed", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn create_webhook(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let asked: NewWebhook = json_body(&body?)?;
    let url = checked_url(&ingest, &asked.url)?;
    let events = checked_events(asked.events)?;
    if ingest.endpoints(&caller.sub).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::Conflict(
            "too_many_webhooks",
            format!("you have {MAX_ENDPOINTS} webhooks, the most allowed"),
        ));
    }
    let mut id = [0u8; 8];
    getrandom::getrandom(&mut id).map_err(ApiError::internal)?;
    let endpoint = WebhookEndpoint {
        v: wire::VERSION,
        id: crate::hex::encode(&id),
        owner: caller.sub.clone(),
        url,
        events,
        secret: new_secret()?,
        disabled: false,
        disabled_reason: None,
        created_at: OffsetDateTime::now_utc(),
    };
    ingest.store_endpoint(&endpoint, None).await?;
    let secret = endpoint.secret.clone();
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            secret,
            webhook: endpoint.into(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    summary = "The caller's webhooks, without their secrets",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The webhooks, oldest first", body = [WebhookView]),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn list_webhooks(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let endpoints = ingest.endpoints(&caller.sub).await?;
    Ok(Json(endpoints.into_iter().map(WebhookView::from).collect()))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    summary = "Change a webhook: its URL, its events, or whether it is on",
    params(("id" = String, Path, description = "The webhook's id")),
    request_body = WebhookChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The webhook as changed", body = WebhookView),
        (status = 400, description = "A bad URL or events", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 404, description = "No such webhook of the caller's", body = ErrorAnswer),
        (status = 409, description = "It changed meanwhile", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn change_webhook(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookView>, ApiError> {
    let changes: WebhookChanges = json_body(&body?)?;
    let (mut endpoint, revision) = ingest.endpoint(&caller.sub, &id).await?;
    if let Some(url) = changes.url {
        endpoint.url = checked_url(&ingest, &url)?;
    }
    if let Some(events) = changes.events {
        endpoint.events = checked_events(events)?;
    }
    if let Some(disabled) = changes.disabled {
        endpoint.disabled = disabled;
        endpoint.disabled_reason = None;
    }
    ingest.store_endpoint(&endpoint, Some(revision)).await?;
    Ok(Json(endpoint.into()))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate", tag = "webhooks",
    summary = "Give a webhook a new secret",
    description = "Deliveries are signed with the new secret from now on; the old one \
        verifies nothing more.",
    params(("id" = String, Path, description = "The webhook's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The webhook and its new secret", body = WebhookWithSecret),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 404, description = "No such webhook of the caller's", body = ErrorAnswer),
        (status = 409, description = "It changed meanwhile", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn rotate_secret(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let (mut endpoint, revision) = ingest.endpoint(&caller.sub, &id).await?;
    endpoint.secret = new_secret()?;
    ingest.store_endpoint(&endpoint, Some(revision)).await?;
    let secret = endpoint.secret.clone();
    Ok(Json(WebhookWithSecret {
        secret,
        webhook: endpoint.into(),
    }))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    summary = "Delete a webhook",
    params(("id" = String, Path, description = "The webhook's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted: deliveries still queued for it are dropped"),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 404, description = "No such webhook of the caller's", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn delete_webhook(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (endpoint, _) = ingest.endpoint(&caller.sub, &id).await?;
    ingest.delete_endpoint(&endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    summary = "What the deliveries to a webhook came to",
    description = "The last 100 of the past week, newest first: each attempt's time, the \
        receiver's status code (or why there was none) and latency.",
    params(("id" = String, Path, description = "The webhook's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deliveries", body = [DeliveryView]),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 404, description = "No such webhook of the caller's", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn list_deliveries(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let (endpoint, _) = ingest.endpoint(&caller.sub, &id).await?;
    let logs = ingest.deliveries(&endpoint).await?;
    Ok(Json(logs.into_iter().map(DeliveryView::from).collect()))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery}/replay", tag = "webhooks",
    summary = "Send a delivery again",
    description = "The same body and `webhook-id`, signed anew, with a fresh round of retries.",
    params(
        ("id" = String, Path, description = "The webhook's id"),
        ("delivery" = String, Path, description = "The delivery's id (its `webhook-id`)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued"),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 404, description = "No such webhook or delivery of the caller's", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn replay_delivery(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (endpoint, _) = ingest.endpoint(&caller.sub, &id).await?;
    let log = ingest
        .deliveries(&endpoint)
        .await?
        .into_iter()
        .find(|log| log.delivery.message_id == delivery)
        .ok_or(ApiError::NoSuchWebhook)?;
    let dedup = format!(
        "{}.{}.replay.{}",
        log.delivery.message_id,
        endpoint.id,
        log.attempts.len()
    );
    ingest
        .queue_delivery(log.delivery, &endpoint.id, dedup)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
