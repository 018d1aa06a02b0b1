//! The KV buckets: one function per bucket, which creates it the first
//! time and opens it after, whoever comes first (every resource is made
//! idempotently, so processes start in any order). Each actor opens only
//! the buckets it uses.

use std::time::Duration;

use async_nats::jetstream::{
    Context, kv,
    stream::{StorageType, Stream},
};

use futures::StreamExt;

use super::jetstream::SetupError;
use crate::error::BoxError;
use crate::wire::{self, names};

/// The keys of `store` that match `pattern` (`owner.*`, `>`), read off
/// its stream's subjects: no value is read.
pub async fn keys_matching(store: &kv::Store, pattern: &str) -> Result<Vec<String>, BoxError> {
    let prefix = format!("$KV.{}.", store.name);
    let mut subjects = store
        .stream
        .clone()
        .info_with_subjects(format!("{prefix}{pattern}"))
        .await?;
    let mut keys = Vec::new();
    while let Some(subject) = subjects.next().await {
        let (subject, _) = subject?;
        keys.push(subject.trim_start_matches(&prefix).to_string());
    }
    Ok(keys)
}

/// The value under `key`, decoded, and its revision; `None` when there is
/// none, it was deleted, or this version cannot read it.
pub async fn read_entry<T: serde::de::DeserializeOwned>(
    store: &kv::Store,
    key: &str,
) -> Result<Option<(T, u64)>, kv::EntryError> {
    let entry = store
        .entry(key)
        .await?
        .filter(|entry| entry.operation == kv::Operation::Put);
    Ok(entry.and_then(|entry| {
        wire::decode(&entry.value)
            .ok()
            .map(|value| (value, entry.revision))
    }))
}

/// A bucket with one value per key, kept until it is deleted.
fn plain(name: &str, description: &str, replicas: usize) -> kv::Config {
    kv::Config {
        bucket: name.to_string(),
        description: description.to_string(),
        history: 1,
        num_replicas: replicas,
        storage: StorageType::File,
        ..Default::default()
    }
}

async fn ensure_kv(
    js: &Context,
    config: kv::Config,
    name: &'static str,
) -> Result<kv::Store, SetupError> {
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        // Another process created it first, possibly with other limits: use it.
        Err(create) => js
            .get_key_value(name)
            .await
            .map_err(|_| SetupError::new("bucket", name, create)),
    }
}

/// Live state of every job, one key per job id.
pub async fn jobs_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(names::JOBS_BUCKET, "live job state", replicas);
    ensure_kv(js, config, names::JOBS_BUCKET).await
}

/// Public token verification keys, one key per key id.
pub async fn keys_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(
        names::KEYS_BUCKET,
        "public token verification keys",
        replicas,
    );
    ensure_kv(js, config, names::KEYS_BUCKET).await
}

/// How long a session may go unrefreshed before its entry expires; the
/// refresh lifetime (`--refresh-ttl`) may not exceed it.
pub const SESSIONS_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);
/// How long a revocation is kept; access tokens (`--token-ttl`) may not live
/// longer, so every token of a revoked session expires before its entry.
pub const REVOKED_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Login sessions, one key per session id; only Auth reads and writes them.
pub async fn sessions_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    ensure_kv(
        js,
        kv::Config {
            bucket: names::SESSIONS_BUCKET.to_string(),
            description: "login sessions and their current refresh token".to_string(),
            history: 1,
            max_age: SESSIONS_MAX_AGE,
            num_replicas: replicas,
            storage: StorageType::File,
            ..Default::default()
        },
        names::SESSIONS_BUCKET,
    )
    .await
}

/// Revoked sessions; Auth writes them, every token verifier watches them.
pub async fn revoked_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    ensure_kv(
        js,
        kv::Config {
            bucket: names::REVOKED_BUCKET.to_string(),
            description: "sessions revoked before their tokens expire".to_string(),
            history: 1,
            max_age: REVOKED_MAX_AGE,
            num_replicas: replicas,
            storage: StorageType::File,
            ..Default::default()
        },
        names::REVOKED_BUCKET,
    )
    .await
}

/// Users disabled or removed: every verifier mirrors it. Kept for good (a
/// removed user's id never comes back).
pub async fn disabled_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(
        names::DISABLED_BUCKET,
        "users disabled or removed",
        replicas,
    );
    ensure_kv(js, config, names::DISABLED_BUCKET).await
}

