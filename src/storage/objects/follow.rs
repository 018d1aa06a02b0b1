//! Walking an object's chunks, also while it is still being written: its
//! chunks as they are stored, under the id its writer announced, until its
//! metadata says how many there are and what they add up to. A read of a
//! complete object (`Bucket::read`) is the same walk with the metadata
//! known from the start.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::object_store::ObjectInfo;
use bytes::Bytes;
use futures::StreamExt;

use super::read::{BATCH, DirectGet, Tally};
use super::{Bucket, Chunks, ReadError};
use crate::backoff::Backoff;

/// The first and the longest wait of a reader that has caught up with the
/// writer before it looks again: short while chunks keep coming, longer
/// while they do not.
const POLL: Backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(100));

impl Bucket {
    /// The bytes of object `name`, whose chunks are written under `nuid`,
    /// from its first chunk on, whether or not the object is complete yet.
    /// The stream ends once the object's metadata exists and names `nuid`,
    /// and every chunk it counts has been read, their size and digest
    /// checked. It fails with [`std::io::ErrorKind::UnexpectedEof`] if no
    /// chunk came for `idle` (the writer stopped) or the object was written
    /// under another id (a put that broke off, then another).
    pub fn follow(&self, name: &str, nuid: &str, idle: Duration) -> Chunks {
        self.chunks(name, None, nuid, idle)
    }

    /// The chunks of `name` written under `nuid`; `written` is its metadata
    /// if it is known to be complete, and `idle` matters only if not.
    pub(super) fn chunks(
        &self,
        name: &str,
        written: Option<ObjectInfo>,
        nuid: &str,
        idle: Duration,
    ) -> Chunks {
        let state = Follower {
            bucket: self.clone(),
            name: name.to_string(),
            nuid: nuid.to_string(),
            chunks: self.direct_get(nuid),
            fetched: VecDeque::new(),
            read: 0,
            written,
            tally: Tally::new(),
            last_chunk: Instant::now(),
            idle,
            empty_polls: 0,
        };
        futures::stream::try_unfold(state, Follower::next).boxed()
    }
}

struct Follower {
    bucket: Bucket,
    name: String,
    nuid: String,
    chunks: DirectGet,
    fetched: VecDeque<Bytes>,
    /// Chunks handed out.
    read: usize,
    /// The object's metadata, once the writer has stored it.
    written: Option<ObjectInfo>,
    tally: Tally,
    last_chunk: Instant,
    idle: Duration,
    /// Polls in a row that found nothing new, which lengthen the next wait.
    empty_polls: u32,
}

fn ended(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message)
}

impl Follower {
    async fn next(mut self) -> std::io::Result<Option<(Bytes, Follower)>> {
        loop {
            if let Some(chunk) = self.fetched.pop_front() {
                self.read += 1;
                self.tally.add(&chunk);
                self.last_chunk = Instant::now();
                self.empty_polls = 0;
                return Ok(Some((chunk, self)));
            }
            if let Some(info) = &self.written {
                if self.read >= info.chunks {
                    self.tally.verify(info)?;
                    return Ok(None);
                }
                // Every chunk the metadata counts is stored by now.
                let count = (info.chunks - self.read).min(BATCH);
                self.chunks.fetch(count, &mut self.fetched, false).await?;
                continue;
            }
            if self.chunks.fetch(BATCH, &mut self.fetched, true).await? > 0 {
                continue;
            }
            // Caught up with the writer: has it finished?
            match self.bucket.info(&self.name).await {
                Ok(info) if info.nuid == self.nuid => {
                    self.written = Some(info);
                    continue;
                }
                Ok(_) => return Err(ended("the upload was replaced while it was read".into())),
                Err(ReadError::NotFound) => {}
                Err(err) => return Err(std::io::Error::other(err)),
            }
            if self.last_chunk.elapsed() > self.idle {
                return Err(ended(format!(
                    "no part of the upload came for {} seconds",
                    self.idle.as_secs()
                )));
            }
            tokio::time::sleep(POLL.delay(self.empty_polls)).await;
            self.empty_polls = self.empty_polls.saturating_add(1);
        }
    }
}
