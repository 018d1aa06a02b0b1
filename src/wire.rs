//! The NATS wire contract: every subject, stream, bucket and message type that
//! crosses an actor boundary lives here, so the contract can be read in one
//! place. Messages carry a version field `v`; a receiver rejects versions it
//! does not know instead of guessing.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;

/// The version of every message type in this module.
pub const VERSION: u32 = 1;

/// Subjects. Everything the service publishes or serves starts with `mediajet.`.
pub mod subject {
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
    /// Work items for the transcoders.
    pub const WORK_TRANSCODE: &str = "mediajet.work.transcode";
    /// Work items that could not be processed, kept for an operator.
    pub const DEAD_TRANSCODE: &str = "mediajet.dead.transcode";
    /// Every job event.
    pub const JOB_EVENTS: &str = "mediajet.events.job.>";

    /// Every job that starts encoding: the queue moves.
    pub const JOB_STARTS: &str = "mediajet.events.job.*.running";

    /// The subject of one job event: `mediajet.events.job.<id>.<state>`.
    pub fn job_event(job_id: &str, state: super::JobState) -> String {
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
}

/// Names of JetStream streams, consumers and buckets.
pub mod names {
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
    /// Jobs whose email has gone out, so a redelivered event sends none.
    pub const MAIL_BUCKET: &str = "mediajet_mail";
    /// Who each job belongs to, written by Ingest alone: where Mailer
    /// sends a job's email, whatever a job's live state or event says.
    pub const OWNERS_BUCKET: &str = "mediajet_owners";
    /// The job each `Nats-Msg-Id` of a NATS submission created, per owner.
    pub const SUBMISSIONS_BUCKET: &str = "mediajet_submissions";
    pub const UPLOADS_BUCKET: &str = "mediajet_uploads";
    pub const OUTPUTS_BUCKET: &str = "mediajet_outputs";
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported message version {0} (this build speaks version {VERSION})")]
    Version(u32),
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

/// Decodes a versioned message, refusing versions this build does not speak.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    let probe: VersionProbe = serde_json::from_slice(payload)?;
    if probe.v != VERSION {
        return Err(DecodeError::Version(probe.v));
    }
    Ok(serde_json::from_slice(payload)?)
}

/// Encodes a message; the types in this module always serialize.
pub fn encode<T: Serialize>(message: &T) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(message).unwrap_or_default())
}

fn v() -> u32 {
    VERSION
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// Error body used by every reply and every HTTP error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, such as `invalid_credentials`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

/// `{"error": {...}}`: the shape of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorReply {
    pub error: ErrorBody,
}

/// Login request to Auth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    #[serde(default = "v")]
    pub v: u32,
    pub email: String,
    pub password: String,
}

/// A freshly signed access token and the refresh token of its session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenReply {
    #[serde(default = "v")]
    pub v: u32,
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

/// Exchanges a refresh token for a new pair; the old one is spent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRequest {
    #[serde(default = "v")]
    pub v: u32,
    pub refresh_token: String,
}

/// Ends the session of either token; at least one must be given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutRequest {
    #[serde(default = "v")]
    pub v: u32,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Auth's answer to a logout: the session has ended, and its access tokens
/// are refused until `until` (Unix time; 0 when it had ended before).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutReply {
    #[serde(default = "v")]
    pub v: u32,
    pub session: String,
    pub until: u64,
}

/// A login session: who it is for and which refresh token is current.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(default = "v")]
    pub v: u32,
    pub email: String,
    /// Bumped by every refresh.
    pub generation: u64,
    /// SHA-256 (hex) of the current refresh token's secret.
    pub secret_sha256: String,
    /// SHA-256 (hex) of the secrets the last refreshes spent, oldest first
    /// (a few at most): one of them coming back is a replay, or, for the
    /// last one within seconds of its refresh, a client retrying a refresh
    /// whose answer it never got.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spent_sha256: Vec<String>,
    /// Unix time of the last refresh.
    #[serde(default)]
    pub rotated_at: u64,
    /// Unix time after which the session cannot be refreshed.
    pub expires_at: u64,
}

/// The owner of a job, as Ingest recorded it when the job was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOwner {
    #[serde(default = "v")]
    pub v: u32,
    /// User id.
    pub owner: String,
    pub email: String,
}

/// A revoked session: its access tokens fail until `until` (Unix time),
/// after which none of them is valid anyway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    #[serde(default = "v")]
    pub v: u32,
    pub until: u64,
}

/// User creation request to Auth; `token` must belong to an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUserRequest {
    #[serde(default = "v")]
    pub v: u32,
    pub token: String,
    pub email: String,
    pub password: String,
    pub role: Role,
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserReply {
    #[serde(default = "v")]
    pub v: u32,
    pub id: String,
    pub email: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A public token verification key, as Auth publishes it in the keys bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKey {
    #[serde(default = "v")]
    pub v: u32,
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// The raw Ed25519 public key, base64url without padding (JWK `x`).
    pub x: String,
}

/// The lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    /// Stopped by its owner; no email.
    Canceled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Canceled
        )
    }
}

