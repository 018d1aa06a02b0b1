//! The four actors and the lifecycle they share.
//!
//! Every actor is an actix actor hosting one [`Worker`]: it is built from the
//! configuration, runs until its shutdown token fires, then drains in-flight
//! work and returns. The actix [`Supervisor`] restarts a worker that fails or
//! panics, with a growing delay. Actors never call each other: all traffic
//! between them is NATS subjects, so any subset can run in one process.
//!
//! - `auth`, `ingest`, `transcoder`, `mailer`: the actors
//! - `micro`: the NATS micro-service frame Auth and Ingest answer requests in
//! - `work_off`: a pull consumer's messages handled on tasks of their own

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, Supervised,
    Supervisor, WrapFuture,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::Backoff;
use crate::error::{BoxError, chain};

pub mod auth;
pub mod ingest;
pub mod mailer;
mod micro;
pub mod transcoder;
mod work_off;

pub(crate) use work_off::work_off;

/// Why a worker stopped before it was asked to; its supervisor restarts it.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct WorkerError {
    context: String,
    #[source]
    source: Option<BoxError>,
}

impl WorkerError {
    /// The worker cannot go on: `context` failed with `err`.
    pub fn new(context: &str, err: impl Into<BoxError>) -> Self {
        WorkerError {
            context: context.to_string(),
            source: Some(err.into()),
        }
    }

    /// The worker cannot go on because `what` ended, which it never should.
    pub fn ended(what: &str) -> Self {
        WorkerError {
            context: format!("{what} ended"),
            source: None,
        }
    }
}

pub type WorkerFuture = Pin<Box<dyn Future<Output = Result<(), WorkerError>> + Send>>;

/// Consecutive consumer errors a worker rides out (a leader election, a
/// reconnect) before it gives up and lets its supervisor start it again,
/// which creates its consumer again.
const CONSUMER_ERRORS: u32 = 5;

/// Tells a worker when its JetStream consumer is beyond repair: deleted,
/// or failing again and again.
pub(crate) struct ConsumerHealth {
    consumer: &'static str,
    errors: u32,
}

impl ConsumerHealth {
    pub(crate) fn new(consumer: &'static str) -> Self {
        ConsumerHealth {
            consumer,
            errors: 0,
        }
    }

    /// The consumer delivered.
    pub(crate) fn ok(&mut self) {
        self.errors = 0;
    }

    /// The consumer failed with `err`; an error means: stop and restart.
    pub(crate) fn failed<E>(&mut self, err: E, deleted: bool) -> Result<(), WorkerError>
    where
        E: std::fmt::Display + Into<BoxError>,
    {
        self.errors += 1;
        tracing::warn!(consumer = self.consumer, error = %err, errors = self.errors, "consumer error");
        if deleted || self.errors >= CONSUMER_ERRORS {
            return Err(WorkerError::new(self.consumer, err));
        }
        Ok(())
    }
}

/// Whether a pull consumer's error says the consumer is gone.
pub(crate) fn consumer_deleted(err: &async_nats::jetstream::consumer::pull::MessagesError) -> bool {
    err.kind() == async_nats::jetstream::consumer::pull::MessagesErrorKind::ConsumerDeleted
}

/// A worker that ran this long before it failed was healthy: its next
/// restart starts the back-off over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The long-running part of an actor.
pub trait Worker: Send + Sync + 'static {
    /// Name used in logs and metric labels.
    const NAME: &'static str;

    /// Serves until `shutdown` is cancelled, then finishes or hands back
    /// in-flight work and returns.
    fn run(self: Arc<Self>, shutdown: CancellationToken) -> WorkerFuture;
}

/// Asks an actor to drain and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// Whether each actor of a process is running its worker now: false from
/// a failure until the restart's run begins. `/readyz` reports it.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<std::sync::Mutex<BTreeMap<&'static str, bool>>>);

impl Health {
    fn set(&self, actor: &'static str, running: bool) {
        // A panic while holding the lock leaves a map that is still usable.
        let mut actors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        actors.insert(actor, running);
    }

