//! The live view of one job for `GET /v1/jobs/{id}/events`: a KV watch on
//! the job's key drives it, and while the job waits, the start of any other
//! job (its `running` event) moves its place in the queue. Nothing polls.
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

use super::api::JobView;
use super::error::ApiError;
use super::{Ingest, per_owner};
use crate::token::{Claims, unix_now};
use crate::wire::{self, Job, JobState, subject};

/// The events of `job` from now until it ends. A job that has already ended
/// gets one event.
pub(super) async fn job_events(
    ingest: Arc<Ingest>,
    job: Job,
    caller: &Claims,
) -> Result<impl Stream<Item = Result<Event, Infallible>> + use<>, ApiError> {
    if job.state.is_terminal() {
        let event = event("state", &JobView::from(job), None);
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
    let watch = ingest
        .jobs
        .watch_with_history(job.id.as_str())
        .await
        .map_err(|e| ApiError::unavailable("the jobs bucket", e))?;
    let follow = Follow {
        ingest,
        stop,
        _slot: slot,
        watch,
        starts: None,
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
    watch: kv::Watch,
    /// Starts of any job, listened to until this one leaves the queue.
    starts: Option<async_nats::Subscriber>,
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
        loop {
            let starts = async {
                match self.starts.as_mut() {
                    Some(starts) => starts.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut self.stop => {
                    self.ended = true;
                    return None;
                }
                entry = self.watch.next() => {
                    return match entry {
                        Some(Ok(entry)) => self.changed(entry).await,
                        Some(Err(err)) => {
                            // The client reconnects (EventSource does by
                            // itself) and picks up the current state.
                            tracing::warn!(error = %err, "job watch failed");
                            self.ended = true;
                            None
                        }
                        None => None,
                    };
                }
                start = starts => match start {
                    Some(_) => {
                        if let Some(event) = self.queue_moved().await {
                            return Some(event);
                        }
                    }
                    // Without NATS the watch ends too; until then, no
                    // queue moves.
                    None => self.starts = None,
                },
            }
        }
    }

    async fn changed(&mut self, entry: kv::Entry) -> Option<Event> {
        if entry.operation != kv::Operation::Put {
            self.ended = true;
            return Some(Event::default().event("deleted").data(entry.key));
        }
        let job = match wire::decode::<Job>(&entry.value) {
            Ok(job) => job,
            Err(err) => {
                tracing::warn!(key = %entry.key, error = %err, "malformed job state");
                self.ended = true;
                return None;
            }
        };
        self.ended = job.state.is_terminal();
        self.queued = (job.state == JobState::Queued).then(|| job.clone());
        match (&self.queued, &self.starts) {
            // Only a waiting job's place moves; unread starts would pile up
            // in the subscription for the rest of the encode.
            (None, Some(_)) => self.starts = None,
            // Back in the queue (a retry): listen again.
            (Some(_), None) => {
                self.starts = self.ingest.client.subscribe(subject::JOB_STARTS).await.ok()
            }
            _ => {}
        }
        let view = self.ingest.view(job).await;
        Some(self.send(view, Some(entry.revision)))
    }

    /// Another job started: tell this one's new place, if it changed.
    async fn queue_moved(&mut self) -> Option<Event> {
        let view = self.ingest.view(self.queued.clone()?).await;
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
