//! Auth's settings: the signing key, sessions, the first admin, password
//! checks.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::duration::{parse_duration, parse_refresh_ttl};

/// What Auth alone reads.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Auth")]
pub struct AuthSettings {
    /// PKCS#8 PEM file with the Ed25519 token signing key. Default:
    /// <data-dir>/auth/signing-key.pem, generated on first start.
    #[arg(long, env = "MEDIAJET_JWT_KEY_FILE")]
    pub jwt_key_file: Option<PathBuf>,

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

    /// Password checks Auth runs at once (argon2id: ~19 MiB each); logins
    /// beyond wait up to 5 s, then get 503 `busy`.
    #[arg(long, env = "MEDIAJET_MAX_PASSWORD_CHECKS", default_value_t = 4)]
    pub max_password_checks: usize,
}
