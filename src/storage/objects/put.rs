//! Writing an object whole or not at all: the object store's layout
//! (chunks first, metadata last), purging the chunks of a write that fails.

use async_nats::jetstream::object_store::{self, ObjectInfo};
use aws_lc_rs::digest;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Bucket;
use crate::error::BoxError;

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
    put_object_announced(bucket, name, data, chunk_size, metadata, None).await
}

/// How an object being written begins: the id its chunks are stored under
/// and its first chunk, sent once that chunk is stored.
#[derive(Debug, Clone)]
pub struct Started {
    pub nuid: String,
    pub head: Bytes,
}

/// [`put_object`], telling `announce` how the object begins as soon as its
/// first chunk is stored, so a reader can follow the rest as it comes
/// ([`Bucket::follow`]). An empty object announces nothing.
pub async fn put_object_announced(
    bucket: &Bucket,
    name: &str,
    data: impl AsyncRead + Unpin,
    chunk_size: usize,
    metadata: std::collections::HashMap<String, String>,
    announce: Option<tokio::sync::oneshot::Sender<Started>>,
) -> Result<ObjectInfo, PutError> {
    let earlier = bucket.info(name).await.ok();
    let nuid = new_nuid().map_err(|e| PutError::Publish(e.into()))?;
    let chunks_subject = format!("$O.{}.C.{nuid}", bucket.name);
    let announce = announce.map(|sender| (sender, nuid.clone()));
    let stored = publish_chunks(bucket, &chunks_subject, data, chunk_size, announce).await;
    let (size, chunks, digest) = match stored {
        Ok(stored) => stored,
        Err(err) => {
            bucket.purge_subject(&chunks_subject).await;
            return Err(err);
        }
    };
    let written = Written {
        nuid: &nuid,
        size,
        chunks,
        digest,
    };
    let info = match publish_info(bucket, name, written, chunk_size, metadata).await {
        Ok(info) => info,
        Err(err) => {
            bucket.purge_subject(&chunks_subject).await;
            return Err(err);
        }
    };
    // The chunks of the object this one replaces are no longer named.
    if let Some(earlier) = earlier {
        bucket
            .purge_subject(&format!("$O.{}.C.{}", bucket.name, earlier.nuid))
            .await;
    }
    Ok(info)
}

/// The chunks of an object, all stored: their id, how many bytes they hold
/// in all, how many there are, and the SHA-256 of their bytes in order.
pub(super) struct Written<'a> {
    pub(super) nuid: &'a str,
    pub(super) size: usize,
    pub(super) chunks: usize,
    pub(super) digest: digest::Digest,
}

/// Makes the chunks `written` object `name`: publishes its metadata, as the
/// object store's own `put` writes it.
pub(super) async fn publish_info(
    bucket: &Bucket,
    name: &str,
    written: Written<'_>,
    chunk_size: usize,
    metadata: std::collections::HashMap<String, String>,
) -> Result<ObjectInfo, PutError> {
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
        nuid: written.nuid.to_string(),
        size: written.size,
        chunks: written.chunks,
        modified: Some(time::OffsetDateTime::now_utc()),
        digest: Some(format!(
            "SHA-256={}",
            base64::engine::general_purpose::URL_SAFE.encode(written.digest.as_ref())
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
    let payload = serde_json::to_vec(&info).map_err(|e| PutError::Publish(e.into()))?;
    let published = match bucket
        .context
        .publish_with_headers(meta_subject, headers, payload.into())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()),
        Err(err) => Err(err),
    };
    published.map_err(|err| PutError::Publish(err.into()))?;
    Ok(info)
}

/// An object could not be stored; nothing of it is left behind.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The data could not be read (the client hung up, or its body failed).
    #[error("cannot read the data: {0}")]
    Read(#[source] std::io::Error),
    /// JetStream refused or did not acknowledge a write.
    #[error("cannot store the data")]
    Publish(#[source] BoxError),
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
pub(super) fn new_nuid() -> Result<String, String> {
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
    mut announce: Option<(tokio::sync::oneshot::Sender<Started>, String)>,
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
            let acked = match bucket
                .context
                .publish(subject.to_string(), chunk.clone())
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(BoxError::from),
                Err(err) => Err(BoxError::from(err)),
            };
            acked.map_err(PutError::Publish)?;
            if let Some((sender, nuid)) = announce.take() {
                // Nobody listening any more is no reason to stop the put.
                let _ = sender.send(Started { nuid, head: chunk });
            }
        }
        Ok((size, count, sha256.finish()))
    };
    // Dropping the receiver when publishing fails stops the gathering.
    let ((), stored) = futures::future::join(gather, publish).await;
    stored
}
