//! Command-line and environment configuration. Every flag has a `MEDIAJET_*`
//! environment twin so the same binary is configured the same way by a shell,
//! a systemd unit or a Nomad job.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mediajet",
    version,
    about = "Video-to-audio conversion service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole service on this machine: a local nats-server (unless
    /// --nats-url is given), embedded SurrealDB and all four actors.
    Up(Config),
    /// Run some actors (--actors) against an existing NATS (--nats-url),
    /// for deployments that spread actors over several processes or nodes.
    Run(Config),
    /// Log in to a mediajet server and save the token for `submit`
    /// (password from MEDIAJET_PASSWORD or asked for).
    Login(crate::client::LoginArgs),
    /// Convert a video: upload it, follow the job live, download the audio.
    /// Exit code 0: done; 1: the job failed; 2: refused; 3: canceled;
    /// 4: the service is unavailable.
    Submit(crate::client::SubmitArgs),
}

/// The actors a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActorKind {
    Auth,
    Ingest,
    Transcoder,
    Mailer,
}

impl ActorKind {
    /// The actor's name, as `--actors` spells it.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Auth => "auth",
            ActorKind::Ingest => "ingest",
            ActorKind::Transcoder => "transcoder",
            ActorKind::Mailer => "mailer",
        }
    }
}

