//! Which emails a user wants, as the notification bucket holds it (keyed by
//! user id): written by Ingest (the account's setting, an unsubscribe
//! link), read by Mailer before each email.

use serde::{Deserialize, Serialize};

use super::v;

/// Which of their jobs' ends a user is emailed about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    /// Every completed and failed job.
    #[default]
    All,
    /// Failed jobs only.
    Failures,
    /// No email at all.
    None,
}

impl Notify {
    /// Whether a job that ended `completed` (or else failed) is mailed.
    pub fn wants(self, completed: bool) -> bool {
        match self {
            Notify::All => true,
            Notify::Failures => !completed,
            Notify::None => false,
        }
    }
}

/// A user's setting in the notification bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifySetting {
    #[serde(default = "v")]
    pub v: u32,
    pub notify: Notify,
}