    /// Each actor and whether its worker runs.
    pub fn actors(&self) -> BTreeMap<&'static str, bool> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The actix actor around a worker.
pub struct ActorHost<W: Worker> {
    worker: Arc<W>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    health: Health,
    restarts: u32,
}

impl<W: Worker> Actor for ActorHost<W> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.shutdown.is_cancelled() {
            ctx.stop();
            return;
        }
        // Back off after repeated failures so a broken dependency is not hammered.
        let delay = backoff(self.restarts);
        let worker = self.worker.clone();
        let shutdown = self.shutdown.clone();
        let tracker = self.tracker.clone();
        let health = self.health.clone();
        let started = std::time::Instant::now();
        let run = async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return Ok(Ok(())),
            }
            health.set(W::NAME, true);
            // The worker runs on the multi-threaded runtime; the actor only
            // watches it, so nothing blocks the arbiter thread.
            tracker.spawn(worker.run(shutdown)).await
        };
        ctx.spawn(run.into_actor(self).map(move |outcome, act, ctx| {
            act.health.set(W::NAME, false);
            act.restarts = restarts_after(act.restarts, started.elapsed().saturating_sub(delay));
            match outcome {
                Ok(Ok(())) if act.shutdown.is_cancelled() => {
                    tracing::info!(actor = W::NAME, "stopped");
                }
                Ok(Ok(())) => tracing::warn!(actor = W::NAME, "returned early; restarting"),
                Ok(Err(err)) => {
                    tracing::error!(actor = W::NAME, error = %chain(&err), "failed; restarting")
                }
                Err(join) => {
                    tracing::error!(actor = W::NAME, error = %join, "panicked; restarting")
                }
            }
            ctx.stop();
        }));
    }
}

impl<W: Worker> Supervised for ActorHost<W> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if !self.shutdown.is_cancelled() {
            self.restarts += 1;
            crate::metrics::actor_restart(W::NAME);
        }
    }
}

impl<W: Worker> Handler<Stop> for ActorHost<W> {
    type Result = ();

    fn handle(&mut self, _: Stop, _ctx: &mut Context<Self>) {
        self.shutdown.cancel();
    }
}

/// How long a worker waits before its run after `restarts` restarts in a
/// row: nothing the first time, then 0.5 s doubling up to 32 s.
fn backoff(restarts: u32) -> Duration {
    const RESTARTS: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(32));
    match restarts.checked_sub(1) {
        None => Duration::ZERO,
        Some(step) => RESTARTS.delay(step),
    }
}

/// The restarts in a row to count from after a run that lasted `ran`: a
/// healthy run starts the count, and so the back-off, over.
fn restarts_after(restarts: u32, ran: Duration) -> u32 {
    if ran >= HEALTHY_RUN { 0 } else { restarts }
}

/// Starts `worker` under an actix supervisor on the current arbiter. The
/// worker's tasks are tracked by `tracker` so the caller can wait for them
/// to drain.
pub fn supervise<W: Worker>(
    worker: Arc<W>,
    tracker: TaskTracker,
    health: Health,
) -> actix::Recipient<Stop> {
    health.set(W::NAME, false);
    Supervisor::start(move |_| ActorHost {
        worker,
        shutdown: CancellationToken::new(),
        tracker,
        health,
        restarts: 0,
    })
    .recipient()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restart_back_off_grows_and_starts_over_after_a_healthy_run() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(30), Duration::from_secs(32));
        assert_eq!(restarts_after(6, Duration::from_secs(5)), 6);
        assert_eq!(restarts_after(6, HEALTHY_RUN), 0);
        assert_eq!(
            backoff(restarts_after(6, Duration::from_secs(600)) + 1),
            backoff(1)
        );
    }

    #[test]
    fn a_consumer_that_keeps_failing_or_is_deleted_ends_its_worker() {
        let failure = || std::io::Error::other("no responders");
        let mut health = ConsumerHealth::new("test");
        for _ in 1..CONSUMER_ERRORS {
            assert!(health.failed(failure(), false).is_ok());
        }
        health.ok();
        for _ in 1..CONSUMER_ERRORS {
            assert!(
                health.failed(failure(), false).is_ok(),
                "a delivery starts the count over"
            );
        }
        assert!(health.failed(failure(), false).is_err());
        assert!(ConsumerHealth::new("test").failed(failure(), true).is_err());
    }
}