/// Everything a mediajet process needs to know.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where JetStream, SurrealDB, keys and the mail outbox live.
    #[arg(long, env = "MEDIAJET_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The actors this process runs, comma-separated.
    #[arg(
        long,
        env = "MEDIAJET_ACTORS",
        value_delimiter = ',',
        default_value = "auth,ingest,transcoder,mailer"
    )]
    pub actors: Vec<ActorKind>,

    /// Address of the HTTP API (health, readiness and metrics only in
    /// processes without Ingest).
    #[arg(long, env = "MEDIAJET_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,

    /// NATS server URL(s), comma-separated. Unset: start a local nats-server.
    #[arg(long, env = "MEDIAJET_NATS_URL")]
    pub nats_url: Option<String>,

    /// NATS user name (with --nats-password).
    #[arg(long, env = "MEDIAJET_NATS_USER")]
    pub nats_user: Option<String>,

    /// NATS password.
    #[arg(long, env = "MEDIAJET_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,

    /// NATS credentials file (JWT and NKey seed).
    #[arg(long, env = "MEDIAJET_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// CA certificate (PEM) NATS servers' certificates must chain to; with
    /// it, connections to NATS are TLS only.
    #[arg(long, env = "MEDIAJET_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,

    /// Client port of the local nats-server started when --nats-url is unset
    /// (0 picks a free port).
    #[arg(long, env = "MEDIAJET_NATS_PORT", default_value_t = 4222)]
    pub nats_port: u16,

    /// The nats-server binary used when --nats-url is unset.
    #[arg(long, env = "MEDIAJET_NATS_SERVER_BIN", default_value = "nats-server")]
    pub nats_server_bin: PathBuf,

    /// SurrealDB URL (`ws://host:8000`). Unset: embedded under the data dir.
    #[arg(long, env = "MEDIAJET_SURREAL_URL")]
    pub surreal_url: Option<String>,

    /// SurrealDB root user for a remote server.
    #[arg(long, env = "MEDIAJET_SURREAL_USER")]
    pub surreal_user: Option<String>,

    /// SurrealDB root password for a remote server.
    #[arg(long, env = "MEDIAJET_SURREAL_PASSWORD", hide_env_values = true)]
    pub surreal_password: Option<String>,

    /// CA certificate (PEM) a `wss://` SurrealDB server's certificate must
    /// chain to.
    #[arg(long, env = "MEDIAJET_SURREAL_TLS_CA")]
    pub surreal_tls_ca: Option<PathBuf>,

    /// SMTP URL (`smtp://user:pass@host:587?tls=required`). Unset: emails
    /// are written as .eml files to <data-dir>/outbox/.
    #[arg(long, env = "MEDIAJET_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender address of notification emails.
    #[arg(
        long,
        env = "MEDIAJET_MAIL_FROM",
        default_value = "mediajet <mediajet@localhost>"
    )]
    pub mail_from: String,

    /// Base URL for links in emails. Default: http://<--http>.
    #[arg(long, env = "MEDIAJET_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Concurrent encodes. Default: the number of cores.
    #[arg(long, env = "MEDIAJET_TRANSCODERS")]
    pub transcoders: Option<usize>,

    /// How long a stopping transcoder lets in-flight encodes run before it
    /// hands them back to the queue (`30s`, `2m`, or seconds).
    #[arg(long, env = "MEDIAJET_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Longest input an encode may take, after which it is stopped and failed.
    #[arg(long, env = "MEDIAJET_ENCODE_TIMEOUT", default_value = "2h", value_parser = parse_duration)]
    pub encode_timeout: Duration,

    /// Longest input accepted (`6h`, `90m`, or seconds); a longer one fails
    /// its job at once.
    #[arg(long, env = "MEDIAJET_MAX_INPUT_DURATION", default_value = "6h", value_parser = parse_duration)]
    pub max_input_duration: Duration,

    /// Most streams an input may have.
    #[arg(long, env = "MEDIAJET_MAX_STREAMS", default_value_t = 16)]
    pub max_streams: usize,

    /// Largest video picture of an input, in pixels (default 8K UHD).
    #[arg(long, env = "MEDIAJET_MAX_VIDEO_PIXELS", default_value_t = 7680 * 4320)]
    pub max_video_pixels: u64,

    /// Largest output file an encode may write, in bytes.
    #[arg(long, env = "MEDIAJET_MAX_OUTPUT_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_output_bytes: u64,

    /// Threads of one ffmpeg.
    #[arg(long, env = "MEDIAJET_FFMPEG_THREADS", default_value_t = 2)]
    pub ffmpeg_threads: u32,

    /// Address space of one ffmpeg or ffprobe, in bytes.
    #[arg(long, env = "MEDIAJET_FFMPEG_MEMORY_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub ffmpeg_memory_bytes: u64,

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

    /// How long uploads and converted audio are kept (`7d`, `12h`, …); the
    /// object store removes them after that. Set it the same on every
    /// process: the first to start creates the buckets with it.
    #[arg(long, env = "MEDIAJET_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,

    /// Largest accepted upload in bytes.
    #[arg(long, env = "MEDIAJET_MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// PKCS#8 PEM file with the Ed25519 token signing key. Default:
    /// <data-dir>/auth/signing-key.pem, generated on first start.
    #[arg(long, env = "MEDIAJET_JWT_KEY_FILE")]
    pub jwt_key_file: Option<PathBuf>,

    /// Lifetime of access tokens (at most 1d); clients renew them with their
    /// refresh token.
    #[arg(long, env = "MEDIAJET_TOKEN_TTL", default_value = "15m", value_parser = parse_access_ttl)]
    pub token_ttl: Duration,

    /// How long a login session can be renewed with refresh tokens (at most
    /// 90d) before its user logs in again.
    #[arg(long, env = "MEDIAJET_REFRESH_TTL", default_value = "30d", value_parser = parse_refresh_ttl)]
    pub refresh_ttl: Duration,

    /// How long after a refresh the refresh token it spent is still taken
    /// as a client retrying (its answer was lost) rather than as a replay.
    #[arg(long, env = "MEDIAJET_REFRESH_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub refresh_grace: Duration,

    /// Email of an admin user ensured at start (with --admin-password).
    #[arg(long, env = "MEDIAJET_ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// Password of the admin user ensured at start.
    #[arg(long, env = "MEDIAJET_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// JetStream replicas for streams and buckets (1 on one node, 3 in a cluster).
    #[arg(long, env = "MEDIAJET_REPLICAS", default_value_t = 1)]
    pub replicas: usize,

    /// Password checks Auth runs at once (argon2id: ~19 MiB each); logins
    /// beyond wait up to 5 s, then get 503 `busy`.
    #[arg(long, env = "MEDIAJET_MAX_PASSWORD_CHECKS", default_value_t = 4)]
    pub max_password_checks: usize,

    /// Addresses (or networks, `10.0.0.0/8`) of reverse proxies whose
    /// `X-Forwarded-For` names the client; comma-separated. Without it the
    /// connection's address is the client's.
    #[arg(long, env = "MEDIAJET_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::actors::ingest::peer::parse_network)]
    pub trusted_proxies: Vec<crate::actors::ingest::peer::Network>,

    /// Most bytes one user may keep stored: the uploads of their unfinished
    /// jobs plus the audio of their completed ones still kept. An upload
    /// past it is refused (413 `quota_exceeded`), and a job whose audio
    /// would pass it fails.
    #[arg(long, env = "MEDIAJET_MAX_USER_BYTES", default_value_t = 20 * 1024 * 1024 * 1024)]
    pub max_user_bytes: u64,

    /// Most bytes the uploads bucket may hold (0: as much as JetStream
    /// allows). Set it, and `--outputs-store-bytes`, below JetStream's
    /// storage so that jobs, sessions and events always have room: a full
    /// media bucket refuses new uploads with 503 and nothing else.
    #[arg(long, env = "MEDIAJET_UPLOADS_STORE_BYTES", default_value_t = 0)]
    pub uploads_store_bytes: u64,

    /// How often Ingest looks for the chunks of uploads whose process died
    /// part-way (a crash, a redeploy) and purges them.
    #[arg(long, env = "MEDIAJET_ORPHAN_SWEEP", default_value = "10m", value_parser = parse_duration)]
    pub orphan_sweep: Duration,

    /// Most bytes the outputs bucket may hold (0: as much as JetStream allows).
    #[arg(long, env = "MEDIAJET_OUTPUTS_STORE_BYTES", default_value_t = 0)]
    pub outputs_store_bytes: u64,

    /// How long a client may take to send a request's headers; an idle
    /// keep-alive connection is closed after the same time.
    #[arg(long, env = "MEDIAJET_HTTP_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_header_timeout: Duration,

    /// How long any request but an upload may take to be answered (an
    /// event stream or a download may then take as long as it needs).
    #[arg(long, env = "MEDIAJET_HTTP_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub http_request_timeout: Duration,

    /// HTTP connections served at once; more are closed as they arrive.
    #[arg(long, env = "MEDIAJET_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Slowest upload accepted, in bytes per second, averaged over 30 s: a
    /// slower one (or one that stalls for 30 s) is cut off.
    #[arg(long, env = "MEDIAJET_UPLOAD_MIN_RATE", default_value_t = 4096)]
    pub upload_min_rate: u64,

    /// The ffmpeg binary.
    #[arg(long, env = "MEDIAJET_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// The ffprobe binary.
    #[arg(long, env = "MEDIAJET_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,
}

