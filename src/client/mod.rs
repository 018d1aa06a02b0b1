//! `mediajet login` and `mediajet submit`: a command-line client of the HTTP
//! API. `submit` uploads with a progress bar, follows the job's live events
//! (`/v1/jobs/{id}/events`) with a second one, and downloads the audio; its
//! exit code says how the job ended (see [`ClientError::exit_code`]).

mod credentials;
mod events;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::token::unix_now;
pub use credentials::Credentials;
use events::EventStream;

/// `mediajet login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The mediajet HTTP API.
    #[arg(long, env = "MEDIAJET_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Your account's email.
    #[arg(long)]
    pub email: String,
    /// Read from here, or else asked for on the terminal (never a flag, so
    /// it stays out of shell history and process lists).
    #[arg(skip = std::env::var("MEDIAJET_PASSWORD").ok())]
    pub password: Option<String>,
}

/// `mediajet submit`.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// The video to convert.
    pub file: PathBuf,
    /// Output format: mp3, aac, opus, flac or wav.
    #[arg(long, default_value = "mp3")]
    pub format: String,
    /// Bit rate in kbit/s (lossy formats).
    #[arg(long)]
    pub bitrate: Option<u32>,
    /// Sample rate in Hz.
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// Where the audio goes: a file, or a directory for the server's file
    /// name. Default: the server's file name in the current directory.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// The mediajet HTTP API (default: the one `mediajet login` used).
    #[arg(long, env = "MEDIAJET_SERVER")]
    pub server: Option<String>,
    /// A bearer token (default: the one `mediajet login` saved).
    #[arg(long, env = "MEDIAJET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Why a command did not end with the audio on disk.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request was refused as wrong (bad file, bad options, no login).
    #[error("{0}")]
    Refused(String),
    /// The job ran and failed.
    #[error("the job failed: {0}")]
    JobFailed(String),
    /// The job was canceled (by its owner, elsewhere).
    #[error("the job was canceled")]
    Canceled,
    /// The service could not be reached or had a problem: try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

impl ClientError {
    /// 1: the job failed; 2: refused (fix the request); 3: canceled;
    /// 4: the service is unavailable or the local disk failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::JobFailed(_) => 1,
            ClientError::Refused(_) => 2,
            ClientError::Canceled => 3,
            ClientError::Unavailable(_) | ClientError::Io(..) => 4,
        }
    }
}

fn unavailable(what: &str) -> impl Fn(reqwest::Error) -> ClientError + '_ {
    move |err| ClientError::Unavailable(format!("{what}: {err}"))
}

/// Turns an error answer (`{"error": {"code", "message"}}`) into an error.
async fn error_of(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["error"]["message"]
        .as_str()
        .map_or_else(|| status.to_string(), |m| format!("{m} ({status})"));
    if status.is_client_error() {
        ClientError::Refused(message)
    } else {
        ClientError::Unavailable(message)
    }
}

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

