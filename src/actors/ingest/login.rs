//! Logins through Auth, throttled per account and address, account, and
//! address, and the client's address they are counted by.

use super::error::ApiError;
use super::{Ingest, peer};
use crate::wire;

impl Ingest {
    /// Logs in through Auth, unless this account from this address, the
    /// account from anywhere, or this address for any account has failed
    /// too often lately. The attempt counts against all three before Auth
    /// checks the password, and is forgiven if the password was right.
    ///
    /// The account's own limit is per address: a stranger guessing from
    /// elsewhere does not lock the owner out. Across all addresses an
    /// account may fail twenty times as often before it is locked for
    /// everyone, which bounds guessing spread over many addresses at the
    /// cost of letting such a spread attack lock the owner out until the
    /// window passes.
    pub(super) async fn login(
        &self,
        email: &str,
        password: &str,
        address: std::net::IpAddr,
    ) -> Result<wire::TokenReply, ApiError> {
        let account: String = email.trim().to_lowercase().chars().take(320).collect();
        let keys = [
            (&self.login_pairs, format!("{account}\n{address}")),
            (&self.login_accounts, account.clone()),
            (&self.login_addresses, address.to_string()),
        ];
        let mut reserved = Vec::with_capacity(keys.len());
        for (throttle, key) in &keys {
            match throttle.reserve(key) {
                Ok(at) => reserved.push((*throttle, key, at)),
                Err(wait) => {
                    for (throttle, key, at) in reserved {
                        throttle.forgive(key, at);
                    }
                    crate::metrics::refused("login_throttle");
                    return Err(ApiError::TooMany(
                        "too_many_logins",
                        "too many failed logins; try again later".into(),
                        wait.as_secs() + 1,
                    ));
                }
            }
        }
        let outcome = crate::wire::auth::login(&self.client, email, password)
            .await
            .map_err(ApiError::from);
        match &outcome {
            Err(ApiError::InvalidCredentials) => {}
            Ok(_) => {
                self.login_pairs.succeeded(&keys[0].1);
                for (throttle, key, at) in reserved {
                    throttle.forgive(key, at);
                }
            }
            // Undecided (Auth unavailable or busy): not a failed guess.
            Err(_) => {
                for (throttle, key, at) in reserved {
                    throttle.forgive(key, at);
                }
            }
        }
        outcome
    }

    /// The client's address, as login throttling counts it.
    pub(super) fn client_address(
        &self,
        peer: std::net::SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        peer::client_address(peer.ip(), headers, &self.trusted_proxies)
    }
}
