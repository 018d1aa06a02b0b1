//! Command-line and environment configuration. Every flag has a `MEDIAJET_*`
//! environment twin so the same binary is configured the same way by a shell,
//! a systemd unit or a Nomad job. The settings are grouped by who reads them:
//! `Shared` by every process, and one group per actor (`auth`, `ingest`,
//! `transcoder`, `mailer`), each built only from the shared settings and its
//! own; `duration` parses the durations they take.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod auth;
mod duration;
mod ingest;
mod mailer;
mod transcoder;

pub use auth::AuthSettings;
use duration::parse_access_ttl;
pub use duration::parse_duration;
pub use ingest::IngestSettings;
pub use mailer::MailerSettings;
pub use transcoder::TranscoderSettings;

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
    #[command(flatten)]
    pub shared: Shared,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub ingest: IngestSettings,
    #[command(flatten)]
    pub transcoder: TranscoderSettings,
    #[command(flatten)]
    pub mailer: MailerSettings,
}

/// What a process needs whichever actors it runs: where its data lives,
/// which actors, how to reach NATS and SurrealDB, the HTTP front door, and
/// what every actor must agree on (replicas, retention, token lifetime,
/// the media buckets' bounds).
#[derive(Debug, Clone, Args)]
pub struct Shared {
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

    /// How long uploads and converted audio are kept (`7d`, `12h`, …); the
    /// object store removes them after that. Set it the same on every
    /// process: the first to start creates the buckets with it.
    #[arg(long, env = "MEDIAJET_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,

    /// How long download links last from a job's end (in emails, the job's
    /// `share_url` and the web page's player); never past --retention.
    #[arg(long, env = "MEDIAJET_LINK_TTL", default_value = "7d", value_parser = parse_duration)]
    pub link_ttl: Duration,

    /// The service's address as its users reach it, the base of the links
    /// in emails and of `share_url`s. Default: http://<--http>.
    #[arg(long, env = "MEDIAJET_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Let webhooks, jobs' `notify_url` and URL imports reach private
    /// addresses (loopback, private networks, link-local), which are
    /// refused by default so that a user cannot make the service reach
    /// into the network it runs in. For tests; prefer
    /// `--allow-target-networks`.
    #[arg(long, env = "MEDIAJET_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,

    /// Private networks (`10.1.2.0/24`, an address alone) that webhooks,
    /// jobs' `notify_url` and URL imports may reach besides public
    /// addresses, comma-separated: a media server or receiver on a
    /// network the operator trusts.
    #[arg(long, env = "MEDIAJET_ALLOW_TARGET_NETWORKS", value_delimiter = ',', value_parser = crate::domain::parse_network)]
    pub allow_target_networks: Vec<crate::domain::Network>,

    /// Lifetime of access tokens (at most 1d); clients renew them with their
    /// refresh token.
    #[arg(long, env = "MEDIAJET_TOKEN_TTL", default_value = "15m", value_parser = parse_access_ttl)]
    pub token_ttl: Duration,

    /// JetStream replicas for streams and buckets (1 on one node, 3 in a cluster).
    #[arg(long, env = "MEDIAJET_REPLICAS", default_value_t = 1)]
    pub replicas: usize,

    /// Most bytes the uploads bucket may hold (0: as much as JetStream
    /// allows). Set it, and `--outputs-store-bytes`, below JetStream's
    /// storage so that jobs, sessions and events always have room: a full
    /// media bucket refuses new uploads with 503 and nothing else.
    #[arg(long, env = "MEDIAJET_UPLOADS_STORE_BYTES", default_value_t = 0)]
    pub uploads_store_bytes: u64,

    /// Most bytes the outputs bucket may hold (0: as much as JetStream allows).
    #[arg(long, env = "MEDIAJET_OUTPUTS_STORE_BYTES", default_value_t = 0)]
    pub outputs_store_bytes: u64,

    /// How long a client may take to send a request's headers; an idle
    /// keep-alive connection is closed after the same time.
    #[arg(long, env = "MEDIAJET_HTTP_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_header_timeout: Duration,

    /// HTTP connections served at once; more are closed as they arrive.
    #[arg(long, env = "MEDIAJET_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
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
        config.shared.data_dir = data_dir.into();
        config
    }
}

impl Shared {
    /// Which private addresses the service may connect to on a user's
    /// behalf.
    pub fn target_policy(&self) -> crate::targets::Policy {
        crate::targets::Policy {
            any: self.allow_private_targets,
            networks: self.allow_target_networks.clone(),
        }
    }

    /// The base of links that leave the service (emails, `share_url`):
    /// `--public-url`, or else the HTTP address the process serves on.
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.http),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::for_data_dir("/tmp/x");
        assert_eq!(config.shared.http.to_string(), "127.0.0.1:8080");
        assert_eq!(config.shared.public_base_url(), "http://127.0.0.1:8080");
        assert!(config.transcoder.transcode_slots() >= 1);
    }

    #[test]
    fn each_actor_set_has_its_own_inbox_prefix() {
        let mut config = Config::for_data_dir("/tmp/x");
        assert_eq!(
            config.shared.nats_inbox_prefix(),
            "_INBOX_auth_ingest_transcoder_mailer"
        );
        config.shared.actors = vec![ActorKind::Transcoder];
        assert_eq!(config.shared.nats_inbox_prefix(), "_INBOX_transcoder");
        config.shared.actors = vec![ActorKind::Mailer, ActorKind::Auth];
        assert_eq!(config.shared.nats_inbox_prefix(), "_INBOX_auth_mailer");
    }
}
