//! Finished jobs kept in memory, so reading one costs no NATS round trip.
//!
//! A job that has ended (completed, failed, canceled) changes only once
//! more, when its owner deletes it. A KV watch on the jobs bucket brings
//! every job that ends while this process runs; Ingest's own deletes are
//! applied at once, so their owner never reads a job they just deleted. (A
//! cancel needs nothing: the job was unfinished, so not held here.)
//! Unfinished jobs are never answered from here: their state moves too
//! quickly for a watch's lag, and a read of one goes to the bucket.
//!
//! Soundness comes from what happens on a miss: the caller reads the bucket,
//! as it would without this cache. So the cache may forget at any time, and
//! does: when the watch starts over (it may have missed changes), when it
//! holds too many jobs, and after an entry's time is up. It also stays silent
//! while the connection to NATS is down: another Ingest may delete a job then
//! without the watch seeing it, and the client is better told that the
//! bucket is unavailable than shown a job that may be gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::wire::{self, Job};

/// Most jobs held: a few megabytes of memory.
const CAPACITY: usize = 10_000;
/// How long an entry is believed. A job's live state ages out of the bucket
/// without an event, and the history answers for it then.
const TIME_TO_LIVE: Duration = Duration::from_secs(600);
/// The revision of a delete this process made before the watch brought it:
/// above every put, so a put the watch brings late cannot bring it back.
const DELETED_HERE: u64 = u64::MAX;

/// What the cache knows of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    /// The job has ended, as it is now.
    Finished(Box<Job>),
    /// The job was deleted: its live state is gone.
    Deleted,
}

struct Entry {
    revision: u64,
    known: Known,
    at: Instant,
}

#[derive(Clone, Default)]
struct Entries(Arc<Mutex<HashMap<String, Entry>>>);

impl Entries {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut map = match self.0.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut map)
    }

    /// Records `known` at `revision` unless a later revision is recorded.
    fn record(&self, id: &str, revision: u64, known: Known) {
        self.with(|map| {
            if map.get(id).is_some_and(|e| e.revision >= revision) {
                return;
            }
            if map.len() >= CAPACITY && !map.contains_key(id) {
                map.clear();
            }
            let at = Instant::now();
            map.insert(
                id.to_string(),
                Entry {
                    revision,
                    known,
                    at,
                },
            );
        });
    }

    /// Applies one change the watch brought: `value` written to `key` at
    /// `revision` by `operation`.
    fn apply(&self, key: &str, revision: u64, operation: kv::Operation, value: &[u8]) {
        match operation {
            kv::Operation::Put => match wire::decode::<Job>(value) {
                Ok(job) if job.state.is_terminal() => {
                    self.record(key, revision, Known::Finished(Box::new(job)));
                }
                // A job that has not ended, or one this version cannot read,
                // is for the bucket to answer.
                _ => self.with(|map| {
                    if map.get(key).is_some_and(|e| e.revision < revision) {
                        map.remove(key);
                    }
                }),
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                // The delete this process announced ahead is now confirmed at
                // its real revision, after which the job could be made again.
                self.with(|map| {
                    if map.get(key).is_some_and(|e| e.revision == DELETED_HERE) {
                        map.remove(key);
                    }
                });
                self.record(key, revision, Known::Deleted);
            }
        }
    }
}

/// The finished jobs this process has seen end, kept by a watch that lives
/// as long as this value.
pub struct FinishedJobs {
    entries: Entries,
    /// The connection the watch runs on.
    client: async_nats::Client,
    _watch: DropGuard,
}

impl FinishedJobs {
    /// Starts following `jobs`, a bucket reached through `client`. The first
    /// watch is made before this returns, so a failure to watch stops the
    /// start rather than leaving the cache empty for good.
    pub async fn watch(
        client: async_nats::Client,
        jobs: kv::Store,
    ) -> Result<FinishedJobs, kv::WatchError> {
        let first = jobs.watch(">").await?;
        let entries = Entries::default();
        let stop = CancellationToken::new();
        tokio::spawn(follow(jobs, first, entries.clone(), stop.clone()));
        Ok(FinishedJobs {
            entries,
            client,
            _watch: stop.drop_guard(),
        })
    }