/// Output audio formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// MPEG layer 3 (libmp3lame).
    Mp3,
    /// AAC in an MPEG-4 audio file (`.m4a`).
    Aac,
    /// Opus in Ogg (`.opus`).
    Opus,
    /// FLAC, lossless.
    Flac,
    /// 16-bit PCM in WAV, uncompressed.
    Wav,
}

/// Every format, in the order the API documents them.
pub const FORMATS: [Format; 5] = [
    Format::Mp3,
    Format::Aac,
    Format::Opus,
    Format::Flac,
    Format::Wav,
];

/// Sample rates (Hz) that mp3 and AAC encoders take.
const COMMON_RATES: &[u32] = &[8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/// Encoding options of a job: `None` takes the format's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudioOptions {
    /// Bit rate in kbit/s (lossy formats only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    /// Sample rate in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
}

impl Format {
    /// Parses a user-supplied format name.
    pub fn parse(name: &str) -> Option<Format> {
        let name = name.trim().to_ascii_lowercase();
        FORMATS.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Aac => "aac",
            Format::Opus => "opus",
            Format::Flac => "flac",
            Format::Wav => "wav",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Aac => "m4a",
            Format::Opus => "opus",
            Format::Flac => "flac",
            Format::Wav => "wav",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Mp3 => "audio/mpeg",
            Format::Aac => "audio/mp4",
            Format::Opus => "audio/ogg",
            Format::Flac => "audio/flac",
            Format::Wav => "audio/wav",
        }
    }

    /// Bit rate (kbit/s) and sample rate (Hz) used when a job names none;
    /// `None` keeps the input's sample rate (lossless formats) or has no bit
    /// rate at all.
    pub fn defaults(self) -> (Option<u32>, Option<u32>) {
        match self {
            // The settings of the service this one replaces.
            Format::Mp3 => (Some(192), Some(44100)),
            Format::Aac => (Some(192), Some(44100)),
            Format::Opus => (Some(128), Some(48000)),
            Format::Flac | Format::Wav => (None, None),
        }
    }

    /// Checks options against what this format can encode, with a sentence
    /// saying what is allowed when they do not fit.
    pub fn check(self, options: AudioOptions) -> Result<(), String> {
        const MP3_RATES: &[u32] = &[
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ];
        const OPUS_RATES: &[u32] = &[8000, 12000, 16000, 24000, 48000];
        const LOSSLESS_RATES: &[u32] = &[
            8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400,
            192000,
        ];
        let list = |values: &[u32]| {
            values
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (bitrates_ok, bitrate_rule) = match self {
            Format::Mp3 => (
                options.bitrate.is_none_or(|b| MP3_RATES.contains(&b)),
                format!("one of {} kbit/s", list(MP3_RATES)),
            ),
            Format::Aac => (
                options.bitrate.is_none_or(|b| (32..=320).contains(&b)),
                "32 to 320 kbit/s".to_string(),
            ),
            Format::Opus => (
                options.bitrate.is_none_or(|b| (6..=510).contains(&b)),
                "6 to 510 kbit/s".to_string(),
            ),
            Format::Flac | Format::Wav => (
                options.bitrate.is_none(),
                "none: the format is lossless".to_string(),
            ),
        };
        if !bitrates_ok {
            return Err(format!("{} takes a bitrate of {bitrate_rule}", self.name()));
        }
        let rates = match self {
            Format::Mp3 | Format::Aac => COMMON_RATES,
            Format::Opus => OPUS_RATES,
            Format::Flac | Format::Wav => LOSSLESS_RATES,
        };
        if options.sample_rate.is_some_and(|r| !rates.contains(&r)) {
            return Err(format!(
                "{} takes a sample rate of one of {} Hz",
                self.name(),
                list(rates)
            ));
        }
        Ok(())
    }
}

/// Where a finished job's audio lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Output {
    /// Object name in the outputs bucket.
    pub object: String,
    pub bytes: u64,
    pub content_type: String,
    /// Suggested file name for downloads.
    pub filename: String,
    pub duration_seconds: f64,
}

/// A job: the value of its key in the jobs bucket, the body of its events and,
/// once finished, its row in the history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    #[serde(default = "v")]
    pub v: u32,
    pub id: String,
    /// User id of the owner.
    pub owner: String,
    pub owner_email: String,
    pub state: JobState,
    /// Percent done, 0–100.
    pub progress: f64,
    /// Encode speed as a multiple of real time, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Seconds until the encode is expected to end, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    pub format: Format,
    /// Bit rate and sample rate asked for (absent: the format's defaults).
    #[serde(flatten)]
    pub options: AudioOptions,
    /// The uploaded file's name as the client gave it.
    pub filename: String,
    pub input_bytes: u64,
    /// The object in the uploads bucket to convert, when it is not named
    /// after the job (jobs submitted over NATS name their own upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    /// Stream sequence of the job's work item, from which Ingest tells a
    /// queued job's place in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_seq: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How many times a transcoder has started on this job.
    pub attempts: u32,
    /// How many attempts failed for a reason on our side and were retried.
    #[serde(default)]
    pub retries: u32,
    /// Largest audio the job may make: what is left of its owner's storage
    /// quota once its upload is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
}

