//! Every metric the service exports, named and described in one place.
//! Names follow Prometheus conventions (`_total` for counters, `_seconds` for
//! durations) and labels come from small fixed sets, never from user input.
//! The series alerts and dashboards rely on start at zero when the actor
//! that counts them starts ([`declare`]), so a rate or an `increase` has a
//! value before the first event, and a missing series means a missing
//! process, not a quiet one.

use std::sync::OnceLock;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::ActorKind;

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
pub const TRANSCODED_AUDIO: &str = "mediajet_transcoded_audio_duration_seconds";
pub const NATS_REQUESTS: &str = "mediajet_nats_requests_total";
pub const QUEUE_JOBS: &str = "mediajet_queue_jobs";
pub const QUEUE_OLDEST_AGE: &str = "mediajet_queue_oldest_waiting_age_seconds";
pub const DEAD_LETTERS: &str = "mediajet_dead_letters";
pub const BUCKET_BYTES: &str = "mediajet_bucket_bytes";
pub const BUCKET_LIMIT: &str = "mediajet_bucket_limit_bytes";
pub const JETSTREAM_STORAGE: &str = "mediajet_jetstream_storage_bytes";
pub const READINESS_CHECK: &str = "mediajet_readiness_check_ok";
pub const ACTOR_UP: &str = "mediajet_actor_up";
pub const IMPORTS: &str = "mediajet_imports_total";
pub const WEBHOOK_ATTEMPTS: &str = "mediajet_webhook_attempts_total";
pub const WEBHOOK_ATTEMPT_DURATION: &str = "mediajet_webhook_attempt_duration_seconds";
pub const WEBHOOK_DELIVERIES: &str = "mediajet_webhook_deliveries_total";

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
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            WEBHOOK_ATTEMPT_DURATION.to_string(),
                        ),
                        &[0.05, 0.25, 1.0, 2.5, 5.0, 10.0],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(TRANSCODED_AUDIO.to_string()),
                        &[1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 10800.0],
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
        "Wall time of a completed transcode, from pull to stored output"
    );
    describe_histogram!(
        TRANSCODED_AUDIO,
        Unit::Seconds,
        "Length of the audio a completed transcode produced"
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
    describe_counter!(
        NATS_REQUESTS,
        "NATS service requests answered, by actor, endpoint and outcome"
    );
    describe_gauge!(
        QUEUE_JOBS,
        "Jobs in the work queue: waiting for a transcoder, or running"
    );
    describe_gauge!(
        QUEUE_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest job waiting for a transcoder (0 when none waits)"
    );
    describe_gauge!(
        DEAD_LETTERS,
        "Work items given up on, kept in the dead-letter stream"
    );
    describe_gauge!(BUCKET_BYTES, Unit::Bytes, "Bytes a media bucket holds");
    describe_gauge!(
        BUCKET_LIMIT,
        Unit::Bytes,
        "Most bytes a media bucket may hold (0: unbounded)"
    );
    describe_gauge!(
        JETSTREAM_STORAGE,
        Unit::Bytes,
        "JetStream file storage the account uses"
    );
    describe_gauge!(
        READINESS_CHECK,
        "Whether a readiness check of this process passes (1) or fails (0)"
    );
    describe_gauge!(
        ACTOR_UP,
        "Whether an actor of this process runs its worker (1) or not (0)"
    );
    describe_counter!(
        IMPORTS,
        "URL imports that ended, by outcome (stored, failed)"
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by outcome (delivered, failed, gone)"
    );
    describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        Unit::Seconds,
        "Time a webhook delivery attempt took, redirects included"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook deliveries that ended, by outcome (delivered, given_up)"
    );
}

