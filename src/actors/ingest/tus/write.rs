//! Writing one part (a `PATCH` body) of a resumable upload: its bytes are
//! gathered into chunks and stored as they arrive, and each stored chunk is
//! counted in the upload's record at once, so a connection that breaks, or
//! a process that dies, keeps everything up to its last whole chunk. A part
//! with a checksum is counted only whole, once the checksum matches.
//!
//! The request that writes a part first writes the record over (it takes
//! the upload over): an earlier request still writing, say on a connection
//! the client gave up on, fails at its next count and drops its chunk. The
//! new writer drops whatever chunks a writer stored but never counted.

use aws_lc_rs::digest;
use axum::body::Body;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use super::record::{Overtaken, Stored, UploadRecord};
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::{Ingest, rate};

/// The status that says a part's checksum did not match (tus checksum
/// extension).
pub(crate) const CHECKSUM_MISMATCH: u16 = 460;

/// What `Upload-Checksum` says a part's bytes hash to.
pub(crate) struct Checksum {
    algorithm: &'static digest::Algorithm,
    expected: Vec<u8>,
}

/// The algorithms `Tus-Checksum-Algorithm` offers.
pub(crate) const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";

impl Checksum {
    /// Reads `<algorithm> <base64 digest>`.
    pub(crate) fn parse(header: &str) -> Result<Checksum, ApiError> {
        let bad = |message: &str| ApiError::BadRequest("bad_checksum", message.to_string());
        let (name, encoded) = header
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("`Upload-Checksum` must be `<algorithm> <base64 digest>`"))?;
        let algorithm = match name {
            "sha1" => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            "sha256" => &digest::SHA256,
            _ => return Err(bad("the checksum algorithm must be sha1 or sha256")),
        };
        let expected = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .filter(|d| d.len() == algorithm.output_len())
            .ok_or_else(|| bad("the checksum is not a base64 digest of its algorithm"))?;
        Ok(Checksum {
            algorithm,
            expected,
        })
    }
}

/// The part being written: the record as this writer last wrote it.
struct Writer<'a> {
    ingest: &'a Ingest,
    record: UploadRecord,
    revision: u64,
}

fn taken_over() -> ApiError {
    ApiError::Conflict(
        "upload_taken_over",
        "another request is writing this upload; ask for its offset (HEAD) and go on from there"
            .into(),
    )
}

impl Writer<'_> {
    /// Writes `next` over the record: the chunks up to `sequence` now count.
    /// When the write fails in a way that leaves it unknown whether it took,
    /// the record is read again to find out.
    async fn commit(&mut self, next: UploadRecord) -> Result<(), ApiError> {
        match self.ingest.tus.records.update(&next, self.revision).await {
            Ok(Ok(revision)) => {
                self.record = next;
                self.revision = revision;
                Ok(())
            }
            Ok(Err(Overtaken)) => Err(taken_over()),
            Err(err) => match self.ingest.tus.records.get(&next.owner, &next.id).await {
                Ok(Some(again)) if again.record.last_sequence == next.last_sequence => {
                    self.record = again.record;
                    self.revision = again.revision;
                    Ok(())
                }
                _ => Err(err),
            },
        }
    }

    /// Stores `chunk` and counts it.
    async fn store_counted(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        let size = chunk.len() as u64;
        let sequence = self.store(chunk).await?;
        let mut next = self.record.clone();
        next.offset += size;
        next.chunks += 1;
        next.last_sequence = sequence;
        if let Err(err) = self.commit(next).await {
            self.drop_chunks(&[sequence]).await;
            return Err(err);
        }
        Ok(())
    }

    async fn store(&self, chunk: Bytes) -> Result<u64, ApiError> {
        self.ingest
            .uploads
            .append_chunk(&self.record.nuid, chunk)
            .await
            .map_err(|e| ApiError::unavailable("the object store", e))
    }

    async fn drop_chunks(&self, sequences: &[u64]) {
        for sequence in sequences {
            if let Err(err) = self.ingest.uploads.drop_chunk(*sequence).await {
                tracing::warn!(error = %err, "cannot drop a chunk that does not count");
            }
        }
    }
}

