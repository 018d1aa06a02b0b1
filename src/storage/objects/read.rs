//! Reading an object chunk by chunk with direct gets (any live replica
//! answers), several chunks per request, its size and SHA-256 checked at
//! the end (the walk itself is `follow.rs`'s); reading ahead; and cutting a
//! byte range out of the chunks.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::object_store::ObjectInfo;
use aws_lc_rs::digest;
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;

use super::{Bucket, Chunks, ReadError};

/// A chunk of an object could not be read, or the chunks do not add up to
/// the object that was written.
pub(super) fn chunk_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

impl Bucket {
    /// The object's metadata and a stream of its bytes, one chunk at a time.
    /// The stream checks the object's size and SHA-256 digest at its end and
    /// fails instead of ending if they do not match.
    pub async fn read(&self, name: &str) -> Result<(ObjectInfo, Chunks), ReadError> {
        let info = self.info(name).await?;
        let chunks = self.chunks(name, Some(info.clone()), &info.nuid, Duration::ZERO);
        Ok((info, chunks))
    }

    /// Direct gets of the chunks written under `nuid`.
    pub(super) fn direct_get(&self, nuid: &str) -> DirectGet {
        DirectGet {
            client: self.context.client(),
            api: format!(
                "$JS.API.DIRECT.GET.{}",
                self.stream.cached_info().config.name
            ),
            subject: format!("$O.{}.C.{nuid}", self.name),
            next_sequence: 1,
        }
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

/// Chunks asked for in one direct get. NATS 2.11 and later answer a batch
/// with the chunks back to back, so the server reads the next chunk while
/// the last one travels; one chunk per request left both sides waiting on
/// each other, and the copy of a large upload ran at about 300 MiB/s.
pub(super) const BATCH: usize = 8;
/// How long the first chunk of a batch may take to come.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Batched direct gets of one object's chunks, in order.
pub(super) struct DirectGet {
    client: async_nats::Client,
    /// The stream's direct-get subject.
    api: String,
    /// The subject of the object's chunks.
    subject: String,
    /// The stream sequence to look from.
    next_sequence: u64,
}

impl DirectGet {
    /// Asks for the next `count` chunks in one batched direct get and adds
    /// them to `fetched` as they come; returns how many came. None at all is
    /// an answer (0) only when `may_be_none`: an object still being written
    /// may have no further chunk yet.
    pub(super) async fn fetch(
        &mut self,
        count: usize,
        fetched: &mut VecDeque<Bytes>,
        may_be_none: bool,
    ) -> std::io::Result<usize> {
        let failed = |what: &str, err: &dyn std::fmt::Display| {
            chunk_error(format!("cannot read a chunk: {what}: {err}"))
        };
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| failed("subscribe", &e))?;
        let request = serde_json::json!({
            "seq": self.next_sequence,
            "next_by_subj": self.subject,
            "batch": count,
        });
        self.client
            .publish_with_reply(self.api.clone(), inbox, request.to_string().into())
            .await
            .map_err(|e| failed("request", &e))?;
        let mut came = 0;
        while came < count {
            let reply = tokio::time::timeout(BATCH_TIMEOUT, replies.next())
                .await
                .map_err(|e| failed("no answer", &e))?
                .ok_or_else(|| chunk_error("cannot read a chunk: the connection closed".into()))?;
            if let Some(status) = reply.status {
                // 204 ends a batch early; 404 says there is nothing past the
                // sequence asked for; anything else is an error.
                let description = reply.description.unwrap_or_default();
                match status.as_u16() {
                    204 if came > 0 => break,
                    204 | 404 if came == 0 && may_be_none => break,
                    code => {
                        return Err(chunk_error(format!(
                            "cannot read a chunk: {code} {description}"
                        )));
                    }
                }
            }
            let sequence = reply
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Sequence"))
                .and_then(|v| v.as_str().parse::<u64>().ok())
                .ok_or_else(|| chunk_error("a chunk came without its sequence".into()))?;
            self.next_sequence = sequence + 1;
            fetched.push_back(reply.payload);
            came += 1;
        }
        Ok(came)
    }
}

/// The size and SHA-256 of the bytes read so far.
pub(super) struct Tally {
    size: usize,
    digest: digest::Context,
}

impl Tally {
    pub(super) fn new() -> Tally {
        Tally {
            size: 0,
            digest: digest::Context::new(&digest::SHA256),
        }
    }

    pub(super) fn add(&mut self, chunk: &[u8]) {
        self.size += chunk.len();
        self.digest.update(chunk);
    }

    /// The size and SHA-256 of everything added.
    pub(super) fn finish(self) -> (usize, digest::Digest) {
        (self.size, self.digest.finish())
    }

    /// Once every chunk is read: whether they are the object `info` says
    /// was written.
    pub(super) fn verify(&self, info: &ObjectInfo) -> std::io::Result<()> {
        if self.size != info.size {
            return Err(chunk_error(format!(
                "the object has {} bytes, its chunks {}",
                info.size, self.size
            )));
        }
        if let Some(expected) = &info.digest {
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
