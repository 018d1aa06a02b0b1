//! Names of JetStream streams, consumers and buckets.

pub const WORK_STREAM: &str = "MEDIAJET_WORK";
pub const EVENTS_STREAM: &str = "MEDIAJET_EVENTS";
pub const DEAD_STREAM: &str = "MEDIAJET_DEAD";
pub const TRANSCODERS_CONSUMER: &str = "transcoders";
pub const MAILER_CONSUMER: &str = "mailer";
pub const HISTORY_CONSUMER: &str = "history";
/// Live job state, one key per job id.
pub const JOBS_BUCKET: &str = "mediajet_jobs";
/// Public token verification keys, one key per key id.
pub const KEYS_BUCKET: &str = "mediajet_keys";
/// Login sessions, one key per session id: the refresh token in use.
pub const SESSIONS_BUCKET: &str = "mediajet_sessions";
/// Sessions ended early, whose access tokens must no longer pass.
pub const REVOKED_BUCKET: &str = "mediajet_revoked";
/// Users disabled or removed, whose tokens, keys and links must no longer
/// pass, keyed by user id; written by Auth, watched by every verifier.
pub const DISABLED_BUCKET: &str = "mediajet_disabled";
/// Which emails each user wants, by user id; written by Ingest, read by
/// Mailer.
pub const NOTIFY_BUCKET: &str = "mediajet_notify";
/// The users' podcast feeds (`u.<user>`, `t.<token hash>`); Ingest's
/// alone.
pub const FEEDS_BUCKET: &str = "mediajet_feeds";
/// Users' webhook endpoints (`<owner>.<id>`): written by Ingest, read by
/// Mailer, which delivers (and disables one that answers 410).
pub const WEBHOOKS_BUCKET: &str = "mediajet_webhooks";
/// What each webhook delivery's attempts came to
/// (`<endpoint>.<message id>`), kept a week.
pub const DELIVERIES_BUCKET: &str = "mediajet_deliveries";
/// Webhook deliveries to make: a work queue Ingest fills from job events
/// and Mailer works off.
pub const WEBHOOKS_STREAM: &str = "MEDIAJET_WEBHOOKS";
/// Ingest's consumer of job events that queues their webhook deliveries.
pub const WEBHOOK_FANOUT_CONSUMER: &str = "webhook-fanout";
/// Mailer's consumer of webhook deliveries.
pub const WEBHOOK_DELIVERY_CONSUMER: &str = "webhook-deliveries";
/// Jobs whose input is to be fetched from a URL: a work queue Ingest fills
/// and works off.
pub const IMPORTS_STREAM: &str = "MEDIAJET_IMPORTS";
/// Ingest's consumer of imports.
pub const IMPORTERS_CONSUMER: &str = "importers";
/// Jobs whose email has gone out, so a redelivered event sends none.
pub const MAIL_BUCKET: &str = "mediajet_mail";
/// API keys (hashed), by key id; written by Ingest, mirrored by every
/// Ingest.
pub const API_KEYS_BUCKET: &str = "mediajet_api_keys";
/// The secret download links are signed with (`token::links`).
pub const LINKS_BUCKET: &str = "mediajet_links";
/// Who each job belongs to, written by Ingest alone: where Mailer
/// sends a job's email, whatever a job's live state or event says.
pub const OWNERS_BUCKET: &str = "mediajet_owners";
/// The job each `Nats-Msg-Id` of a NATS submission created, per owner.
pub const SUBMISSIONS_BUCKET: &str = "mediajet_submissions";
/// Resumable (tus) uploads: how much of each is stored, under which chunks.
pub const TUS_BUCKET: &str = "mediajet_tus";
pub const UPLOADS_BUCKET: &str = "mediajet_uploads";
pub const OUTPUTS_BUCKET: &str = "mediajet_outputs";
