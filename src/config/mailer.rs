//! The mailer's settings: where mail goes, who sends it, and the base of
//! the links in it.

use std::net::SocketAddr;

use clap::Args;

/// What the mailer alone reads.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Mailer")]
pub struct MailerSettings {
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
}

impl MailerSettings {
    /// Base URL for links that leave the service (emails): `--public-url`,
    /// or else the HTTP address the process serves on.
    pub fn public_base_url(&self, http: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{http}"),
        }
    }
}
