//! The durable record of a resumable upload, in the `mediajet_tus` bucket:
//! how long it will be, how much of it is stored and under which chunks,
//! the job it becomes. Any Ingest process can take an upload over from it.
//!
//! Keys are `open.<owner>.<upload>` while bytes are still to come and
//! `done.<owner>.<upload>` once the upload is a job, `<owner>` a digest of
//! the owner's id. An upload is looked up under its owner's key only, so
//! another user's upload is not there to be found; the open uploads of an
//! owner are counted from the bucket's subjects in one request.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::Stream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::actors::ingest::error::ApiError;
use crate::domain::JobId;
use crate::storage::buckets;
use crate::wire::{self, AudioOptions, Format, OutputSpec};

/// An upload id: 32 lowercase hex digits (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadId(String);

impl UploadId {
    pub(crate) fn new() -> Result<UploadId, ApiError> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(UploadId(crate::hex::encode(&bytes)))
    }

    /// The id of a request path, if it has the form ids have; anything else
    /// names no upload.
    pub(crate) fn parse(text: &str) -> Option<UploadId> {
        let valid = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| UploadId(text.to_string()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is known of one resumable upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    pub v: u32,
    pub id: UploadId,
    pub owner: String,
    /// The job the upload becomes; its bytes are stored as that job's upload.
    pub job_id: JobId,
    /// The whole upload's size, as its creation declared it.
    pub length: u64,
    /// Bytes stored so far.
    pub offset: u64,
    /// The id the chunks are stored under, and how many of them count.
    pub nuid: String,
    pub chunks: usize,
    /// The stream sequence of the last chunk that counts (0: none yet).
    /// Chunks after it under `nuid` were never counted and are dropped.
    pub last_sequence: u64,
    pub filename: String,
    pub format: Format,
    pub options: AudioOptions,
    /// The outputs after the first, when the upload's job is to make
    /// several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_outputs: Vec<OutputSpec>,
    /// Where the job's end is POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the upload is given up if no byte comes before.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The job exists.
    pub done: bool,
}

impl UploadRecord {
    pub(crate) fn whole(&self) -> bool {
        self.offset == self.length
    }

    pub(crate) fn expired(&self) -> bool {
        self.expires_at <= OffsetDateTime::now_utc()
    }
}

/// A record as read, with the revision a write over it must name.
pub(crate) struct Stored {
    pub record: UploadRecord,
    pub revision: u64,
}

/// The bucket of upload records.
#[derive(Clone)]
pub(crate) struct Records {
    kv: kv::Store,
    stream: Stream,
}

/// The owner's part of a key: a digest, so any owner id makes a valid key.
fn owner_part(owner: &str) -> String {
    crate::hex::sha256(owner.as_bytes())[..32].to_string()
}

fn key(owner: &str, id: &UploadId, done: bool) -> String {
    let state = if done { "done" } else { "open" };
    format!("{state}.{}.{}", owner_part(owner), id.as_str())
}

/// A write that lost to another one: the record moved on meanwhile.
#[derive(Debug)]
pub(crate) struct Overtaken;

impl Records {
    pub(crate) fn new(kv: kv::Store, stream: Stream) -> Records {
        Records { kv, stream }
    }

    /// `owner`'s upload `id`, open or done.
    pub(crate) async fn get(&self, owner: &str, id: &UploadId) -> Result<Option<Stored>, ApiError> {
        for done in [false, true] {
            let entry = self
                .kv
                .entry(key(owner, id, done))
                .await
                .map_err(|e| ApiError::unavailable("the uploads records", e))?;
            if let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) {
                let record = wire::decode(&entry.value).map_err(ApiError::internal)?;
                return Ok(Some(Stored {
                    record,
                    revision: entry.revision,
                }));
            }
        }
        Ok(None)
    }

    pub(crate) async fn create(&self, record: &UploadRecord) -> Result<u64, ApiError> {
        self.kv
            .create(key(&record.owner, &record.id, false), wire::encode(record))
            .await
            .map_err(|e| ApiError::unavailable("the uploads records", e))
    }

    /// Writes `record` over the revision read; `Ok(Err(Overtaken))` when
    /// another write came first.
    pub(crate) async fn update(
        &self,
        record: &UploadRecord,
        revision: u64,
    ) -> Result<Result<u64, Overtaken>, ApiError> {
        let key = key(&record.owner, &record.id, false);
        match self.kv.update(key, wire::encode(record), revision).await {
            Ok(revision) => Ok(Ok(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(Err(Overtaken)),
            Err(e) => Err(ApiError::unavailable("the uploads records", e)),
        }
    }

    /// Files the record of an upload that is now a job under `done`.
    pub(crate) async fn mark_done(&self, record: &UploadRecord) -> Result<(), ApiError> {
        let mut done = record.clone();
        done.done = true;
        self.kv
            .put(key(&record.owner, &record.id, true), wire::encode(&done))
            .await
            .map_err(|e| ApiError::unavailable("the uploads records", e))?;
        self.remove_key(&key(&record.owner, &record.id, false))
            .await
    }

    /// Forgets the record: nothing of it stays in the bucket.
    pub(crate) async fn remove(&self, record: &UploadRecord) -> Result<(), ApiError> {
        self.remove_key(&key(&record.owner, &record.id, record.done))
            .await
    }

    async fn remove_key(&self, key: &str) -> Result<(), ApiError> {
        // A purge of the key's subject, not a KV delete, which would leave a
        // marker that the count of open uploads would count.
        self.stream
            .purge()
            .filter(format!("$KV.{}.{key}", crate::wire::names::TUS_BUCKET))
            .await
            .map(|_| ())
            .map_err(|e| ApiError::unavailable("the uploads records", e))
    }

    /// The records under the keys matching `pattern`. A record this
    /// version cannot read is left to its expiry.
    async fn matching(&self, pattern: String) -> Result<Vec<Stored>, ApiError> {
        let unavailable = |e| ApiError::unavailable("the uploads records", e);
        let keys = buckets::keys_matching(&self.kv, &pattern)
            .await
            .map_err(unavailable)?;
        let mut records = Vec::new();
        for key in keys {
            let read = buckets::read_entry(&self.kv, &key)
                .await
                .map_err(|e| unavailable(e.into()))?;
            if let Some((record, revision)) = read {
                records.push(Stored { record, revision });
            }
        }
        Ok(records)
    }

    /// `owner`'s uploads still receiving bytes.
    pub(crate) async fn open(&self, owner: &str) -> Result<Vec<UploadRecord>, ApiError> {
        let records = self
            .matching(format!("open.{}.*", owner_part(owner)))
            .await?;
        Ok(records.into_iter().map(|s| s.record).collect())
    }

    /// Every record there is, for the sweep of expired ones.
    pub(crate) async fn all(&self) -> Result<Vec<UploadRecord>, ApiError> {
        let records = self.matching(">".to_string()).await?;
        Ok(records.into_iter().map(|s| s.record).collect())
    }
}