/// Starts at zero the series that `actor` counts, as its process starts.
pub fn declare(actor: ActorKind) {
    counter!(ACTOR_RESTARTS, "actor" => actor.name()).increment(0);
    counter!(REFUSED, "limit" => "connections").increment(0);
    match actor {
        ActorKind::Auth => {
            for outcome in ["success", "failure"] {
                counter!(LOGINS, "outcome" => outcome).increment(0);
            }
            counter!(REFUSED, "limit" => "password_checks").increment(0);
        }
        ActorKind::Ingest => {
            counter!(UPLOAD_BYTES).increment(0);
            for format in crate::audio::FORMATS {
                counter!(JOBS_SUBMITTED, "format" => format.name()).increment(0);
            }
            for limit in [
                "unfinished_jobs",
                "quota",
                "login_throttle",
                "event_streams",
            ] {
                counter!(REFUSED, "limit" => limit).increment(0);
            }
            // Until the first sample: nothing queued and no dead letters,
            // which is the truth before any transcoder made its streams.
            queue(0.0, 0.0, 0.0);
            dead_letters(0.0);
            for outcome in ["stored", "failed"] {
                counter!(IMPORTS, "outcome" => outcome).increment(0);
            }
        }
        ActorKind::Transcoder => {
            for state in ["completed", "failed", "canceled"] {
                counter!(JOBS_FINISHED, "state" => state).increment(0);
            }
            counter!(TRANSCODE_RETRIES).increment(0);
            gauge!(TRANSCODES_IN_FLIGHT).increment(0.0);
        }
        ActorKind::Mailer => {
            for outcome in ["delivered", "failed", "gone"] {
                counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(0);
            }
            for outcome in ["delivered", "given_up"] {
                counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
            }
            // Registered, so the histogram's series exist before the first
            // attempt.
            let _ = histogram!(WEBHOOK_ATTEMPT_DURATION);
        }
    }
}

/// Starts at zero the email counters of the transport a mailer uses.
pub fn declare_emails(transport: &'static str) {
    for outcome in ["sent", "error"] {
        counter!(EMAILS, "transport" => transport, "outcome" => outcome).increment(0);
    }
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

pub fn job_finished(state: &'static str) {
    counter!(JOBS_FINISHED, "state" => state).increment(1);
}

/// A transcode that stored its audio: its wall time and the audio's length,
/// whose rates' ratio is the realtime factor.
pub fn transcode_completed(seconds: f64, audio_seconds: f64) {
    histogram!(TRANSCODE_DURATION).record(seconds);
    histogram!(TRANSCODED_AUDIO).record(audio_seconds);
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

/// A NATS service request answered by `actor`'s `endpoint`, with the HTTP-like
/// status of its reply.
pub fn nats_request(actor: &'static str, endpoint: &str, status: u16) {
    let outcome = match status {
        ..400 => "ok",
        400..=499 => "client_error",
        _ => "server_error",
    };
    counter!(NATS_REQUESTS, "actor" => actor, "endpoint" => endpoint.to_string(), "outcome" => outcome)
        .increment(1);
}

/// What Ingest last saw of the work queue (NaN: it could not see).
pub fn queue(waiting: f64, running: f64, oldest_waiting_seconds: f64) {
    gauge!(QUEUE_JOBS, "state" => "waiting").set(waiting);
    gauge!(QUEUE_JOBS, "state" => "running").set(running);
    gauge!(QUEUE_OLDEST_AGE).set(oldest_waiting_seconds);
}

pub fn dead_letters(count: f64) {
    gauge!(DEAD_LETTERS).set(count);
}

/// A media bucket's size and bound (`limit` 0 when it has none).
pub fn bucket(bucket: &'static str, bytes: f64, limit: f64) {
    gauge!(BUCKET_BYTES, "bucket" => bucket).set(bytes);
    gauge!(BUCKET_LIMIT, "bucket" => bucket).set(limit);
}

pub fn jetstream_storage(bytes: f64) {
    gauge!(JETSTREAM_STORAGE).set(bytes);
}

pub fn readiness_check(check: &'static str, ok: bool) {
    gauge!(READINESS_CHECK, "check" => check).set(if ok { 1.0 } else { 0.0 });
}

pub fn actor_up(actor: &'static str, running: bool) {
    gauge!(ACTOR_UP, "actor" => actor).set(if running { 1.0 } else { 0.0 });
}

/// A URL import ended: `stored` or `failed`.
pub fn import(outcome: &'static str) {
    counter!(IMPORTS, "outcome" => outcome).increment(1);
}

/// A webhook delivery attempt: `delivered`, `failed` (to be retried, or
/// given up on) or `gone` (410); and, when it ends the delivery, how.
pub fn webhook_attempt(outcome: &'static str, seconds: f64, ended: Option<&'static str>) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
    histogram!(WEBHOOK_ATTEMPT_DURATION).record(seconds);
    if let Some(ended) = ended {
        counter!(WEBHOOK_DELIVERIES, "outcome" => ended).increment(1);
    }
}
