//! An object written in parts, over many requests and possibly by several
//! processes in turn (a resumable upload): each chunk is stored on its own
//! and its stream sequence kept by the writer's durable record, chunks that
//! no record counts are dropped before the next part, and the object is
//! made to exist (its metadata, size and digest) once every part is in.

use std::collections::VecDeque;

use async_nats::jetstream::object_store::ObjectInfo;
use bytes::Bytes;

use super::Bucket;
use super::put::{PutError, Written, new_nuid, publish_info};
use super::read::{BATCH, Tally};
use crate::error::BoxError;

impl Bucket {
    /// A fresh id to store the chunks of an object written in parts under.
    pub fn new_parts_id() -> Result<String, PutError> {
        new_nuid().map_err(|e| PutError::Publish(e.into()))
    }

    /// Stores one chunk of the object whose chunks go under `nuid`; returns
    /// its stream sequence, which the writer records to count it.
    pub async fn append_chunk(&self, nuid: &str, chunk: Bytes) -> Result<u64, PutError> {
        let subject = format!("$O.{}.C.{nuid}", self.name);
        let acked = match self.context.publish(subject, chunk).await {
            Ok(ack) => ack.await.map_err(BoxError::from),
            Err(err) => Err(BoxError::from(err)),
        };
        acked.map(|ack| ack.sequence).map_err(PutError::Publish)
    }

    /// Removes chunks stored under `nuid` after sequence `last`: chunks a
    /// writer stored but never counted, because it died or another writer
    /// took the object over. The next part must not follow them.
    pub async fn drop_chunks_after(&self, nuid: &str, last: u64) -> Result<usize, BoxError> {
        let subject = format!("$O.{}.C.{nuid}", self.name);
        let mut dropped = 0;
        let mut from = last.saturating_add(1);
        loop {
            let next = match self
                .stream
                .direct_get_next_for_subject(subject.as_str(), Some(from))
                .await
            {
                Ok(next) => next,
                Err(err)
                    if err.kind()
                        == async_nats::jetstream::stream::DirectGetErrorKind::NotFound =>
                {
                    return Ok(dropped);
                }
                Err(err) => return Err(err.into()),
            };
            self.stream.delete_message(next.sequence).await?;
            dropped += 1;
            from = next.sequence.saturating_add(1);
        }
    }

    /// Removes one chunk its writer will not count (a part whose checksum
    /// did not match, or one another writer's record overtook).
    pub async fn drop_chunk(&self, sequence: u64) -> Result<(), BoxError> {
        self.stream.delete_message(sequence).await?;
        Ok(())
    }

    /// Removes every chunk stored under `nuid`: an object written in parts
    /// that will never be finished.
    pub async fn drop_parts(&self, nuid: &str) {
        self.purge_subject(&format!("$O.{}.C.{nuid}", self.name))
            .await;
    }

    /// Makes the `chunks` chunks stored under `nuid` object `name`, once they
    /// add up to `size` bytes: they are read back for the digest the object
    /// store records (a running digest cannot be kept across processes), a
    /// few at a time.
    pub async fn seal(
        &self,
        name: &str,
        nuid: &str,
        chunks: usize,
        size: u64,
        chunk_size: usize,
    ) -> Result<ObjectInfo, PutError> {
        let mut reader = self.direct_get(nuid);
        let mut tally = Tally::new();
        let mut fetched = VecDeque::new();
        let mut read = 0;
        while read < chunks {
            let count = (chunks - read).min(BATCH / 2);
            reader
                .fetch(count, &mut fetched, false)
                .await
                .map_err(PutError::Read)?;
            while let Some(chunk) = fetched.pop_front() {
                tally.add(&chunk);
                read += 1;
            }
        }
        let (stored, digest) = tally.finish();
        if stored as u64 != size {
            return Err(PutError::Read(std::io::Error::other(format!(
                "the parts add up to {stored} bytes, not {size}"
            ))));
        }
        let written = Written {
            nuid,
            size: stored,
            chunks,
            digest,
        };
        publish_info(self, name, written, chunk_size, Default::default()).await
    }
}
