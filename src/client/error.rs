//! Why a command failed, and the exit code that says so.

use serde::Deserialize;

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
    #[error("{what}")]
    Unavailable {
        what: String,
        #[source]
        source: Option<reqwest::Error>,
    },
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
            ClientError::Unavailable { .. } | ClientError::Io(..) => 4,
        }
    }
}

pub(super) fn unavailable(what: &str) -> impl Fn(reqwest::Error) -> ClientError + '_ {
    move |err| ClientError::Unavailable {
        what: what.to_string(),
        source: Some(err),
    }
}

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorMessage,
}

#[derive(Deserialize)]
struct ErrorMessage {
    message: String,
}

/// Turns an error answer (`{"error": {"code", "message"}}`) into an error.
pub(super) async fn error_of(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let message = response.json::<ErrorAnswer>().await.map_or_else(
        |_| status.to_string(),
        |answer| format!("{} ({status})", answer.error.message),
    );
    if status.is_client_error() {
        ClientError::Refused(message)
    } else {
        ClientError::Unavailable {
            what: message,
            source: None,
        }
    }
}
