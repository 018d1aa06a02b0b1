//! What event streams listen to, shared within the process: one KV watch
//! per job, however many streams follow it, and one listener for job starts
//! that asks the work queue once per start where it stands, for every
//! stream of a waiting job at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_nats::jetstream::{kv, stream::Stream};
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::wire::{names, subject};

/// Entries a slow stream may fall behind by before it reads the job again.
const BACKLOG: usize = 64;

/// The live state of one job, as a shared watch delivers it.
pub struct JobFeed {
    /// The latest entry, and the channel of later ones. Held together so a
    /// stream that joins gets the current state and then every change.
    latest: Mutex<(Option<kv::Entry>, broadcast::Sender<kv::Entry>)>,
    /// Ends the watch when the last stream lets go.
    _watching: DropGuard,
}

impl JobFeed {
    /// The current entry (if the watch has delivered one yet) and the
    /// changes after it.
    pub fn follow(&self) -> (Option<kv::Entry>, broadcast::Receiver<kv::Entry>) {
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        (latest.0.clone(), latest.1.subscribe())
    }
}

type ByJob = Arc<Mutex<HashMap<String, Weak<JobFeed>>>>;

pub struct Feeds {
    jobs: kv::Store,
    by_job: ByJob,
    /// The stream sequence of the last work item a transcoder has taken,
    /// refreshed at every job start.
    taken: watch::Receiver<Option<u64>>,
    _listening: DropGuard,
}

impl Feeds {
    pub async fn start(
        client: &async_nats::Client,
        jobs: kv::Store,
        work: Stream,
    ) -> Result<Feeds, async_nats::SubscribeError> {
        let starts = client.subscribe(subject::JOB_STARTS).await?;
        let first = taken(&work).await;
        let (report, taken) = watch::channel(first);
        let stop = CancellationToken::new();
        tokio::spawn(listen_for_starts(starts, work, report, stop.clone()));
        Ok(Feeds {
            jobs,
            by_job: ByJob::default(),
            taken,
            _listening: stop.drop_guard(),
        })
    }

    /// Where the work queue stands, and its changes.
    pub fn taken(&self) -> watch::Receiver<Option<u64>> {
        self.taken.clone()
    }

    /// The feed of `job_id`: the one already running in this process, or a
    /// new one with its own watch.
    pub async fn job(&self, job_id: &str) -> Result<Arc<JobFeed>, kv::WatchError> {
        if let Some(feed) = self.running(job_id) {
            return Ok(feed);
        }
        let mut watch = self.jobs.watch_with_history(job_id).await?;
        let mut by_job = self.by_job.lock().unwrap_or_else(|e| e.into_inner());
        // Another stream may have started one meanwhile; use that.
        if let Some(feed) = by_job.get(job_id).and_then(Weak::upgrade) {
            return Ok(feed);
        }
        let stop = CancellationToken::new();
        let feed = Arc::new(JobFeed {
            latest: Mutex::new((None, broadcast::channel(BACKLOG).0)),
            _watching: stop.clone().drop_guard(),
        });
        let weak = Arc::downgrade(&feed);
        let registry = Arc::clone(&self.by_job);
        let key = job_id.to_string();
        tokio::spawn(async move {
            loop {
                let entry = tokio::select! {
                    _ = stop.cancelled() => return,
                    entry = watch.next() => entry,
                };
                let Some(feed) = weak.upgrade() else { return };
                let mut latest = feed.latest.lock().unwrap_or_else(|e| e.into_inner());
                match entry {
                    Some(Ok(entry)) => {
                        latest.0 = Some(entry.clone());
                        let _ = latest.1.send(entry);
                    }
                    // The watch failed (NATS went away): its streams end,
                    // their clients reconnect, and the next stream of the
                    // job starts a fresh watch.
                    _ => {
                        latest.1 = broadcast::channel(1).0;
                        let mut by_job = registry.lock().unwrap_or_else(|e| e.into_inner());
                        if by_job.get(&key).is_some_and(|known| known.ptr_eq(&weak)) {
                            by_job.remove(&key);
                        }
                        return;
                    }
                }
            }
        });
        by_job.retain(|_, feed| feed.strong_count() > 0);
        by_job.insert(job_id.to_string(), Arc::downgrade(&feed));
        Ok(feed)
    }

    fn running(&self, job_id: &str) -> Option<Arc<JobFeed>> {
        let by_job = self.by_job.lock().unwrap_or_else(|e| e.into_inner());
        by_job.get(job_id).and_then(Weak::upgrade)
    }
}

/// The last work item the transcoders' consumer has delivered.
async fn taken(work: &Stream) -> Option<u64> {
    work.consumer_info(names::TRANSCODERS_CONSUMER)
        .await
        .ok()
        .map(|info| info.delivered.stream_sequence)
}

async fn listen_for_starts(
    mut starts: async_nats::Subscriber,
    work: Stream,
    report: watch::Sender<Option<u64>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            start = starts.next() => match start {
                Some(_) => {
                    let now = taken(&work).await;
                    report.send_if_modified(|known| {
                        let changed = *known != now;
                        *known = now;
                        changed
                    });
                }
                None => return,
            },
        }
    }
}