impl Job {
    /// Name of the object in the uploads bucket this job converts.
    pub fn upload_object(&self) -> &str {
        self.upload.as_deref().unwrap_or(&self.id)
    }
}

/// A job request over NATS (`mediajet.jobs.submit`), for an object the
/// caller has put into the uploads bucket under `<their email>/<name>`. The
/// caller's token travels in an `Authorization: Bearer` header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub v: u32,
    /// Name of the object in the uploads bucket.
    pub object: String,
    /// Output format name (default `mp3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// The file name the job shows and the download is named after
    /// (default: the object's name without its owner prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// A job status request over NATS (`mediajet.jobs.status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub v: u32,
    pub job_id: String,
}

/// A unit of transcode work. The job id is also the message id, so JetStream
/// drops a duplicate submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkItem {
    #[serde(default = "v")]
    pub v: u32,
    pub job_id: String,
}

/// Header carrying the HTTP-like status of an error reply (NATS micro convention).
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";
/// Header carrying the message of an error reply (NATS micro convention).
pub const ERROR_HEADER: &str = "Nats-Service-Error";

/// A request over NATS did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The service answered with an error: usually the caller's fault.
    #[error("{}: {}", .body.code, .body.message)]
    Rejected { status: u16, body: ErrorBody },
    /// Nobody answered, or the answer could not be read: retry later.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// Builds the headers and body of an error reply.
pub fn error_reply(
    status: u16,
    code: &str,
    message: &str,
) -> (async_nats::HeaderMap, bytes::Bytes) {
    let message = header_safe(message);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(ERROR_CODE_HEADER, status.to_string().as_str());
    headers.insert(ERROR_HEADER, message.as_str());
    let body = encode(&ErrorReply {
        error: ErrorBody {
            code: code.to_string(),
            message,
        },
    });
    (headers, body)
}

/// Longest error message sent in a reply header.
const MAX_ERROR_MESSAGE: usize = 512;

/// `text` fit for a NATS header value, which may hold no line breaks (the
/// client refuses to send one and panics): control characters become
/// spaces, and a long text is cut at a character boundary.
pub fn header_safe(text: &str) -> String {
    let mut safe = String::with_capacity(text.len().min(MAX_ERROR_MESSAGE));
    for c in text.chars() {
        if safe.len() + c.len_utf8() > MAX_ERROR_MESSAGE {
            break;
        }
        safe.push(if c.is_control() { ' ' } else { c });
    }
    safe
}

/// Sends a request and decodes the reply, or the error reply, of a service.
pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    request: &Req,
) -> Result<Resp, RequestError> {
    let reply = client
        .request(subject.to_string(), encode(request))
        .await
        .map_err(|err| RequestError::Unavailable(err.to_string()))?;
    let status = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(ERROR_CODE_HEADER))
        .and_then(|v| v.as_str().parse::<u16>().ok());
    match status {
        Some(status) => {
            let body = serde_json::from_slice::<ErrorReply>(&reply.payload)
                .map(|r| r.error)
                .unwrap_or_else(|_| ErrorBody {
                    code: "error".to_string(),
                    message: String::from_utf8_lossy(&reply.payload).into_owned(),
                });
            Err(RequestError::Rejected { status, body })
        }
        None => decode(&reply.payload).map_err(|err| RequestError::Unavailable(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_an_unknown_version_is_refused() {
        let err = decode::<WorkItem>(br#"{"v":2,"job_id":"x"}"#).unwrap_err();
        assert!(matches!(err, DecodeError::Version(2)));
    }

    #[test]
    fn a_work_item_round_trips() {
        let item = WorkItem {
            v: VERSION,
            job_id: "abc".into(),
        };
        let back: WorkItem = decode(&encode(&item)).unwrap();
        assert_eq!(back.job_id, "abc");
    }

    #[test]
    fn format_names_are_case_insensitive_and_unknown_ones_rejected() {
        assert_eq!(Format::parse(" MP3 "), Some(Format::Mp3));
        assert_eq!(Format::parse("Opus"), Some(Format::Opus));
        assert_eq!(Format::parse("exe"), None);
    }

    #[test]
    fn options_are_checked_per_format() {
        let opts = |bitrate, sample_rate| AudioOptions {
            bitrate,
            sample_rate,
        };
        for format in FORMATS {
            let (bitrate, sample_rate) = format.defaults();
            assert_eq!(
                format.check(opts(bitrate, sample_rate)),
                Ok(()),
                "{format:?}"
            );
            assert_eq!(format.check(AudioOptions::default()), Ok(()));
        }
        assert!(Format::Mp3.check(opts(Some(100), None)).is_err());
        assert!(Format::Mp3.check(opts(Some(320), Some(48000))).is_ok());
        assert!(Format::Opus.check(opts(None, Some(44100))).is_err());
        assert!(Format::Flac.check(opts(Some(128), None)).is_err());
        assert!(Format::Wav.check(opts(None, Some(96000))).is_ok());
        assert!(Format::Aac.check(opts(Some(400), None)).is_err());
    }
}
