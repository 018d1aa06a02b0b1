//! Fetching an imported URL: a GET to a public address (`targets`, every
//! redirect checked), refused past the size limit as soon as the server
//! says or the bytes show it, and resumed with a `Range` request where a
//! transfer breaks off, if the server allows (`If-Range` makes sure it is
//! still the same file).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{StatusCode, header};
use tokio::io::AsyncRead;

use crate::targets::{self, FollowError, Url};

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the answer's next bytes before the transfer counts as
/// broken.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Times one transfer is resumed at most.
const MAX_RESUMES: u32 = 5;

/// Why an import failed: each says what the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Request(#[from] FollowError),
    #[error("the server answered {0}")]
    Status(StatusCode),
    #[error("the file is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the transfer broke off after {0} bytes and the server does not allow resuming it")]
    Broken(u64, #[source] Option<reqwest::Error>),
    #[error("the file is empty")]
    Empty,
}

/// A transfer under way.
pub struct Source {
    /// Where the bytes come from, once redirects are followed.
    url: Url,
    policy: targets::Policy,
    /// Most bytes taken.
    limit: u64,
    received: u64,
    /// The file's whole length, when the server said.
    length: Option<u64>,
    /// What `If-Range` names: the file's strong `ETag` or its date.
    validator: Option<String>,
    response: reqwest::Response,
    resumes: u32,
}

fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent("mediajet-import")
}

impl Source {
    /// Starts fetching `url`: refused unless the answer is a 200 within
    /// `limit` bytes (as far as the server says).
    pub async fn open(url: Url, policy: targets::Policy, limit: u64) -> Result<Source, FetchError> {
        let (url, response) = targets::follow(url, &policy, client, |c, url| c.get(url)).await?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let length = response.content_length();
        if length.is_some_and(|length| length > limit) {
            return Err(FetchError::TooLarge(limit));
        }
        let headers = response.headers();
        let etag = headers
            .get(header::ETAG)
            .filter(|tag| !tag.as_bytes().starts_with(b"W/"));
        let validator = etag
            .or_else(|| headers.get(header::LAST_MODIFIED))
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        Ok(Source {
            url,
            policy,
            limit,
            received: 0,
            length,
            validator,
            response,
            resumes: 0,
        })
    }

    /// The name the URL's path ends with, if any.
    pub fn file_name(url: &Url) -> Option<String> {
        let last = url.path_segments()?.next_back()?;
        let decoded = percent_encoding::percent_decode_str(last)
            .decode_utf8()
            .ok()?;
        (!decoded.trim().is_empty()).then(|| decoded.into_owned())
    }

    /// The next bytes; `None` once the file is whole.
    async fn next(&mut self) -> Result<Option<Bytes>, FetchError> {
        loop {
            let broke = match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    self.received += chunk.len() as u64;
                    if self.received > self.limit {
                        return Err(FetchError::TooLarge(self.limit));
                    }
                    return Ok(Some(chunk));
                }
                Ok(None) if self.length.is_none_or(|length| self.received >= length) => {
                    return match self.received {
                        0 => Err(FetchError::Empty),
                        _ => Ok(None),
                    };
                }
                // Shorter than the server said: the connection was cut.
                Ok(None) => None,
                Err(err) => Some(err.without_url()),
            };
            self.resume(broke).await?;
        }
    }

    /// Asks for the rest of the file after a break; refused unless the
    /// server answers with exactly the bytes that follow.
    async fn resume(&mut self, cause: Option<reqwest::Error>) -> Result<(), FetchError> {
        let broken = |cause| FetchError::Broken(self.received, cause);
        if self.resumes >= MAX_RESUMES || self.length.is_none() {
            return Err(broken(cause));
        }
        self.resumes += 1;
        tracing::info!(
            received = self.received,
            resumes = self.resumes,
            "resuming the import"
        );
        let range = format!("bytes={}-", self.received);
        let validator = self.validator.clone();
        let request = |client: &reqwest::Client, url| {
            let request = client.get(url).header(header::RANGE, &range);
            match &validator {
                Some(validator) => request.header(header::IF_RANGE, validator),
                None => request,
            }
        };
        let (_, response) =
            targets::follow(self.url.clone(), &self.policy, client, request).await?;
        let starts_here = response
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("bytes "))
            .and_then(|value| value.split('-').next())
            .and_then(|start| start.parse::<u64>().ok())
            == Some(self.received);
        if response.status() != StatusCode::PARTIAL_CONTENT || !starts_here {
            // A whole file again (no ranges, or it changed) cannot be laid
            // after the bytes already stored.
            return Err(broken(cause));
        }
        self.response = response;
        Ok(())
    }

    /// The transfer as bytes to read, and where its failure is kept once it
    /// fails (the reader's error only says that it did).
    pub fn into_reader(self) -> (impl AsyncRead + Unpin, Arc<Mutex<Option<FetchError>>>) {
        let failure = Arc::new(Mutex::new(None));
        let kept = failure.clone();
        let chunks = futures::stream::unfold(Some(self), move |source| {
            let kept = kept.clone();
            async move {
                let mut source = source?;
                match source.next().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(source))),
                    Ok(None) => None,
                    Err(err) => {
                        let message = err.to_string();
                        if let Ok(mut slot) = kept.lock() {
                            *slot = Some(err);
                        }
                        Some((Err(std::io::Error::other(message)), None))
                    }
                }
            }
        });
        (tokio_util::io::StreamReader::new(Box::pin(chunks)), failure)
    }
}
