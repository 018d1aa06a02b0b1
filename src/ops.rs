//! Endpoints every process serves: `/healthz` (alive), `/readyz` (its
//! dependencies answer) and `/metrics` (Prometheus text), plus the request
//! metrics middleware.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State as ConnectionState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;

use crate::actors::Health;
use crate::storage::db::{self, Db};
use crate::trace_context::{TRACEPARENT, TraceContext};

pub struct Ops {
    pub client: async_nats::Client,
    pub db: Option<Db>,
    pub metrics: PrometheusHandle,
    /// Whether each actor of this process runs its worker.
    pub actors: Health,
}

pub fn router(ops: Arc<Ops>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ops)
}

/// What the readiness checks found. A process without a database has no
/// `surrealdb` check.
struct Readiness {
    nats: bool,
    jetstream: bool,
    surrealdb: Option<bool>,
    /// Whether each actor of this process runs its worker.
    actors: BTreeMap<&'static str, bool>,
}

impl Readiness {
    async fn check(ops: &Ops) -> Readiness {
        let nats = ops.client.connection_state() == ConnectionState::Connected;
        let js = async_nats::jetstream::new(ops.client.clone());
        let jetstream = nats
            && tokio::time::timeout(Duration::from_secs(2), js.query_account())
                .await
                .is_ok_and(|r| r.is_ok());
        let surrealdb = match &ops.db {
            Some(db) => Some(
                tokio::time::timeout(Duration::from_secs(2), db::ping(db))
                    .await
                    .unwrap_or(false),
            ),
            None => None,
        };
        Readiness {
            nats,
            jetstream,
            surrealdb,
            actors: ops.actors.actors(),
        }
    }

    /// Each check by name, passing or not.
    fn checks(&self) -> Vec<(&'static str, bool)> {
        let mut checks = vec![
            ("nats", self.nats),
            ("jetstream", self.jetstream),
            ("actors", self.actors.values().all(|running| *running)),
        ];
        if let Some(ok) = self.surrealdb {
            checks.push(("surrealdb", ok));
        }
        checks
    }
}

async fn readyz(State(ops): State<Arc<Ops>>) -> Response {
    let readiness = Readiness::check(&ops).await;
    let mut checks = json!({
        "nats": readiness.nats,
        "jetstream": readiness.jetstream,
        "actors": readiness.actors,
    });
    if let Some(ok) = readiness.surrealdb {
        checks["surrealdb"] = json!(ok);
    }
    let failing: Vec<&str> = readiness
        .checks()
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name)
        .collect();
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": checks})),
        )
            .into_response()
    } else {
        let body = json!({
            "status": "unavailable",
            "checks": checks,
            "error": {"code": "not_ready", "message": format!("unreachable: {}", failing.join(", "))}
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// The Prometheus page, with the readiness checks run for it: an alert on a
/// failing check needs no prober besides the scrape.
async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    let readiness = Readiness::check(&ops).await;
    for (check, ok) in readiness.checks() {
        crate::metrics::readiness_check(check, ok);
    }
    for (actor, running) in &readiness.actors {
        crate::metrics::actor_up(actor, *running);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics.render(),
    )
        .into_response()
}

/// The span every request runs in: method, matched route, trace id, and
/// the job once the handler knows it (`telemetry::record_job`).
/// Failures are logged by `http::log_errors` with their causes, not here.
pub fn trace_layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), (), (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as RequestSpan)
        .on_request(())
        .on_response(())
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

type RequestSpan = fn(&Request) -> tracing::Span;

fn request_span(request: &Request) -> tracing::Span {
    let trace_id = request
        .extensions()
        .get::<TraceContext>()
        .map(TraceContext::trace_id)
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %request.method(),
        route = %matched_route(request),
        trace_id = %trace_id,
        job = tracing::field::Empty,
    )
}

/// The route a request matched, as metrics and logs name it.
fn matched_route(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string())
}

/// JSON answer for routes that do not exist.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// JSON answer for a method a route does not have.
pub async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Gives every request its trace (the client's `traceparent`, or a new
/// one) in its extensions, where the request's span and the handlers find
/// it, and records the request by matched route (never the raw path, which
/// holds job ids) and status class.
pub async fn track(mut request: Request, next: Next) -> Response {
    let route = matched_route(&request);
    let trace = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .unwrap_or_default();
    request.extensions_mut().insert(trace);
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::http_request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
