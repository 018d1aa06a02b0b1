//! The object store: media buckets, streamed writes in whole chunks, and
//! reads that any live replica can serve.
//!
//! - `read`: reading an object chunk by chunk with direct gets, checked at
//!   the end; reading ahead; byte ranges
//! - `follow`: the walk over an object's chunks, also while it is still
//!   being written
//! - `put`: writing an object whole or not at all
//! - `parts`: writing an object in parts, over many requests and processes
//! - `sweep`: purging the chunks of writes that broke off

mod follow;
mod parts;
mod put;
mod read;
mod sweep;

use std::time::Duration;

use async_nats::jetstream::{
    Context,
    object_store::{self, ObjectInfo, ObjectStore},
    stream::{StorageType, Stream},
};
use bytes::Bytes;
use futures::stream::BoxStream;

use super::jetstream::SetupError;
use crate::wire::names;

pub use put::{PutError, Started, put_object, put_object_announced};
pub use read::{read_ahead, slice};

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
    #[error("cannot read object info")]
    Nats(#[source] object_store::InfoError),
}

impl Bucket {
    /// The metadata of an object that exists.
    pub async fn info(&self, name: &str) -> Result<ObjectInfo, ReadError> {
        match self.store.info(name).await {
            Ok(info) if !info.deleted => Ok(info),
            Ok(_) => Err(ReadError::NotFound),
            Err(err) if err.kind() == object_store::InfoErrorKind::NotFound => {
                Err(ReadError::NotFound)
            }
            Err(err) => Err(ReadError::Nats(err)),
        }
    }

    /// The bytes the bucket holds and the most it may hold (0: no bound).
    pub async fn usage(&self) -> Result<(u64, u64), async_nats::jetstream::stream::InfoError> {
        let info = self.stream.get_info().await?;
        Ok((
            info.state.bytes,
            u64::try_from(info.config.max_bytes).unwrap_or(0),
        ))
    }

    /// Deletes an object and its chunks.
    pub async fn delete(&self, name: &str) -> Result<(), object_store::DeleteError> {
        self.store.delete(name).await
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
