//! Subjects. Everything the service publishes or serves starts with `mediajet.`.

use super::JobState;

/// Name under which Auth registers as a NATS micro service (`$SRV` discovery).
pub const AUTH_SERVICE: &str = "mediajet-auth";
/// Subject group of the Auth service endpoints.
pub const AUTH_GROUP: &str = "mediajet.auth";
/// Endpoint (inside [`AUTH_GROUP`]) that exchanges credentials for a token.
pub const LOGIN_ENDPOINT: &str = "login";
/// Endpoint (inside [`AUTH_GROUP`]) that creates a user; needs an admin token.
pub const CREATE_USER_ENDPOINT: &str = "users.create";
/// Endpoint (inside [`AUTH_GROUP`]) that exchanges a refresh token for
/// a new pair of tokens.
pub const REFRESH_ENDPOINT: &str = "refresh";
/// Endpoint (inside [`AUTH_GROUP`]) that ends a login session.
pub const LOGOUT_ENDPOINT: &str = "logout";
/// Full subject of the login endpoint.
pub const LOGIN: &str = "mediajet.auth.login";
/// Full subject of the refresh endpoint.
pub const REFRESH: &str = "mediajet.auth.refresh";
/// Full subject of the logout endpoint.
pub const LOGOUT: &str = "mediajet.auth.logout";
/// Full subject of the user creation endpoint.
pub const CREATE_USER: &str = "mediajet.auth.users.create";
/// Endpoint (inside [`AUTH_GROUP`]) for accounts: one's own (read it,
/// change one's password) and, for admins, anyone's (list, change, remove).
pub const ACCOUNTS_ENDPOINT: &str = "accounts";
/// Full subject of the accounts endpoint.
pub const ACCOUNTS: &str = "mediajet.auth.accounts";
/// Name under which Ingest registers as a NATS micro service.
pub const INGEST_SERVICE: &str = "mediajet-ingest";
/// Subject group of the Ingest service endpoints.
pub const JOBS_GROUP: &str = "mediajet.jobs";
/// Endpoint (inside [`JOBS_GROUP`]) that creates a job from an object
/// already in the uploads bucket.
pub const SUBMIT_ENDPOINT: &str = "submit";
/// Endpoint (inside [`JOBS_GROUP`]) that tells a job's state.
pub const STATUS_ENDPOINT: &str = "status";
/// Full subject of the submit endpoint.
pub const SUBMIT: &str = "mediajet.jobs.submit";
/// Full subject of the status endpoint.
pub const STATUS: &str = "mediajet.jobs.status";
/// Webhook deliveries to make.
pub const WEBHOOK_DELIVER: &str = "mediajet.webhooks.deliver";
/// Jobs whose input is to be fetched from a URL (work items, for Ingest).
pub const WORK_IMPORT: &str = "mediajet.work.import";
/// Work items for the transcoders.
pub const WORK_TRANSCODE: &str = "mediajet.work.transcode";
/// Work items that could not be processed, kept for an operator.
pub const DEAD_TRANSCODE: &str = "mediajet.dead.transcode";
/// Every job event.
pub const JOB_EVENTS: &str = "mediajet.events.job.>";

/// Every job that starts encoding: the queue moves.
pub const JOB_STARTS: &str = "mediajet.events.job.*.running";

/// The subject of one job event: `mediajet.events.job.<id>.<state>`.
pub fn job_event(job_id: &str, state: JobState) -> String {
    format!("mediajet.events.job.{job_id}.{}", state.as_str())
}

/// Filter matching the events that end a job: what the history records.
pub fn terminal_job_events() -> Vec<String> {
    let mut filter = notified_job_events();
    filter.push("mediajet.events.job.*.canceled".to_string());
    filter
}

/// Filter matching the events whose owner gets an email: a job the owner
/// canceled needs none.
pub fn notified_job_events() -> Vec<String> {
    vec![
        "mediajet.events.job.*.completed".to_string(),
        "mediajet.events.job.*.failed".to_string(),
    ]
}

/// Core NATS (not stored): asks whichever transcoder runs job `<id>` to
/// stop it. The jobs bucket already says `canceled`; this only makes it
/// quick.
pub fn cancel(job_id: &str) -> String {
    format!("mediajet.control.cancel.{job_id}")
}

/// Every cancel request, as transcoders subscribe to them.
pub const CANCEL_ALL: &str = "mediajet.control.cancel.*";
