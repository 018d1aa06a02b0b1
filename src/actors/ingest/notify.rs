//! Which emails a user wants, kept in the notification bucket where Mailer
//! reads it: set from the account, or turned off by an email's unsubscribe
//! link.

use super::Ingest;
use super::error::ApiError;
use crate::wire::{self, Notify, NotifySetting};

impl Ingest {
    /// `user`'s setting (every email, when they never chose).
    pub(super) async fn notify_setting(&self, user: &str) -> Result<Notify, ApiError> {
        let stored = self
            .notify
            .get(user)
            .await
            .map_err(|e| ApiError::unavailable("the notification settings", e))?;
        Ok(stored
            .and_then(|value| wire::decode::<NotifySetting>(&value).ok())
            .map(|setting| setting.notify)
            .unwrap_or_default())
    }

    pub(super) async fn set_notify(&self, user: &str, notify: Notify) -> Result<(), ApiError> {
        let setting = NotifySetting {
            v: wire::VERSION,
            notify,
        };
        self.notify
            .put(user, wire::encode(&setting))
            .await
            .map_err(|e| ApiError::unavailable("the notification settings", e))?;
        Ok(())
    }
}
