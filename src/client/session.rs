//! A logged-in session with the API: the HTTP client, the saved tokens,
//! and their renewal with the refresh token.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use super::args::LoginArgs;
use super::credentials::{self, Credentials};
use super::error::{ClientError, error_of, unavailable};
use crate::token::unix_now;

/// Logs in and saves the token for later commands.
pub async fn login(args: LoginArgs) -> Result<PathBuf, ClientError> {
    let password = match args.password {
        Some(password) => password,
        None => credentials::ask_password()
            .map_err(|e| ClientError::Io("cannot read the password".into(), e))?,
    };
    let server = args.server.trim_end_matches('/').to_string();
    let response = http()?
        .post(format!("{server}/v1/login"))
        .json(&serde_json::json!({"email": args.email, "password": password}))
        .send()
        .await
        .map_err(unavailable(&server))?;
    if !response.status().is_success() {
        return Err(error_of(response).await);
    }
    let tokens: Tokens = response.json().await.map_err(unavailable(&server))?;
    tokens
        .into_credentials(server)
        .save()
        .map_err(|e| ClientError::Io("cannot save the token".into(), e))
}

/// The tokens a login or a refresh answers with.
#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    expires_in: u64,
    refresh_token: String,
}

impl Tokens {
    fn into_credentials(self, server: String) -> Credentials {
        Credentials {
            server,
            token: self.access_token,
            refresh_token: Some(self.refresh_token),
            expires_at: Some(unix_now() + self.expires_in),
        }
    }
}

pub(super) fn http() -> Result<reqwest::Client, ClientError> {
    // reqwest's TLS needs one process-wide crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(unavailable("cannot set up HTTP"))
}

pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) server: String,
    pub(super) credentials: Mutex<Credentials>,
}

impl Client {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    pub(super) fn token(&self) -> String {
        self.credentials
            .lock()
            .map(|c| c.token.clone())
            .unwrap_or_default()
    }

    /// Renews the access token ahead of a request that cannot be repeated
    /// (an upload) when it expires within a minute.
    pub(super) async fn renew_if_expiring(&self) -> Result<(), ClientError> {
        let expiring = self
            .credentials
            .lock()
            .ok()
            .and_then(|c| c.expires_at.filter(|_| c.refresh_token.is_some()))
            .is_some_and(|expires_at| unix_now() + 60 >= expires_at);
        if expiring {
            self.renew().await?;
        }
        Ok(())
    }

    /// Spends the refresh token for new tokens and saves them, since the old
    /// refresh token is now used up.
    pub(super) async fn renew(&self) -> Result<(), ClientError> {
        let refresh_token = self
            .credentials
            .lock()
            .ok()
            .and_then(|c| c.refresh_token.clone())
            .ok_or_else(|| {
                ClientError::Refused("the token is not valid; run `mediajet login` again".into())
            })?;
        let response = self
            .http
            .post(self.url("/v1/tokens/refresh"))
            .json(&serde_json::json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .map_err(unavailable(&self.server))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Refused(
                "your session has ended; run `mediajet login` again".into(),
            ));
        }
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        let tokens: Tokens = response.json().await.map_err(unavailable(&self.server))?;
        let renewed = tokens.into_credentials(self.server.clone());
        if let Err(err) = renewed.save() {
            eprintln!("warning: cannot save the renewed token: {err}");
        }
        if let Ok(mut credentials) = self.credentials.lock() {
            *credentials = renewed;
        }
        Ok(())
    }

    /// Sends a request with the current token; when it is refused as
    /// unauthorized and the token can be renewed, renews it and sends again.
    pub(super) async fn send(
        &self,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request(&self.token())
            .send()
            .await
            .map_err(unavailable(&self.server))?;
        let renewable = self
            .credentials
            .lock()
            .is_ok_and(|c| c.refresh_token.is_some());
        if response.status() != StatusCode::UNAUTHORIZED || !renewable {
            return Ok(response);
        }
        self.renew().await?;
        request(&self.token())
            .send()
            .await
            .map_err(unavailable(&self.server))
    }
}