    /// What is known of job `id`, if anything.
    pub fn get(&self, id: &str) -> Option<Known> {
        if self.client.connection_state() != State::Connected {
            return None;
        }
        self.entries.with(|map| {
            let entry = map.get(id)?;
            if entry.at.elapsed() > TIME_TO_LIVE {
                map.remove(id);
                return None;
            }
            Some(entry.known.clone())
        })
    }

    /// Records `job` as this process has just written it at `revision`, so
    /// that its next read here is not the one before.
    pub fn written(&self, revision: u64, job: &Job) {
        if job.state.is_terminal() {
            let known = Known::Finished(Box::new(job.clone()));
            self.entries.record(job.id.as_str(), revision, known);
        }
    }

    /// Records that this process has just deleted job `id`.
    pub fn deleted(&self, id: &str) {
        self.entries.record(id, DELETED_HERE, Known::Deleted);
    }
}

async fn follow(jobs: kv::Store, first: kv::Watch, entries: Entries, stop: CancellationToken) {
    let mut watch = Some(first);
    loop {
        if let Some(mut changes) = watch.take() {
            loop {
                let change = tokio::select! {
                    _ = stop.cancelled() => return,
                    change = changes.next() => change,
                };
                match change {
                    Some(Ok(change)) => entries.apply(
                        &change.key,
                        change.revision,
                        change.operation,
                        &change.value,
                    ),
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "the finished-jobs watch broke off; starting over");
                        break;
                    }
                    None => break,
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let again = tokio::select! {
            _ = stop.cancelled() => return,
            again = jobs.watch(">") => again,
        };
        // Whatever changed while no watch ran is unknown: start afresh.
        entries.with(HashMap::clear);
        match again {
            Ok(changes) => watch = Some(changes),
            Err(err) => tracing::warn!(error = %err, "cannot watch the jobs bucket; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::Operation::{Purge, Put};

    /// The one job of these tests, as the bucket keys it.
    const J: &str = "0190c5a0-1234-7000-8000-00000000000a";

    fn job(state: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "v": wire::VERSION, "id": J, "owner": "u", "owner_email": "u@example.com", "state": state,
            "progress": 100.0, "format": "mp3", "filename": "a.mp4", "input_bytes": 1,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "attempts": 1
        }))
        .expect("a job")
    }

    fn state(entries: &Entries) -> Option<String> {
        entries.with(|map| match &map.get(J)?.known {
            Known::Finished(job) => Some(job.state.as_str().to_string()),
            Known::Deleted => Some("deleted".into()),
        })
    }

    #[test]
    fn only_finished_jobs_are_held_and_a_later_revision_wins() {
        let entries = Entries::default();
        entries.apply(J, 1, Put, &job("queued"));
        assert_eq!(state(&entries), None, "an unfinished job is not held");
        entries.apply(J, 3, Put, &job("completed"));
        entries.apply(J, 2, Put, &job("running"));
        assert_eq!(state(&entries).as_deref(), Some("completed"));
        entries.apply(J, 4, Purge, b"");
        assert_eq!(state(&entries).as_deref(), Some("deleted"));
    }

    #[test]
    fn a_delete_made_here_is_not_undone_by_a_put_the_watch_brings_late() {
        let entries = Entries::default();
        entries.record(J, DELETED_HERE, Known::Deleted);
        entries.apply(J, 5, Put, &job("completed"));
        assert_eq!(state(&entries).as_deref(), Some("deleted"));
        // Once the watch confirms the delete, a job made again shows.
        entries.apply(J, 6, Purge, b"");
        entries.apply(J, 7, Put, &job("failed"));
        assert_eq!(state(&entries).as_deref(), Some("failed"));
    }

    #[test]
    fn a_full_cache_forgets_rather_than_grows() {
        let entries = Entries::default();
        for i in 0..=CAPACITY as u64 {
            entries.record(&i.to_string(), i + 1, Known::Deleted);
        }
        assert!(entries.with(|map| map.len()) <= CAPACITY);
    }
}
