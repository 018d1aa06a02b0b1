//! Every metric the service exports, named and described in one place.
//! Names follow Prometheus conventions (`_total` for counters, `_seconds` for
//! durations) and labels come from small fixed sets, never from user input.

use std::sync::OnceLock;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "mediajet_http_requests_total";
pub const HTTP_DURATION: &str = "mediajet_http_request_duration_seconds";
pub const LOGINS: &str = "mediajet_logins_total";
pub const TOKEN_REFRESHES: &str = "mediajet_token_refreshes_total";
pub const SESSIONS_REVOKED: &str = "mediajet_sessions_revoked_total";
pub const JOBS_SUBMITTED: &str = "mediajet_jobs_submitted_total";
pub const UPLOAD_BYTES: &str = "mediajet_upload_bytes_total";
pub const JOBS_FINISHED: &str = "mediajet_jobs_finished_total";
pub const TRANSCODE_DURATION: &str = "mediajet_transcode_duration_seconds";
pub const TRANSCODES_IN_FLIGHT: &str = "mediajet_transcodes_in_flight";
pub const TRANSCODE_RETRIES: &str = "mediajet_transcode_retries_total";
pub const EMAILS: &str = "mediajet_emails_total";
pub const ACTOR_RESTARTS: &str = "mediajet_actor_restarts_total";
pub const REFUSED: &str = "mediajet_refused_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders
/// the `/metrics` page. Later calls (several services in one test process)
/// share the first recorder.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(HTTP_DURATION.to_string()),
                    &[0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(TRANSCODE_DURATION.to_string()),
                        &[0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
                    )
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program's);
            // then this handle renders an empty page rather than failing start-up.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route and status class"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by route"
    );
    describe_counter!(LOGINS, "Login attempts, by outcome");
    describe_counter!(
        TOKEN_REFRESHES,
        "Refresh token exchanges, by outcome (success, refused, replayed, unavailable)"
    );
    describe_counter!(
        SESSIONS_REVOKED,
        "Sessions ended early, by reason (logout, replay)"
    );
    describe_counter!(JOBS_SUBMITTED, "Jobs accepted, by output format");
    describe_counter!(UPLOAD_BYTES, Unit::Bytes, "Bytes of uploaded media stored");
    describe_counter!(
        JOBS_FINISHED,
        "Jobs that reached a terminal state, by state"
    );
    describe_histogram!(
        TRANSCODE_DURATION,
        Unit::Seconds,
        "Wall time of a transcode, from pull to stored output"
    );
    describe_gauge!(TRANSCODES_IN_FLIGHT, "Encodes running in this process");
    describe_counter!(
        TRANSCODE_RETRIES,
        "Work items handed back to the queue for another try"
    );
    describe_counter!(EMAILS, "Notification emails, by transport and outcome");
    describe_counter!(ACTOR_RESTARTS, "Actor restarts by the supervisor, by actor");
    describe_counter!(
        REFUSED,
        "Connections and requests refused by a limit, by the limit"
    );
}

pub fn http_request(route: &str, status: u16, seconds: f64) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!(HTTP_REQUESTS, "route" => route.to_string(), "status" => class).increment(1);
    histogram!(HTTP_DURATION, "route" => route.to_string()).record(seconds);
}

pub fn login(success: bool) {
    counter!(LOGINS, "outcome" => if success { "success" } else { "failure" }).increment(1);
}

pub fn token_refresh(outcome: &'static str) {
    counter!(TOKEN_REFRESHES, "outcome" => outcome).increment(1);
}

pub fn session_revoked(reason: &'static str) {
    counter!(SESSIONS_REVOKED, "reason" => reason).increment(1);
}

pub fn job_submitted(format: &'static str, bytes: u64) {
    counter!(JOBS_SUBMITTED, "format" => format).increment(1);
    counter!(UPLOAD_BYTES).increment(bytes);
}

pub fn job_finished(state: &'static str, seconds: f64) {
    counter!(JOBS_FINISHED, "state" => state).increment(1);
    histogram!(TRANSCODE_DURATION).record(seconds);
}

pub fn transcodes_in_flight(delta: f64) {
    gauge!(TRANSCODES_IN_FLIGHT).increment(delta);
}

pub fn transcode_retry() {
    counter!(TRANSCODE_RETRIES).increment(1);
}

pub fn email(transport: &'static str, sent: bool) {
    counter!(EMAILS, "transport" => transport, "outcome" => if sent { "sent" } else { "error" })
        .increment(1);
}

pub fn actor_restart(actor: &'static str) {
    counter!(ACTOR_RESTARTS, "actor" => actor).increment(1);
}

/// A connection or request refused by one of the abuse limits (`limit`
/// names which: a handful of fixed values).
pub fn refused(limit: &'static str) {
    counter!(REFUSED, "limit" => limit).increment(1);
}

pub fn http_connection_refused() {
    refused("connections");
}
