//! The four actors and the lifecycle they share.
//!
//! Every actor is an actix actor hosting one [`Worker`]: it is built from the
//! configuration, runs until its shutdown token fires, then drains in-flight
//! work and returns. The actix [`Supervisor`] restarts a worker that fails or
//! panics, with a growing delay. Actors never call each other: all traffic
//! between them is NATS subjects, so any subset can run in one process.

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

pub mod auth;
pub mod ingest;
pub mod mailer;
mod micro;
pub mod transcoder;

/// Why a worker stopped before it was asked to; its supervisor restarts it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WorkerError(pub String);

impl WorkerError {
    pub fn new(context: &str, err: impl std::fmt::Display) -> Self {
        WorkerError(format!("{context}: {err}"))
    }
}

pub type WorkerFuture = Pin<Box<dyn Future<Output = Result<(), WorkerError>> + Send>>;

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

/// The actix actor around a worker.
pub struct ActorHost<W: Worker> {
    worker: Arc<W>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
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
        let delay = Duration::from_millis(250 * 2u64.pow(self.restarts.min(7)));
        let delay = if self.restarts == 0 {
            Duration::ZERO
        } else {
            delay
        };
        let worker = self.worker.clone();
        let shutdown = self.shutdown.clone();
        let tracker = self.tracker.clone();
        let run = async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return Ok(Ok(())),
            }
            // The worker runs on the multi-threaded runtime; the actor only
            // watches it, so nothing blocks the arbiter thread.
            tracker.spawn(worker.run(shutdown)).await
        };
        ctx.spawn(run.into_actor(self).map(|outcome, act, ctx| {
            match outcome {
                Ok(Ok(())) if act.shutdown.is_cancelled() => {
                    tracing::info!(actor = W::NAME, "stopped");
                }
                Ok(Ok(())) => tracing::warn!(actor = W::NAME, "returned early; restarting"),
                Ok(Err(err)) => {
                    tracing::error!(actor = W::NAME, error = %err, "failed; restarting")
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

/// Starts `worker` under an actix supervisor on the current arbiter. The
/// worker's tasks are tracked by `tracker` so the caller can wait for them
/// to drain.
pub fn supervise<W: Worker>(
    worker: Arc<W>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) -> actix::Recipient<Stop> {
    Supervisor::start(move |_| ActorHost {
        worker,
        shutdown,
        tracker,
        restarts: 0,
    })
    .recipient()
}