impl Config {
    /// A configuration with every default, rooted at `data_dir`; tests start
    /// from this and override what they need.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let mut config = Defaults::parse_from(["mediajet"]).config;
        config.data_dir = data_dir.into();
        config
    }

    /// The tools and limits for converting untrusted uploads.
    pub fn media_policy(&self) -> crate::actors::transcoder::ffmpeg::MediaPolicy {
        crate::actors::transcoder::ffmpeg::MediaPolicy {
            ffmpeg: self.ffmpeg.clone(),
            ffprobe: self.ffprobe.clone(),
            max_duration: self.max_input_duration,
            max_streams: self.max_streams,
            max_pixels: self.max_video_pixels,
            max_output_bytes: self.max_output_bytes,
            threads: self.ffmpeg_threads,
            memory_bytes: self.ffmpeg_memory_bytes,
            encode_timeout: self.encode_timeout,
        }
    }

    /// Whether this process runs `actor`.
    pub fn runs(&self, actor: ActorKind) -> bool {
        self.actors.contains(&actor)
    }

    /// The prefix of this process's NATS reply subjects: `_INBOX_<actor>`
    /// (actors joined by `_`), so `nats.conf` can let each actor's user
    /// subscribe to its own replies and nobody else's.
    pub fn nats_inbox_prefix(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for actor in [
            ActorKind::Auth,
            ActorKind::Ingest,
            ActorKind::Transcoder,
            ActorKind::Mailer,
        ] {
            if self.runs(actor) {
                names.push(actor.name());
            }
        }
        format!("_INBOX_{}", names.join("_"))
    }

    /// The number of concurrent encodes this process runs.
    pub fn transcode_slots(&self) -> usize {
        self.transcoders
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    /// Base URL for links that leave the service (emails).
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.http),
        }
    }
}

/// Parses `30s`, `5m`, `2h`, `250ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 5m or 2h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        "d" => Ok(Duration::from_secs(n * 24 * 3600)),
        _ => Err(format!(
            "`{text}` has an unknown unit; use ms, s, m, h or d"
        )),
    }
}

fn parse_bounded(text: &str, most: Duration) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() || duration > most {
        return Err(format!(
            "`{text}` must be more than 0 and at most {}d",
            most.as_secs() / (24 * 3600)
        ));
    }
    Ok(duration)
}

/// Access tokens must expire before their session's revocation does.
fn parse_access_ttl(text: &str) -> Result<Duration, String> {
    parse_bounded(text, crate::storage::jetstream::REVOKED_MAX_AGE)
}

/// Sessions must expire before their entry in the sessions bucket does.
fn parse_refresh_ttl(text: &str) -> Result<Duration, String> {
    parse_bounded(text, crate::storage::jetstream::SESSIONS_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_are_bounded_by_their_buckets() {
        assert_eq!(parse_access_ttl("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_access_ttl("2d").is_err());
        assert!(parse_access_ttl("0").is_err());
        assert!(parse_refresh_ttl("90d").is_ok());
        assert!(parse_refresh_ttl("91d").is_err());
    }

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        assert!(parse_duration("3w").is_err());
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::for_data_dir("/tmp/x");
        assert_eq!(config.http.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_base_url(), "http://127.0.0.1:8080");
        assert!(config.transcode_slots() >= 1);
    }

    #[test]
    fn each_actor_set_has_its_own_inbox_prefix() {
        let mut config = Config::for_data_dir("/tmp/x");
        assert_eq!(
            config.nats_inbox_prefix(),
            "_INBOX_auth_ingest_transcoder_mailer"
        );
        config.actors = vec![ActorKind::Transcoder];
        assert_eq!(config.nats_inbox_prefix(), "_INBOX_transcoder");
        config.actors = vec![ActorKind::Mailer, ActorKind::Auth];
        assert_eq!(config.nats_inbox_prefix(), "_INBOX_auth_mailer");
    }
}
