//! The mailer's settings: where mail goes and who sends it.

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
}
