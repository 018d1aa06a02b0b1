//! Ingest's settings: uploads, quotas, logins, request limits.

use std::time::Duration;

use clap::Args;

use super::duration::parse_duration;

/// What Ingest alone reads.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ingest")]
pub struct IngestSettings {
    /// Most unfinished (queued or running) jobs one user may have; more
    /// uploads are refused with 429 until some end.
    #[arg(long, env = "MEDIAJET_MAX_UNFINISHED_JOBS", default_value_t = 20)]
    pub max_unfinished_jobs: u64,

    /// Failed logins allowed per account, and (four times as many) per
    /// client address, within --login-window before logins are refused
    /// with 429.
    #[arg(long, env = "MEDIAJET_LOGIN_FAILURES", default_value_t = 5)]
    pub login_failures: usize,

    /// The window of --login-failures (`15m`, or seconds).
    #[arg(long, env = "MEDIAJET_LOGIN_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub login_window: Duration,

    /// Largest accepted upload in bytes.
    #[arg(long, env = "MEDIAJET_MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Addresses (or networks, `10.0.0.0/8`) of reverse proxies whose
    /// `X-Forwarded-For` names the client; comma-separated. Without it the
    /// connection's address is the client's.
    #[arg(long, env = "MEDIAJET_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::domain::parse_network)]
    pub trusted_proxies: Vec<crate::domain::Network>,

    /// Origins of web apps (`https://app.example.com`, or `*`) that may
    /// call the API from a browser, tus uploads included; comma-separated.
    /// The page mediajet serves needs none.
    #[arg(long, env = "MEDIAJET_CORS_ORIGINS", value_delimiter = ',', value_parser = crate::actors::ingest::http::cors::parse_origin)]
    pub cors_origins: Vec<String>,

    /// Most bytes one user may keep stored: the uploads of their unfinished
    /// jobs plus the audio of their completed ones still kept. An upload
    /// past it is refused (413 `quota_exceeded`), and a job whose audio
    /// would pass it fails.
    #[arg(long, env = "MEDIAJET_MAX_USER_BYTES", default_value_t = 20 * 1024 * 1024 * 1024)]
    pub max_user_bytes: u64,

    /// How long a resumable (tus) upload is kept while no byte of it comes;
    /// then it expires and its bytes are removed. Keep it shorter than
    /// --retention, which bounds how long any uploaded byte is kept.
    #[arg(long, env = "MEDIAJET_UPLOAD_EXPIRY", default_value = "24h", value_parser = parse_duration)]
    pub upload_expiry: Duration,

    /// How often Ingest looks for the chunks of uploads whose process died
    /// part-way (a crash, a redeploy) and purges them.
    #[arg(long, env = "MEDIAJET_ORPHAN_SWEEP", default_value = "10m", value_parser = parse_duration)]
    pub orphan_sweep: Duration,

    /// How long any request but an upload may take to be answered (an
    /// event stream or a download may then take as long as it needs).
    #[arg(long, env = "MEDIAJET_HTTP_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub http_request_timeout: Duration,

    /// Slowest upload accepted, in bytes per second, averaged over 30 s: a
    /// slower one (or one that stalls for 30 s) is cut off.
    #[arg(long, env = "MEDIAJET_UPLOAD_MIN_RATE", default_value_t = 4096)]
    pub upload_min_rate: u64,
}
