//! A job's own `notify_url`: the job secret its deliveries are signed with
//! (one per user, for all their jobs), and what the deliveries to a job's
//! `notify_url` came to.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::Caller;
use super::webhooks::DeliveryView;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;

/// A job secret just made: the one time it is shown.
#[derive(Serialize, ToSchema)]
pub(super) struct JobSecret {
    /// `whsec_…`: verify what is POSTed to your jobs' `notify_url` with it
    /// (Standard Webhooks).
    secret: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[utoipa::path(post, path = "/v1/webhooks/job-secret", tag = "webhooks",
    summary = "Make (or replace) the secret that signs deliveries to jobs' `notify_url`",
    description = "A job submitted with `notify_url` has its end (`job.completed`, \
        `job.failed`, `job.canceled`) POSTed there, signed per the Standard Webhooks \
        specification with this secret, and retried as a webhook's deliveries are. The secret \
        is shown once; making a new one ends the old.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new secret", body = JobSecret),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key without `webhooks:manage`", body = ErrorAnswer),
        (status = 409, description = "It changed meanwhile", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn renew_job_secret(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
) -> Result<Json<JobSecret>, ApiError> {
    let made = ingest.renew_job_secret(&caller.sub).await?;
    Ok(Json(JobSecret {
        secret: made.secret,
        created_at: made.created_at,
    }))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/deliveries", tag = "jobs",
    summary = "What the deliveries to a job's `notify_url` came to",
    description = "Each attempt's time, the receiver's status code (or why there was none) \
        and latency; empty while the job runs or when it names no `notify_url`.",
    params(("id" = String, Path, description = "The job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deliveries", body = [DeliveryView]),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "No such job of the caller's", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn job_deliveries(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let job = ingest.job_for(&caller.sub, &id).await?;
    let logs = ingest.job_deliveries(&job).await?;
    Ok(Json(logs.into_iter().map(DeliveryView::from).collect()))
}
