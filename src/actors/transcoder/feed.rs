//! Feeding ffmpeg an upload that is still arriving: each chunk, as the
//! object store hands it over, goes into ffmpeg's pipe and into the work
//! file (which the checks after the encode read).

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::error::{AttemptError, transient};
use crate::storage::objects::Chunks;

/// Chunks waiting for ffmpeg to read them; the pipe itself holds 64 KiB.
const QUEUED_CHUNKS: usize = 2;

/// Writes `chunks` to `path` and into `pipe`, and returns the upload's size
/// once every chunk is read and checked. ffmpeg closing its end early (it
/// was stopped) does not stop the copy to the file. On an error the pipe is
/// closed too, and ffmpeg sees the input end: the caller must not take what
/// it made without this function's answer.
pub(super) async fn feed(
    mut chunks: Chunks,
    path: PathBuf,
    pipe: std::io::PipeWriter,
) -> std::io::Result<u64> {
    let (to_pipe, mut queued) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_CHUNKS);
    // Writes to a pipe block; they get a thread of their own.
    let writer = tokio::task::spawn_blocking(move || {
        let mut pipe = pipe;
        while let Some(chunk) = queued.blocking_recv() {
            if pipe.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut file = tokio::fs::File::create(&path).await?;
    let mut to_pipe = Some(to_pipe);
    let mut size = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).await?;
        size += chunk.len() as u64;
        if let Some(sender) = &to_pipe
            && sender.send(chunk).await.is_err()
        {
            to_pipe = None;
        }
    }
    file.flush().await?;
    drop(to_pipe);
    let _ = writer.await;
    Ok(size)
}

/// What the feeding task's end means for the attempt: an upload that broke
/// off or was replaced fails the job (no later attempt could read more of
/// it); anything else is worth another attempt.
pub(super) fn outcome(
    done: Result<std::io::Result<u64>, tokio::task::JoinError>,
) -> Result<u64, AttemptError> {
    match done {
        Ok(Ok(size)) => Ok(size),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(AttemptError::Rejected(format!(
                "the upload broke off before it was complete ({err})"
            )))
        }
        Ok(Err(err)) => Err(transient("read the upload")(err)),
        Err(err) => Err(transient("feed the upload")(err)),
    }
}