/// API keys, hashed: every Ingest mirrors them.
pub async fn api_keys_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(names::API_KEYS_BUCKET, "API keys, hashed", replicas);
    ensure_kv(js, config, names::API_KEYS_BUCKET).await
}

/// Which emails each user wants: Ingest writes it, Mailer reads it.
pub async fn notify_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(
        names::NOTIFY_BUCKET,
        "which emails each user wants",
        replicas,
    );
    ensure_kv(js, config, names::NOTIFY_BUCKET).await
}

/// The users' podcast feeds, by user and by token hash: Ingest's alone.
pub async fn feeds_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(names::FEEDS_BUCKET, "podcast feeds", replicas);
    ensure_kv(js, config, names::FEEDS_BUCKET).await
}

/// Users' webhook endpoints: Ingest writes them, Mailer reads them (and
/// disables one that answers 410).
pub async fn webhooks_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(names::WEBHOOKS_BUCKET, "webhook endpoints", replicas);
    ensure_kv(js, config, names::WEBHOOKS_BUCKET).await
}

/// What each webhook delivery came to, kept a week.
pub async fn deliveries_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = kv::Config {
        max_age: Duration::from_secs(7 * 24 * 3600),
        ..plain(names::DELIVERIES_BUCKET, "webhook deliveries", replicas)
    };
    ensure_kv(js, config, names::DELIVERIES_BUCKET).await
}

/// The secret download links are signed with: one key, made by the first
/// process that needs it.
pub async fn links_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    let config = plain(
        names::LINKS_BUCKET,
        "the key download links are signed with",
        replicas,
    );
    ensure_kv(js, config, names::LINKS_BUCKET).await
}

/// The owner of every job, written once by Ingest as it creates the job.
/// Kept as long as a job may take to end and be mailed.
pub async fn owners_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    ensure_kv(
        js,
        kv::Config {
            bucket: names::OWNERS_BUCKET.to_string(),
            description: "who each job belongs to, for its notification".to_string(),
            history: 1,
            max_age: Duration::from_secs(30 * 24 * 3600),
            num_replicas: replicas,
            storage: StorageType::File,
            ..Default::default()
        },
        names::OWNERS_BUCKET,
    )
    .await
}

/// Marks jobs whose notification has been sent.
pub async fn mail_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    ensure_kv(
        js,
        kv::Config {
            bucket: names::MAIL_BUCKET.to_string(),
            description: "jobs whose notification email has gone out".to_string(),
            history: 1,
            max_age: Duration::from_secs(30 * 24 * 3600),
            num_replicas: replicas,
            storage: StorageType::File,
            ..Default::default()
        },
        names::MAIL_BUCKET,
    )
    .await
}

/// The job each NATS submission created, keyed by owner and `Nats-Msg-Id`,
/// so a repeated request gets the same job for a day.
pub async fn submissions_bucket(js: &Context, replicas: usize) -> Result<kv::Store, SetupError> {
    ensure_kv(
        js,
        kv::Config {
            bucket: names::SUBMISSIONS_BUCKET.to_string(),
            description: "jobs created by NATS submissions, by message id".to_string(),
            history: 1,
            max_age: Duration::from_secs(24 * 3600),
            num_replicas: replicas,
            storage: StorageType::File,
            ..Default::default()
        },
        names::SUBMISSIONS_BUCKET,
    )
    .await
}

/// The records of resumable uploads. An idle record is given up after the
/// upload expiry by Ingest itself; the bucket's age limit (the uploads'
/// retention) only clears what that misses.
pub async fn tus_bucket(
    js: &Context,
    replicas: usize,
    retention: Duration,
) -> Result<(kv::Store, Stream), SetupError> {
    let store = ensure_kv(
        js,
        kv::Config {
            bucket: names::TUS_BUCKET.to_string(),
            description: "resumable uploads in progress".to_string(),
            history: 1,
            max_age: retention,
            num_replicas: replicas,
            storage: StorageType::File,
            ..Default::default()
        },
        names::TUS_BUCKET,
    )
    .await?;
    let stream = js
        .get_stream(format!("KV_{}", names::TUS_BUCKET))
        .await
        .map_err(|err| SetupError::new("bucket", names::TUS_BUCKET, err))?;
    Ok((store, stream))
}
