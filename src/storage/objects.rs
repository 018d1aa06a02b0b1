//! The object store: media buckets, streamed writes in whole chunks, and
//! reads that any live replica can serve.

use std::time::Duration;

use async_nats::jetstream::{
    Context,
    object_store::{self, ObjectInfo, ObjectStore},
    stream::{StorageType, Stream},
};
use aws_lc_rs::digest;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::jetstream::SetupError;
use crate::wire::names;

/// An object store bucket. Objects are written through [`put_object`] and
/// read through [`Bucket::read`], which fetches chunk by chunk with direct
/// gets. The object store's own reader creates an ephemeral consumer for
/// each read instead; a cluster that has lost a node may place that consumer
/// on the lost node, and the read then hangs until it times out (seen in
/// about six of ten reads with one of three nodes down). Any live replica
/// answers a direct get.
#[derive(Clone)]
pub struct Bucket {
    store: ObjectStore,
    stream: Stream,
    context: Context,
    name: &'static str,
}

/// The bytes of an object, one chunk at a time.
pub type Chunks = BoxStream<'static, std::io::Result<Bytes>>;

/// An object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such object")]
    NotFound,
    #[error("cannot read object info: {0}")]
    Nats(String),
}

/// A chunk of an object could not be read, or the chunks do not add up to
/// the object that was written.
fn chunk_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

impl Bucket {
    /// The object's metadata and a stream of its bytes, one chunk at a time.
    /// The stream checks the object's size and SHA-256 digest at its end and
    /// fails instead of ending if they do not match.
    pub async fn read(&self, name: &str) -> Result<(ObjectInfo, Chunks), ReadError> {
        let info = self.info(name).await?;
        let state = ChunkCursor {
            stream: self.stream.clone(),
            subject: format!("$O.{}.C.{}", self.name, info.nuid),
            next_sequence: 1,
            remaining: info.chunks,
            expected_size: info.size,
            size: 0,
            digest: digest::Context::new(&digest::SHA256),
            expected_digest: info.digest.clone(),
        };
        let chunks = futures::stream::try_unfold(state, ChunkCursor::next).boxed();
        Ok((info, chunks))
    }

    /// The metadata of an object that exists.
    pub async fn info(&self, name: &str) -> Result<ObjectInfo, ReadError> {
        match self.store.info(name).await {
            Ok(info) if !info.deleted => Ok(info),
            Ok(_) => Err(ReadError::NotFound),
            Err(err) if err.kind() == object_store::InfoErrorKind::NotFound => {
                Err(ReadError::NotFound)
            }
            Err(err) => Err(ReadError::Nats(err.to_string())),
        }
    }

    /// Deletes an object and its chunks.
    pub async fn delete(&self, name: &str) -> Result<(), object_store::DeleteError> {
        self.store.delete(name).await
    }
}

