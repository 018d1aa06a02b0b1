//! How an attempt can end other than with audio; the class decides the
//! acknowledgement (see `decision`).

use super::ffmpeg::MediaError;
use crate::error::BoxError;

/// How a job attempt ended, which decides ack, nak or term.
#[derive(Debug, thiserror::Error)]
pub(super) enum AttemptError {
    /// The input is not convertible: the job fails, no retry.
    #[error("{0}")]
    Rejected(String),
    /// Something that may work next time (NATS, disk, a crashed tool).
    #[error("cannot {context}")]
    Transient {
        context: &'static str,
        #[source]
        source: BoxError,
    },
    /// The process is stopping: hand the work to another transcoder.
    #[error("interrupted by shutdown")]
    Interrupted,
    /// The owner canceled the job.
    #[error("canceled by its owner")]
    Canceled,
    /// A later attempt took the job over: this one's result is not wanted.
    #[error("taken over by a later attempt")]
    Superseded,
}

impl From<MediaError> for AttemptError {
    fn from(err: MediaError) -> Self {
        match err {
            MediaError::Rejected(reason) => AttemptError::Rejected(reason),
            tool @ MediaError::Tool { .. } => AttemptError::Transient {
                context: "convert the upload",
                source: tool.into(),
            },
        }
    }
}

/// The transient failure to `context` (a verb phrase: "read the upload").
pub(super) fn transient<E: Into<BoxError>>(context: &'static str) -> impl Fn(E) -> AttemptError {
    move |err| AttemptError::Transient {
        context,
        source: err.into(),
    }
}
