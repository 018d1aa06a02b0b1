//! The first admin: the one configured (`--admin-email`,
//! `--admin-password`), or, on a first start with no user at all,
//! `admin@localhost` with a generated password shown once.

use super::error::AuthError;
use super::users::UserError;
use super::{Auth, AuthSetupError};
use crate::domain::Email;
use crate::wire::Role;

impl Auth {
    /// Ensures the configured admin exists with the configured password; with
    /// none configured and no user at all, creates `admin@localhost` with a
    /// random password and returns it.
    pub(super) async fn ensure_admin(
        &self,
        email: Option<&str>,
        password: Option<&str>,
    ) -> Result<Option<String>, AuthSetupError> {
        let admin = |e: UserError| AuthSetupError::Admin(e.into());
        match (email, password) {
            (Some(email), Some(password)) => {
                let email = Email::parse(email)
                    .map_err(|e| AuthSetupError::Admin(e.into()))?
                    .to_string();
                check_password(password).map_err(|e| AuthSetupError::Admin(e.into()))?;
                if self
                    .users
                    .find_by_email(&email)
                    .await
                    .map_err(admin)?
                    .is_some()
                {
                    self.users
                        .update(&email, password, Role::Admin)
                        .await
                        .map_err(admin)?;
                } else {
                    self.users
                        .create(&email, password, Role::Admin)
                        .await
                        .map_err(admin)?;
                }
                Ok(None)
            }
            (Some(_), None) | (None, Some(_)) => Err(AuthSetupError::HalfAnAdmin),
            (None, None) => {
                if self.users.count().await.map_err(admin)? > 0 {
                    return Ok(None);
                }
                let password = random_password().map_err(|e| AuthSetupError::Admin(e.into()))?;
                self.users
                    .create("admin@localhost", &password, Role::Admin)
                    .await
                    .map_err(admin)?;
                Ok(Some(password))
            }
        }
    }
}

pub(super) fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(AuthError::BadRequest(
            "`password` must be 8 to 1024 characters long".to_string(),
        ));
    }
    Ok(())
}

pub(super) fn random_password() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    getrandom::getrandom(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
    }
}
