//! The live view of one job for `GET /v1/jobs/{id}/events`: the job's
//! watch (one per job in the process, see `feeds`) drives it, and while the
//! job waits, the start of any other job moves its place in the queue.
//! Nothing polls.
//! A stream ends with its job, and also when the token that opened it
//! expires, its session is revoked, or the process stops; a user may hold
//! only so many open at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use axum::response::sse::Event;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};

use tokio::sync::broadcast;

use super::error::ApiError;
use super::feeds::JobFeed;
use super::view::JobView;
use super::{Ingest, per_owner};
use crate::token::{Claims, unix_now};
use crate::wire::{self, Job, JobState};

/// The events of `job` from now until it ends. A job that has already ended
/// gets one event.
pub(super) async fn job_events(
    ingest: Arc<Ingest>,
    job: Job,
    caller: &Claims,
) -> Result<impl Stream<Item = Result<Event, Infallible>> + use<>, ApiError> {
    if job.state.is_terminal() {
        let event = event("state", &JobView::new(job, None, &ingest.links), None);
        return Ok(futures::stream::iter([Ok(event)]).left_stream());
    }
    let (slot, open) = ingest.following.start(&caller.sub);
    if open > MAX_STREAMS_PER_USER {
        crate::metrics::refused("event_streams");
        return Err(ApiError::TooMany(
            "too_many_streams",
            format!("at most {MAX_STREAMS_PER_USER} event streams may be open at once"),
            5,
        ));
    }
    let stop = {
        let closing = ingest.closing.clone();
        let revocations = ingest.verifier.revocations().clone();
        let session = caller.sid.clone().unwrap_or_default();
        let expires = Duration::from_secs(caller.exp.saturating_sub(unix_now()));
        async move {
            tokio::select! {
                _ = closing.cancelled() => {}
                _ = revocations.revoked(&session) => {}
                _ = tokio::time::sleep(expires) => {}
            }
        }
        .boxed()
    };
    let feed = ingest
        .feeds
        .job(job.id.as_str())
        .await
        .map_err(|e| ApiError::unavailable("the jobs bucket", e))?;
    let (first, changes) = feed.follow();
    let taken = ingest.feeds.taken();
    let follow = Follow {
        ingest,
        stop,
        _slot: slot,
        feed,
        changes,
        first,
        taken,
        queued: None,
        last_state: None,
        last_position: None,
        ended: false,
    };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(events.right_stream())
}

/// One event carrying the job as JSON.
fn event(name: &str, view: &JobView, revision: Option<u64>) -> Event {
    let event = Event::default()
        .event(name)
        .data(serde_json::to_string(view).unwrap_or_default());
    match revision {
        Some(revision) => event.id(revision.to_string()),
        None => event,
    }
}

/// Event streams one user may hold open in one process.
const MAX_STREAMS_PER_USER: u64 = 16;

struct Follow {
    ingest: Arc<Ingest>,
    /// Completes when the stream must end before its job does.
    stop: BoxFuture<'static, ()>,
    /// Counts the stream against its owner's cap while it is open.
    _slot: per_owner::Slot,
    /// The job's watch, shared with its other streams in this process.
    feed: Arc<JobFeed>,
    changes: broadcast::Receiver<kv::Entry>,
    /// The feed's latest entry when the stream joined, sent first; without
    /// one, the first entry the feed delivers is.
    first: Option<kv::Entry>,
    /// Where the work queue stands, looked at while the job waits.
    taken: tokio::sync::watch::Receiver<Option<u64>>,
    /// The job as last sent, while it is queued.
    queued: Option<Job>,
    last_state: Option<JobState>,
    last_position: Option<u64>,
    ended: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        if let Some(entry) = self.first.take() {
            return self.changed(entry).await;
        }
        loop {
            let waiting = self.queued.is_some();
            tokio::select! {
                _ = &mut self.stop => {
                    self.ended = true;
                    return None;
                }
                change = self.changes.recv() => match change {
                    Ok(entry) => return self.changed(entry).await,
                    // Fell behind a busy job: only its latest state matters.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let (latest, changes) = self.feed.follow();
                        self.changes = changes;
                        if let Some(entry) = latest {
                            return self.changed(entry).await;
                        }
                    }
                    // The watch failed; the client reconnects (EventSource
                    // does by itself) and picks up the current state.
                    Err(broadcast::error::RecvError::Closed) => {
                        self.ended = true;
                        return None;
                    }
                },
                moved = self.taken.changed(), if waiting => match moved {
                    Ok(()) => {
                        if let Some(event) = self.queue_moved() {
                            return Some(event);
                        }
                    }
                    // Without NATS the watch ends too; until then, no
                    // queue moves.
                    Err(_) => self.queued = None,
                },
            }
        }
    }

    async fn changed(&mut self, entry: kv::Entry) -> Option<Event> {
        if entry.operation != kv::Operation::Put {
            self.ended = true;
            return Some(Event::default().event("deleted").data(entry.key));
        }
        match wire::decode::<Job>(&entry.value) {
            Ok(job) => Some(self.job(job, entry.revision).await),
            Err(err) => {
                tracing::warn!(key = %entry.key, error = %err, "malformed job state");
                self.ended = true;
                None
            }
        }
    }

    /// The event for the job's new state.
    async fn job(&mut self, job: Job, revision: u64) -> Event {
        self.ended = job.state.is_terminal();
        self.queued = (job.state == JobState::Queued).then(|| job.clone());
        let view = if self.queued.is_some() {
            let known = *self.taken.borrow_and_update();
            // Nothing has started since this process did: ask once.
            let taken = match known {
                Some(taken) => Some(taken),
                None => self.ingest.work_taken().await,
            };
            JobView::new(job, taken, &self.ingest.links)
        } else {
            JobView::new(job, None, &self.ingest.links)
        };
        self.send(view, Some(revision))
    }

    /// Another job started: tell this one's new place, if it changed.
    fn queue_moved(&mut self) -> Option<Event> {
        let taken = *self.taken.borrow_and_update();
        let view = JobView::new(self.queued.clone()?, taken, &self.ingest.links);
        if view.queue_position() == self.last_position {
            return None;
        }
        Some(self.send(view, None))
    }

    /// The event for `view`: `state` when its state changed, else `progress`.
    fn send(&mut self, view: JobView, revision: Option<u64>) -> Event {
        let name = if self.last_state == Some(view.state()) {
            "progress"
        } else {
            "state"
        };
        self.last_state = Some(view.state());
        self.last_position = view.queue_position();
        event(name, &view, revision)
    }
}
