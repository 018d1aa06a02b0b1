//! The upload of `mediajet submit`, by the tus protocol: the upload is
//! created once and remembered (`resume`), sent from wherever the server
//! says it stands, sent on from there when the connection breaks, and
//! picked up by the next run of the same command if this one is stopped.

use std::time::{Duration, Instant};

use base64::Engine;
use futures::TryStreamExt;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::args::SubmitArgs;
use super::error::{ClientError, error_of, unavailable};
use super::job::Job;
use super::progress::bar;
use super::resume;
use super::session::Client;

/// Tries at sending the rest of an upload before giving up.
const ATTEMPTS: u32 = 5;

/// How a part went.
enum Sent {
    /// The upload is whole: its job.
    Whole(String),
    /// It broke off (the connection, or the server for now): go on from
    /// the server's offset.
    BrokeOff(ClientError),
}

impl Client {
    /// Uploads `args.file`, resuming an upload an earlier run left
    /// unfinished; returns the job it became.
    pub(super) async fn upload(&self, args: &SubmitArgs) -> Result<Job, ClientError> {
        let unreadable = |e: std::io::Error| {
            ClientError::Refused(format!("cannot read {}: {e}", args.file.display()))
        };
        let size = tokio::fs::metadata(&args.file)
            .await
            .map_err(unreadable)?
            .len();
        let fingerprint = resume::fingerprint(&self.server, args, &args.file, size);
        let earlier = match resume::find(&fingerprint) {
            Some(url) => self.offset_of(&url).await?.map(|offset| (url, offset)),
            None => None,
        };
        let (url, mut offset) = match earlier {
            Some(earlier) => earlier,
            None => {
                resume::forget(&fingerprint);
                let url = self.create(args, size).await?;
                resume::remember(&fingerprint, &url);
                (url, 0)
            }
        };
        if offset > 0 {
            eprintln!("resuming the upload at byte {offset} of {size}");
        }
        let progress = bar(
            size,
            "upload   [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        );
        progress.set_position(offset);
        let mut attempt = 0;
        let job = loop {
            self.renew_if_expiring().await?;
            match self.send_part(&url, offset, size, args, &progress).await? {
                Sent::Whole(job) => break job,
                Sent::BrokeOff(err) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                    match self.offset_of(&url).await? {
                        Some(now) => offset = now,
                        None => return Err(err),
                    }
                    progress.set_position(offset);
                }
                Sent::BrokeOff(err) => return Err(err),
            }
        };
        progress.finish_and_clear();
        resume::forget(&fingerprint);
        let url = self.url(&format!("/v1/jobs/{job}"));
        let response = self
            .send(|token| self.http.get(&url).bearer_auth(token))
            .await?;
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        response.json().await.map_err(unavailable(&self.server))
    }

    /// Creates the upload; returns its URL.
    async fn create(&self, args: &SubmitArgs, size: u64) -> Result<String, ClientError> {
        let name = args
            .file
            .file_name()
            .map_or_else(|| "upload".into(), |n| n.to_string_lossy().into_owned());
        let mut metadata = vec![("filename", name)];
        metadata.extend(args.options());
        let metadata = metadata
            .iter()
            .map(|(key, value)| {
                let value = base64::engine::general_purpose::STANDARD.encode(value);
                format!("{key} {value}")
            })
            .collect::<Vec<_>>()
            .join(",");
        let url = self.url("/v1/uploads");
        let response = self
            .send(|token| {
                self.http
                    .post(&url)
                    .bearer_auth(token)
                    .header("Tus-Resumable", "1.0.0")
                    .header("Upload-Length", size)
                    .header("Upload-Metadata", &metadata)
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(error_of(response).await);
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Refused("the server named no upload URL".into()))?;
        Ok(if location.starts_with('/') {
            self.url(location)
        } else {
            location.to_string()
        })
    }

    /// Where the upload at `url` stands; `None` if the server no longer
    /// has it (it expired, or was given up).
    async fn offset_of(&self, url: &str) -> Result<Option<u64>, ClientError> {
        let response = self
            .send(|token| {
                self.http
                    .head(url)
                    .bearer_auth(token)
                    .header("Tus-Resumable", "1.0.0")
            })
            .await?;
        match response.status() {
            StatusCode::OK => Ok(response
                .headers()
                .get("upload-offset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            _ => Err(error_of(response).await),
        }
    }

    /// Sends the file from `offset` to its end as one part.
    async fn send_part(
        &self,
        url: &str,
        offset: u64,
        size: u64,
        args: &SubmitArgs,
        progress: &indicatif::ProgressBar,
    ) -> Result<Sent, ClientError> {
        let io = |e| ClientError::Io(format!("cannot read {}", args.file.display()), e);
        let mut file = tokio::fs::File::open(&args.file).await.map_err(io)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io)?;
        let rest = file.take(size - offset);
        let counted = progress.clone();
        let limit = args.limit_rate;
        let started = Instant::now();
        let mut sent = 0u64;
        let body =
            tokio_util::io::ReaderStream::with_capacity(rest, 64 * 1024).and_then(move |chunk| {
                counted.inc(chunk.len() as u64);
                sent += chunk.len() as u64;
                // Held back to the rate asked for, if any.
                let due =
                    limit.map(|rate| Duration::from_secs_f64(sent as f64 / rate.max(1) as f64));
                async move {
                    if let Some(due) = due {
                        tokio::time::sleep_until((started + due).into()).await;
                    }
                    Ok(chunk)
                }
            });
        let sent = self
            .http
            .patch(url)
            .bearer_auth(self.token())
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset)
            .header("Content-Type", "application/offset+octet-stream")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return Ok(Sent::BrokeOff(unavailable(&self.server)(err))),
        };
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            let job = response
                .headers()
                .get("mediajet-job-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return match job {
                Some(job) => Ok(Sent::Whole(job)),
                None => Ok(Sent::BrokeOff(ClientError::Refused(
                    "the server kept only part of the upload".into(),
                ))),
            };
        }
        // A conflict (another request, or a stale offset) and the server's
        // own trouble are worth going on from its offset; a renewed token
        // too. Anything else is the answer.
        let again = status == StatusCode::CONFLICT
            || status == StatusCode::UNAUTHORIZED
            || status.is_server_error();
        let err = error_of(response).await;
        if again {
            if status == StatusCode::UNAUTHORIZED {
                self.renew().await?;
            }
            return Ok(Sent::BrokeOff(err));
        }
        Err(err)
    }
}