/// `chunks`, fetched ahead: a task asks for the next chunk while the caller
/// is still busy with the last one (writing it to disk, say), which a read
/// chunk by chunk would otherwise wait for. At most `ahead` chunks wait.
pub fn read_ahead(mut chunks: Chunks, ahead: usize) -> Chunks {
    let (fetched, ready) = tokio::sync::mpsc::channel(ahead.max(1));
    tokio::spawn(async move {
        while let Some(chunk) = chunks.next().await {
            let failed = chunk.is_err();
            // The reader is gone: stop fetching.
            if fetched.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    futures::stream::unfold(ready, |mut ready| async move {
        ready.recv().await.map(|chunk| (chunk, ready))
    })
    .boxed()
}

/// The `len` bytes of `chunks` that start `start` bytes in. Chunks before
/// the range are read and dropped: objects carry no index from byte offsets to
/// chunks, and the audio served this way is small next to the chunk size.
pub fn slice(chunks: Chunks, start: u64, len: u64) -> Chunks {
    futures::stream::try_unfold(
        (chunks, start, len),
        |(mut chunks, mut skip, mut remaining)| async move {
            use futures::TryStreamExt;
            while remaining > 0 {
                let Some(chunk) = chunks.try_next().await? else {
                    return Ok(None);
                };
                let size = chunk.len() as u64;
                if skip >= size {
                    skip -= size;
                    continue;
                }
                let from = skip;
                let take = (size - from).min(remaining);
                remaining -= take;
                let part = chunk.slice(from as usize..(from + take) as usize);
                return Ok(Some((part, (chunks, 0, remaining))));
            }
            Ok(None)
        },
    )
    .boxed()
}

/// Where a chunked read stands.
struct ChunkCursor {
    stream: Stream,
    subject: String,
    next_sequence: u64,
    remaining: usize,
    expected_size: usize,
    size: usize,
    digest: digest::Context,
    expected_digest: Option<String>,
}

impl ChunkCursor {
    async fn next(mut self) -> std::io::Result<Option<(Bytes, ChunkCursor)>> {
        if self.remaining == 0 {
            self.verify()?;
            return Ok(None);
        }
        let message = self
            .stream
            .direct_get_next_for_subject(self.subject.clone(), Some(self.next_sequence))
            .await
            .map_err(|err| chunk_error(format!("cannot read a chunk: {err}")))?;
        self.next_sequence = message.sequence + 1;
        self.remaining -= 1;
        self.size += message.payload.len();
        self.digest.update(&message.payload);
        Ok(Some((message.payload, self)))
    }

    fn verify(&self) -> std::io::Result<()> {
        if self.size != self.expected_size {
            return Err(chunk_error(format!(
                "the object has {} bytes, its chunks {}",
                self.expected_size, self.size
            )));
        }
        if let Some(expected) = &self.expected_digest {
            let actual = base64::engine::general_purpose::URL_SAFE
                .encode(self.digest.clone().finish().as_ref());
            let expected = expected.trim_start_matches("SHA-256=");
            if expected.trim_end_matches('=') != actual.trim_end_matches('=') {
                return Err(chunk_error(
                    "the object's chunks do not match its digest".into(),
                ));
            }
        }
        Ok(())
    }
}

async fn ensure_object_store(
    js: &Context,
    bucket: &'static str,
    description: &str,
    max_age: Duration,
    max_bytes: u64,
    replicas: usize,
) -> Result<Bucket, SetupError> {
    let config = object_store::Config {
        // New writes are refused once the bucket is full (the object store
        // discards new messages, never old ones); 0 leaves it unbounded.
        max_bytes: if max_bytes == 0 {
            -1
        } else {
            i64::try_from(max_bytes).unwrap_or(i64::MAX)
        },
        bucket: bucket.to_string(),
        description: Some(description.to_string()),
        max_age,
        num_replicas: replicas,
        storage: StorageType::File,
        ..Default::default()
    };
    let store = match js.create_object_store(config).await {
        Ok(store) => store,
        Err(create) => js
            .get_object_store(bucket)
            .await
            .map_err(|_| SetupError::new("object store", bucket, create))?,
    };
    let stream = js
        .get_stream(format!("OBJ_{bucket}"))
        .await
        .map_err(|err| SetupError::new("object store", bucket, err))?;
    Ok(Bucket {
        store,
        stream,
        context: js.clone(),
        name: bucket,
    })
}

/// Uploaded media, one object per job id. Transcoders delete an upload once
/// its job has ended; the age limit (`retention`) also clears uploads never
/// converted and the chunks of uploads that broke off half-way, which have
/// no object to delete them by.
pub async fn uploads_bucket(
    js: &Context,
    replicas: usize,
    retention: Duration,
    max_bytes: u64,
) -> Result<Bucket, SetupError> {
    ensure_object_store(
        js,
        names::UPLOADS_BUCKET,
        "uploaded media",
        retention,
        max_bytes,
        replicas,
    )
    .await
}

/// Converted audio, one object per finished job, kept until its owner
/// deletes it or `retention` has passed.
pub async fn outputs_bucket(
    js: &Context,
    replicas: usize,
    retention: Duration,
    max_bytes: u64,
) -> Result<Bucket, SetupError> {
    ensure_object_store(
        js,
        names::OUTPUTS_BUCKET,
        "converted audio",
        retention,
        max_bytes,
        replicas,
    )
    .await
}

/// The object chunk size for this connection: 1 MiB, or less when the
/// server's payload limit is smaller. Larger chunks make fewer round trips
/// but hold more memory and leave less to overlap: with 4 MiB chunks the
/// 1 GiB upload of B2 (BENCHMARKS.md) ran at 268 MiB/s instead of 402 and
/// grew the process by 35 MiB instead of 11.
pub fn chunk_size(client: &async_nats::Client) -> usize {
    let max_payload = client.server_info().max_payload;
    // Leave room for the chunk's headers and subject.
    let usable = max_payload.saturating_sub(16 * 1024).max(64 * 1024);
    usable.min(1024 * 1024)
}

/// Stores everything `data` yields as object `name`: its chunks first, on
/// a subject of their own, then its metadata, which makes the object exist.
/// The object store publishes one chunk per read and waits for its
/// acknowledgement, so reads are coalesced into full chunks first (a
/// network body that arrives in 8 KiB pieces still travels in chunks of
/// `chunk_size`), and the next chunk is gathered while the last one is
/// published and acknowledged, so the source and NATS are busy at the same
/// time. At most three chunks are held.
///
/// This is the object store's own `put` (same subjects, same metadata, so
/// any object store client reads the result), except that a put that fails
/// part-way (the client hung up, the upload was too large) purges the chunks
/// it published: nothing else could name them, and they would otherwise
/// fill the bucket until its max age.
pub async fn put_object(
    bucket: &Bucket,
    name: &str,
    data: impl AsyncRead + Unpin,
    chunk_size: usize,
    metadata: std::collections::HashMap<String, String>,
) -> Result<ObjectInfo, PutError> {
    let earlier = bucket.info(name).await.ok();
    let nuid = new_nuid().map_err(PutError::Publish)?;
    let chunks_subject = format!("$O.{}.C.{nuid}", bucket.name);
    let stored = publish_chunks(bucket, &chunks_subject, data, chunk_size).await;
    let (size, chunks, digest) = match stored {
        Ok(stored) => stored,
        Err(err) => {
            bucket.purge_subject(&chunks_subject).await;
            return Err(err);
        }
    };
    let info = ObjectInfo {
        name: name.to_string(),
        description: None,
        metadata,
        headers: None,
        options: Some(object_store::ObjectOptions {
            link: None,
            max_chunk_size: Some(chunk_size),
        }),
        bucket: bucket.name.to_string(),
        nuid,
        size,
        chunks,
        modified: Some(time::OffsetDateTime::now_utc()),
        digest: Some(format!(
            "SHA-256={}",
            base64::engine::general_purpose::URL_SAFE.encode(digest.as_ref())
        )),
        deleted: false,
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_ROLLUP, "sub");
    let meta_subject = format!(
        "$O.{}.M.{}",
        bucket.name,
        base64::engine::general_purpose::URL_SAFE.encode(name)
    );
    let payload = serde_json::to_vec(&info).map_err(|e| PutError::Publish(e.to_string()))?;
    let published = match bucket
        .context
        .publish_with_headers(meta_subject, headers, payload.into())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    if let Err(err) = published {
        bucket.purge_subject(&chunks_subject).await;
        return Err(PutError::Publish(format!(
            "cannot store the object's metadata: {err}"
        )));
    }
    // The chunks of the object this one replaces are no longer named.
    if let Some(earlier) = earlier {
        bucket
            .purge_subject(&format!("$O.{}.C.{}", bucket.name, earlier.nuid))
            .await;
    }
    Ok(info)
}

/// An object could not be stored; nothing of it is left behind.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The data could not be read (the client hung up, or its body failed).
    #[error("cannot read the data: {0}")]
    Read(#[source] std::io::Error),
    /// JetStream refused or did not acknowledge a write.
    #[error("cannot store the data: {0}")]
    Publish(String),
}

impl PutError {
    /// The reading error that stopped the put, if that is what stopped it.
    pub fn read_error(&self) -> Option<&std::io::Error> {
        match self {
            PutError::Read(err) => Some(err),
            PutError::Publish(_) => None,
        }
    }
}

/// A fresh object id, as the object store makes them: 22 characters of
/// base 62 from 128 random bits.
fn new_nuid() -> Result<String, String> {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    let mut value = u128::from_le_bytes(bytes);
    Ok((0..22)
        .map(|_| {
            let digit = DIGITS[(value % 62) as usize];
            value /= 62;
            digit as char
        })
        .collect())
}

/// Publishes `data` as chunks on `subject`; returns the size, the number of
/// chunks and the SHA-256 of the whole.
async fn publish_chunks(
    bucket: &Bucket,
    subject: &str,
    data: impl AsyncRead + Unpin,
    chunk_size: usize,
) -> Result<(usize, usize, digest::Digest), PutError> {
    let (chunks, mut ready) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    let gather = async move {
        let mut data = data;
        loop {
            let mut chunk = BytesMut::with_capacity(chunk_size);
            let outcome = loop {
                match data.read_buf(&mut chunk).await {
                    Ok(0) => break Ok(true),
                    Ok(_) if chunk.len() >= chunk_size => break Ok(false),
                    Ok(_) => {}
                    Err(err) => break Err(err),
                }
            };
            let (end, failed) = match outcome {
                Ok(end) => (end, None),
                Err(err) => (true, Some(err)),
            };
            if !chunk.is_empty() && chunks.send(Ok(chunk.freeze())).await.is_err() {
                // The publishing gave up: nothing more is wanted.
                return;
            }
            if let Some(err) = failed {
                let _ = chunks.send(Err(err)).await;
            }
            if end {
                return;
            }
        }
    };
    let publish = async move {
        let mut sha256 = digest::Context::new(&digest::SHA256);
        let (mut size, mut count) = (0, 0);
        while let Some(chunk) = ready.recv().await {
            let chunk = chunk.map_err(PutError::Read)?;
            sha256.update(&chunk);
            size += chunk.len();
            count += 1;
            let acked = match bucket.context.publish(subject.to_string(), chunk).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            acked.map_err(|e| PutError::Publish(format!("cannot store a chunk: {e}")))?;
        }
        Ok((size, count, sha256.finish()))
    };
    // Dropping the receiver when publishing fails stops the gathering.
    let ((), stored) = futures::future::join(gather, publish).await;
    stored
}

impl Bucket {
    /// Purges chunks that no object names and that have not grown for
    /// `idle`: what a put left behind when its process died mid-way (a
    /// crash, or a redeploy that did not wait for an upload). A put in
    /// progress elsewhere writes a chunk well within `idle` (uploads slower
    /// than that are cut off), so it is never taken for one. Returns how
    /// many objects' chunks were purged.
    pub async fn sweep_orphans(&self, idle: Duration) -> Result<usize, String> {
        let named = self.named_nuids().await?;
        let chunks = format!("$O.{}.C.", self.name);
        let mut subjects = self
            .stream
            .clone()
            .info_with_subjects(format!("{chunks}>"))
            .await
            .map_err(|e| e.to_string())?;
        let mut orphans = Vec::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject.map_err(|e| e.to_string())?;
            let nuid = subject.strip_prefix(&chunks).unwrap_or_default();
            if !named.contains(nuid) {
                orphans.push(subject);
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let mut purged = 0;
        for subject in orphans {
            let Ok(last) = self
                .stream
                .direct_get_last_for_subject(subject.as_str())
                .await
            else {
                continue;
            };
            if now - last.time >= idle {
                self.purge_subject(&subject).await;
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// The chunk subjects' ids of every object the bucket names.
    async fn named_nuids(&self) -> Result<std::collections::HashSet<String>, String> {
        let meta = format!("$O.{}.M.>", self.name);
        let mut subjects = self
            .stream
            .clone()
            .info_with_subjects(meta)
            .await
            .map_err(|e| e.to_string())?;
        let mut named = std::collections::HashSet::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject.map_err(|e| e.to_string())?;
            let last = self
                .stream
                .direct_get_last_for_subject(subject)
                .await
                .map_err(|e| e.to_string())?;
            if let Ok(info) = serde_json::from_slice::<ObjectInfo>(&last.payload) {
                named.insert(info.nuid);
            }
        }
        Ok(named)
    }

    /// Removes every message on `subject`: the chunks of a put that failed
    /// or of an object that was replaced. A failure is logged; the bucket's
    /// max age removes them in the end.
    async fn purge_subject(&self, subject: &str) {
        if let Err(err) = self.stream.purge().filter(subject).await {
            tracing::warn!(subject, error = %err, "cannot purge the chunks of an object");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn chunks_of(data: &[u8], size: usize) -> Chunks {
        let parts: Vec<std::io::Result<Bytes>> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(parts).boxed()
    }

    async fn sliced(data: &[u8], chunk: usize, start: u64, len: u64) -> Vec<u8> {
        let parts: Vec<Bytes> = slice(chunks_of(data, chunk), start, len)
            .try_collect()
            .await
            .unwrap();
        parts.concat()
    }

    #[tokio::test]
    async fn a_slice_spans_chunk_boundaries() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for (start, len) in [(0, 1000), (0, 1), (99, 2), (150, 300), (999, 1), (640, 360)] {
            let expected = &data[start as usize..(start + len) as usize];
            assert_eq!(
                sliced(&data, 100, start, len).await,
                expected,
                "{start}+{len}"
            );
        }
        // Past the end, a slice just stops.
        assert_eq!(sliced(&data, 100, 990, 50).await, &data[990..]);
    }
}
