//! One attempt at a job: claim it with a compare-and-set, keep the work
//! item while encoding, then act on the ack decision (finish, hand back,
//! give up, or leave it to a later attempt).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, kv};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::decision::{Decision, decide, retry_delay};
use super::error::AttemptError;
use super::ownership::{Standing, Stops};
use super::{Transcoder, ffmpeg};
use crate::error::chain;
use crate::storage::jetstream::{self as js_setup, WORK_ACK_WAIT};
use crate::trace_context::TraceContext;
use crate::wire::{self, Job, JobState};

/// The work item an attempt answers for: how to settle it, how often it has
/// been delivered, when the attempt began, and the job's trace.
#[derive(Clone, Copy)]
pub(super) struct Delivery<'a> {
    message: &'a jetstream::Message,
    delivered: i64,
    started: Instant,
    trace: &'a TraceContext,
}

impl Transcoder {
    pub(super) async fn attempt(
        &self,
        message: jetstream::Message,
        read: Job,
        revision: u64,
        delivered: i64,
        shutdown: CancellationToken,
        trace: &TraceContext,
    ) {
        let started = Instant::now();
        let (mut job, mut revision) = (read, revision);
        // The start is written only over the state as read: the owner may
        // have canceled the job since. Ingest also writes the job once, right
        // after queueing it (its place in the queue), so a conflict is read
        // again rather than costing a delivery. A write that fails otherwise
        // (NATS busy electing a leader) costs nothing either: the encode goes
        // on, and progress writes try again.
        let mut rereads = 0;
        let mut revision = loop {
            let mut running = job.clone();
            running.state = JobState::Running;
            running.attempts += 1;
            running.progress = 0.0;
            running.error = None;
            running.updated_at = OffsetDateTime::now_utc();
            match self
                .jobs
                .update(job.id.as_str(), wire::encode(&running), revision)
                .await
            {
                Ok(written) => {
                    job = running;
                    break Some(written);
                }
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    let fresh = match self.jobs.entry(job.id.as_str()).await {
                        Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                            wire::decode::<Job>(&entry.value)
                                .ok()
                                .map(|fresh| (fresh, entry.revision))
                        }
                        _ => None,
                    };
                    match fresh {
                        Some((fresh, at)) if !fresh.state.is_terminal() && rereads < 3 => {
                            rereads += 1;
                            (job, revision) = (fresh, at);
                        }
                        // Canceled (or gone) meanwhile: the next delivery
                        // settles it.
                        _ => {
                            tracing::info!("the job changed before it started");
                            let _ = message
                                .ack_with(AckKind::Nak(Some(Duration::from_millis(200))))
                                .await;
                            return;
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot record the start; going on");
                    job = running;
                    break None;
                }
            }
        };
        crate::metrics::transcodes_in_flight(1.0);
        let _ = js_setup::publish_job_event(&self.js, &job, trace).await;
        let stops = Stops::default();
        self.running_jobs()
            .insert(job.id.to_string(), stops.canceled.clone());

        // Keep the work item ours while we encode.
        let keepalive = {
            let message = message.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(WORK_ACK_WAIT / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(err) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %err, "cannot extend the work item");
                    }
                }
            })
        };
        // On shutdown, in-flight encodes get `drain_timeout` to finish.
        let interrupt = CancellationToken::new();
        let deadline = {
            let interrupt = interrupt.clone();
            let drain = self.drain_timeout;
            tokio::spawn(async move {
                shutdown.cancelled().await;
                tokio::time::sleep(drain).await;
                interrupt.cancel();
            })
        };
        let outcome = self
            .convert(&mut job, &mut revision, &interrupt, &stops)
            .await;
        // Speed and ETA describe a running encode only.
        job.speed = None;
        job.eta_seconds = None;
        self.running_jobs().remove(job.id.as_str());
        keepalive.abort();
        deadline.abort();
        let _ = tokio::fs::remove_dir_all(ffmpeg::work_dir(&self.work_root, job.id.as_str())).await;
        crate::metrics::transcodes_in_flight(-1.0);

        let delivery = Delivery {
            message: &message,
            delivered,
            started,
            trace,
        };
        match decide(&outcome, job.retries) {
            Decision::Finish(state) => {
                job.state = state;
                match outcome {
                    Ok(made) => {
                        job.progress = 100.0;
                        job.set_results(made.outputs);
                        job.waveform = made.waveform;
                        job.artwork_bytes = made.artwork;
                    }
                    Err(AttemptError::Rejected(reason)) => job.error = Some(reason),
                    Err(_) => tracing::info!("stopped: canceled by its owner"),
                }
                self.finish(&delivery, job, revision).await;
            }
            Decision::Leave => {
                // The work item is another transcoder's now: settling it
                // from here would settle theirs.
                tracing::info!("a later attempt has taken the job over; leaving it");
            }
            Decision::GiveUp => {
                let failures = job.retries + 1;
                let reason = outcome.err().map(|e| chain(&e)).unwrap_or_default();
                tracing::error!(error = %reason, "giving up after {failures} failed attempts");
                job.state = JobState::Failed;
                // The reason names internals (a bucket, a disk): it goes to
                // the log and the dead letter, the owner hears what happened.
                job.error = Some(format!(
                    "the conversion failed {failures} times for a reason on our side; \
                     it was not retried further"
                ));
                self.copy_to_dead_letter(&message, &reason).await;
                self.finish(&delivery, job, revision).await;
            }
            Decision::HandBack { delay, retried } => {
                job.state = JobState::Queued;
                if retried {
                    let reason = outcome.err().map(|e| chain(&e)).unwrap_or_default();
                    tracing::warn!(error = %reason, "attempt failed; will retry");
                    crate::metrics::transcode_retry();
                    job.retries += 1;
                    job.error = Some("retrying after a temporary failure on our side".into());
                } else {
                    tracing::info!("handing an unfinished encode back to the queue");
                    job.progress = 0.0;
                }
                if self.requeue(&delivery, job, revision, &stops).await {
                    let _ = message.ack_with(AckKind::Nak(delay)).await;
                }
            }
        }
    }

    /// Writes a job going back to the queue over this attempt's last state;
    /// true if the caller should now hand the work item back. If the owner
    /// canceled it meanwhile, the job ends canceled instead (false); if a
    /// later attempt has taken it over, it is left to that one (false).
    pub(super) async fn requeue(
        &self,
        delivery: &Delivery<'_>,
        mut job: Job,
        revision: Option<u64>,
        stops: &Stops,
    ) -> bool {
        let revision = self.save_over(&mut job, revision, stops).await;
        if stops.superseded.is_cancelled() {
            return false;
        }
        if !stops.canceled.is_cancelled() {
            return true;
        }
        job.state = JobState::Canceled;
        job.error = None;
        self.finish(delivery, job, revision).await;
        false
    }

    /// Records a terminal state, announces it and settles the work item. The
    /// upload is no longer needed either way. A result the job has moved on
    /// from (a later attempt started it) is dropped, and the work item, now
    /// that attempt's, is left alone.
    pub(super) async fn finish(
        &self,
        delivery: &Delivery<'_>,
        mut job: Job,
        revision: Option<u64>,
    ) {
        let Delivery {
            message,
            delivered,
            started,
            trace,
        } = *delivery;
        job.finished_at = Some(OffsetDateTime::now_utc());
        // The audio a job that did not complete stored for some of its
        // outputs goes before its state says so: whoever sees it failed
        // finds nothing of it left.
        let cleared = job.state != JobState::Completed;
        if cleared {
            self.delete_outputs(&job).await;
        }
        match self.write_result(&mut job, revision).await {
            Ok(Standing::Holds(_)) => {}
            Ok(Standing::Canceled(_)) => {
                // The owner's cancel came first and stays: announce that.
                tracing::info!("canceled by its owner as it ended");
                job.state = JobState::Canceled;
                job.set_results(Vec::new());
                job.waveform = None;
                job.artwork_bytes = None;
                job.error = None;
            }
            Ok(Standing::Superseded) => {
                tracing::info!("a later attempt has taken the job over; dropping this result");
                return;
            }
            Err(err) => {
                // A redelivery decides by this state. Without it, the next
                // delivery would convert again from an upload deleted below,
                // and fail a job that had completed.
                tracing::warn!(error = %err, "cannot record the result; retrying");
                let _ = message
                    .ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                    .await;
                return;
            }
        }
        if let Err(err) = js_setup::publish_job_event(&self.js, &job, trace).await {
            // Without the event there is no email and no history: try again.
            tracing::warn!(error = %err, "cannot announce the result; retrying");
            let _ = message
                .ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                .await;
            return;
        }
        crate::metrics::job_finished(job.state.as_str());
        if let (JobState::Completed, Some(output)) = (job.state, &job.output) {
            crate::metrics::transcode_completed(
                started.elapsed().as_secs_f64(),
                output.duration_seconds,
            );
        }
        self.delete_upload(&job).await;
        // A cancel that came as the job completed leaves audio to delete.
        if job.state != JobState::Completed && !cleared {
            self.delete_outputs(&job).await;
        }
        if let Err(err) = message.double_ack().await {
            tracing::warn!(error = %err, "cannot acknowledge the work item");
        }
        tracing::info!(state = job.state.as_str(), "job finished");
    }
}