/// Uploads, follows and downloads one job; returns where the audio went.
pub async fn submit(args: SubmitArgs) -> Result<PathBuf, ClientError> {
    let saved = Credentials::load();
    let server = args
        .server
        .clone()
        .or_else(|| saved.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    let server = server.trim_end_matches('/').to_string();
    // A token given on the command line is used as it is; saved credentials
    // are renewed with their refresh token when the access token runs out.
    let credentials = match (&args.token, saved) {
        (Some(token), _) => Credentials {
            server: server.clone(),
            token: token.clone(),
            refresh_token: None,
            expires_at: None,
        },
        (None, Some(saved)) => saved,
        (None, None) => {
            return Err(ClientError::Refused(
                "not logged in: run `mediajet login --email …` or set MEDIAJET_TOKEN".into(),
            ));
        }
    };
    let client = Client {
        http: http()?,
        server,
        credentials: Mutex::new(credentials),
    };
    client.renew_if_expiring().await?;
    let job = client.upload(&args).await?;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    println!("job {id} queued");
    let job = client.follow(&id).await?;
    match job["state"].as_str() {
        Some("completed") => {}
        Some("canceled") => return Err(ClientError::Canceled),
        _ => {
            let reason = job["error"].as_str().unwrap_or("no reason given");
            return Err(ClientError::JobFailed(reason.to_string()));
        }
    }
    let path = client.download(&job, &args).await?;
    println!("completed: {}", path.display());
    Ok(path)
}

fn http() -> Result<reqwest::Client, ClientError> {
    // reqwest's TLS needs one process-wide crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ClientError::Unavailable(format!("cannot set up HTTP: {e}")))
}

struct Client {
    http: reqwest::Client,
    server: String,
    credentials: Mutex<Credentials>,
}

fn bar(length: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    fn token(&self) -> String {
        self.credentials
            .lock()
            .map(|c| c.token.clone())
            .unwrap_or_default()
    }

    /// Renews the access token ahead of a request that cannot be repeated
    /// (an upload) when it expires within a minute.
    async fn renew_if_expiring(&self) -> Result<(), ClientError> {
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
    async fn renew(&self) -> Result<(), ClientError> {
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
    async fn send(
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

    async fn upload(&self, args: &SubmitArgs) -> Result<Value, ClientError> {
        let file = tokio::fs::File::open(&args.file).await.map_err(|e| {
            ClientError::Refused(format!("cannot read {}: {e}", args.file.display()))
        })?;
        let size = file
            .metadata()
            .await
            .map_err(|e| ClientError::Io(format!("cannot read {}", args.file.display()), e))?
            .len();
        let progress = bar(
            size,
            "upload   [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        );
        let counted = progress.clone();
        let body = tokio_util::io::ReaderStream::new(file)
            .inspect_ok(move |chunk| counted.inc(chunk.len() as u64));
        let name = args
            .file
            .file_name()
            .map_or_else(|| "upload".into(), |n| n.to_string_lossy().into_owned());
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(body), size).file_name(name);
        // Options go before the file, so a bad one is refused before the
        // upload is stored.
        let mut form = Form::new().text("format", args.format.clone());
        if let Some(bitrate) = args.bitrate {
            form = form.text("bitrate", bitrate.to_string());
        }
        if let Some(rate) = args.sample_rate {
            form = form.text("sample_rate", rate.to_string());
        }
        let response = self
            .http
            .post(self.url("/v1/jobs"))
            .bearer_auth(self.token())
            .multipart(form.part("file", part))
            .send()
            .await
            .map_err(unavailable(&self.server))?;
        progress.finish_and_clear();
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        response.json().await.map_err(unavailable(&self.server))
    }

    /// Follows the job's events until it ends, reconnecting when the stream
    /// breaks; returns the job in its terminal state.
    async fn follow(&self, id: &str) -> Result<Value, ClientError> {
        let progress = bar(100, "{msg:28} [{bar:30}] {pos}%");
        let mut failures = 0;
        loop {
            let url = self.url(&format!("/v1/jobs/{id}/events"));
            let response = self
                .send(|token| self.http.get(&url).bearer_auth(token))
                .await;
            let response = match response {
                Ok(response) if response.status().is_success() => response,
                Ok(response) if response.status().is_client_error() => {
                    return Err(error_of(response).await);
                }
                Ok(_) | Err(ClientError::Unavailable(_)) if failures < 30 => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Ok(response) => return Err(error_of(response).await),
                Err(err) => return Err(err),
            };
            let mut events = EventStream::new(response.bytes_stream().boxed());
            while let Some(job) = events.next_data().await {
                failures = 0;
                progress.set_position(job["progress"].as_f64().unwrap_or(0.0) as u64);
                progress.set_message(describe(&job));
                let terminal = matches!(
                    job["state"].as_str(),
                    Some("completed" | "failed" | "canceled")
                );
                if terminal {
                    progress.finish_and_clear();
                    return Ok(job);
                }
            }
            // The stream broke off before the end: pick it up again.
            failures += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn download(&self, job: &Value, args: &SubmitArgs) -> Result<PathBuf, ClientError> {
        let output = &job["output"];
        let filename = output["filename"].as_str().unwrap_or("output");
        // Only the base name: the server's name must not pick a directory.
        let filename = Path::new(filename)
            .file_name()
            .map_or_else(|| "output".into(), |n| n.to_os_string());
        let path = match &args.output {
            Some(dir) if dir.is_dir() => dir.join(filename),
            Some(path) => path.clone(),
            None => PathBuf::from(filename),
        };
        if path.exists() && !args.force {
            return Err(ClientError::Refused(format!(
                "{} exists; pass --force to replace it, or --output",
                path.display()
            )));
        }
        let url = self.url(output["url"].as_str().unwrap_or_default());
        let response = self
            .send(|token| self.http.get(&url).bearer_auth(token))
            .await?;
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        let progress = bar(
            response.content_length().unwrap_or(0),
            "download [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        );
        // Written next to the target and renamed at the end, so a broken
        // download leaves no half file under the real name.
        let partial = path.with_extension("part");
        let io = |what: &str| {
            let what = format!("{what} {}", partial.display());
            move |e| ClientError::Io(what, e)
        };
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(io("cannot create"))?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(unavailable(&self.server)(err));
                }
            };
            file.write_all(&chunk).await.map_err(io("cannot write"))?;
            progress.inc(chunk.len() as u64);
        }
        file.flush().await.map_err(io("cannot write"))?;
        drop(file);
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(io("cannot rename"))?;
        progress.finish_and_clear();
        Ok(path)
    }
}

/// One line about a job: its place in the queue, or its speed and ETA.
fn describe(job: &Value) -> String {
    let state = job["state"].as_str().unwrap_or("?");
    match state {
        "queued" => match job["queue_position"].as_u64() {
            Some(1) => "queued, next".to_string(),
            Some(place) => format!("queued, {} ahead", place - 1),
            None => "queued".to_string(),
        },
        "running" => match (job["speed"].as_f64(), job["eta_seconds"].as_f64()) {
            (Some(speed), Some(eta)) => format!("converting {speed:.1}x, {eta:.0}s left"),
            _ => "converting".to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_described_by_its_queue_place_or_its_speed() {
        let job = |v: Value| describe(&v);
        assert_eq!(
            job(serde_json::json!({"state": "queued", "queue_position": 3})),
            "queued, 2 ahead"
        );
        assert_eq!(
            job(serde_json::json!({"state": "queued", "queue_position": 1})),
            "queued, next"
        );
        assert_eq!(
            job(serde_json::json!({"state": "running", "speed": 41.25, "eta_seconds": 3.0})),
            "converting 41.2x, 3s left"
        );
        assert_eq!(job(serde_json::json!({"state": "completed"})), "completed");
    }
}