impl Ingest {
    /// Writes a part that starts at `offset` into the upload `stored`;
    /// returns the record once the part's bytes are counted. Whatever of
    /// the part was counted before a failure stays counted, unless the part
    /// has a `checksum`: then it counts whole or not at all.
    pub(crate) async fn write_part(
        &self,
        stored: Stored,
        offset: u64,
        body: Body,
        checksum: Option<Checksum>,
    ) -> Result<UploadRecord, ApiError> {
        let Stored {
            mut record,
            revision,
        } = stored;
        if record.offset != offset {
            return Err(ApiError::Conflict(
                "offset_mismatch",
                format!(
                    "the upload has {} bytes, not {offset}: send from there",
                    record.offset
                ),
            ));
        }
        record.expires_at = OffsetDateTime::now_utc() + self.tus.expiry;
        let revision = match self.tus.records.update(&record, revision).await? {
            Ok(revision) => revision,
            Err(Overtaken) => return Err(taken_over()),
        };
        self.uploads
            .drop_chunks_after(&record.nuid, record.last_sequence)
            .await
            .map_err(|e| ApiError::unavailable("the object store", e))?;
        let remaining = record.length - record.offset;
        let mut writer = Writer {
            ingest: self,
            record,
            revision,
        };
        let body = body.into_data_stream().map_err(std::io::Error::other);
        let mut body = Box::pin(rate::at_least(body, self.upload_min_rate));
        let mut hasher = checksum.as_ref().map(|c| digest::Context::new(c.algorithm));
        // Chunks of a part with a checksum, stored but not yet counted.
        let mut pending: Vec<u64> = Vec::new();
        let mut buffer = BytesMut::new();
        let mut received = 0u64;
        let stopped = loop {
            let bytes = match body.next().await {
                Some(Ok(bytes)) => bytes,
                Some(Err(err)) if err.kind() == std::io::ErrorKind::TimedOut => {
                    break Some(ApiError::TooSlow(self.upload_min_rate));
                }
                Some(Err(err)) => {
                    break Some(ApiError::BadRequest(
                        "upload_interrupted",
                        format!("the part broke off: {err}"),
                    ));
                }
                None => break None,
            };
            received += bytes.len() as u64;
            if received > remaining {
                break Some(ApiError::TooLarge(format!(
                    "the part goes past the upload's length: {remaining} bytes were left"
                )));
            }
            if let Some(hasher) = &mut hasher {
                hasher.update(&bytes);
            }
            buffer.extend_from_slice(&bytes);
            while buffer.len() >= self.chunk_size {
                let chunk = buffer.split_to(self.chunk_size).freeze();
                let stored = if hasher.is_some() {
                    writer
                        .store(chunk)
                        .await
                        .map(|sequence| pending.push(sequence))
                } else {
                    writer.store_counted(chunk).await
                };
                if let Err(err) = stored {
                    writer.drop_chunks(&pending).await;
                    return Err(err);
                }
            }
        };
        let (Some(checksum), Some(hasher)) = (checksum, hasher) else {
            // Without a checksum, what came before a break still counts.
            if !buffer.is_empty() {
                writer.store_counted(buffer.freeze()).await?;
            }
            return match stopped {
                Some(err) => Err(err),
                None => Ok(writer.record),
            };
        };
        let last = if buffer.is_empty() || stopped.is_some() {
            None
        } else {
            match writer.store(buffer.freeze()).await {
                Ok(sequence) => Some(sequence),
                Err(err) => {
                    writer.drop_chunks(&pending).await;
                    return Err(err);
                }
            }
        };
        pending.extend(last);
        if let Some(err) = stopped {
            writer.drop_chunks(&pending).await;
            return Err(err);
        }
        if hasher.finish().as_ref() != checksum.expected.as_slice() {
            writer.drop_chunks(&pending).await;
            return Err(ApiError::ChecksumMismatch);
        }
        let Some(&last) = pending.last() else {
            return Ok(writer.record);
        };
        let mut next = writer.record.clone();
        next.offset += received;
        next.chunks += pending.len();
        next.last_sequence = last;
        if let Err(err) = writer.commit(next).await {
            writer.drop_chunks(&pending).await;
            return Err(err);
        }
        Ok(writer.record)
    }
}
