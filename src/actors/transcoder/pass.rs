//! One ffmpeg pass run to its end: progress written to the job, and the
//! ways a pass is stopped (canceled, taken over, shut down, out of time, an
//! input too short for the trim, a followed upload that broke off).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::error::AttemptError;
use super::ffmpeg::{Encode, Finished, Plan, Progress};
use super::ownership::Stops;
use super::{Transcoder, feed};
use crate::wire::Job;

/// What one pass ended with.
pub(super) struct Passed {
    pub finished: Finished,
    /// ffmpeg's last progress report.
    pub last: Progress,
    /// The upload's size, when this pass was fed as it arrived.
    pub fed: Option<u64>,
}

/// The attempt's ways to stop, and where it records progress.
pub(super) struct Watch<'a> {
    pub job: &'a mut Job,
    pub revision: &'a mut Option<u64>,
    pub interrupt: &'a CancellationToken,
    pub stops: &'a Stops,
}

impl Transcoder {
    /// Runs one ffmpeg pass to its end, recording progress as the share
    /// `(index, count)` of the whole conversion, and stopping it when the
    /// job is canceled or taken over, the transcoder shuts down, it runs
    /// out of time, or the input turns out too short for the plan's trim.
    /// A pass fed as the upload arrives ends only once the upload is whole
    /// and matches its digest.
    pub(super) async fn pass(
        &self,
        watch: &mut Watch<'_>,
        plan: &Plan,
        mut encode: Encode,
        mut feeding: Option<AbortOnDropHandle<std::io::Result<u64>>>,
        (index, count): (usize, usize),
    ) -> Result<Passed, AttemptError> {
        let Watch {
            job,
            revision,
            interrupt,
            stops,
        } = watch;
        let mut fed: Option<u64> = None;
        let encode_deadline = tokio::time::sleep(self.media.encode_timeout);
        tokio::pin!(encode_deadline);
        let mut last_saved = Instant::now();
        let result = loop {
            tokio::select! {
                changed = encode.progress.changed() => {
                    if changed.is_err() {
                        break encode.finish().await;
                    }
                    let progress = *encode.progress.borrow_and_update();
                    if let Some(reason) = progress.total.and_then(|total| plan.refusal(total)) {
                        stop(&mut encode).await;
                        return Err(AttemptError::Rejected(reason));
                    }
                    let total = progress.total.map(|total| plan.output_length(total));
                    if let Some(total) = total.filter(|total| *total > 0.0)
                        && last_saved.elapsed() >= Duration::from_millis(500)
                    {
                        let done = (progress.seconds / total).clamp(0.0, 1.0);
                        let share = (index as f64 + done) / count as f64;
                        job.progress = (share * 100.0).clamp(0.0, 99.0).round();
                        job.speed = (progress.speed > 0.0).then_some(progress.speed);
                        // Later passes read the whole input again.
                        let left = (total - progress.seconds).max(0.0)
                            + total * (count - index - 1) as f64;
                        job.eta_seconds = job.speed.map(|speed| (left / speed).round());
                        **revision = self.save_over(job, **revision, stops).await;
                        last_saved = Instant::now();
                    }
                }
                done = async { feeding.as_mut().expect("guarded").await }, if feeding.is_some() => {
                    feeding = None;
                    match feed::outcome(done) {
                        // The time limit is for the conversion, not for the
                        // upload (bounded by Ingest's rate floor and the
                        // idle limit): it starts over once the upload is in.
                        Ok(size) => {
                            fed = Some(size);
                            encode_deadline
                                .as_mut()
                                .reset(tokio::time::Instant::now() + self.media.encode_timeout);
                        }
                        Err(err) => {
                            stop(&mut encode).await;
                            return Err(err);
                        }
                    }
                }
                _ = stops.canceled.cancelled() => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Canceled);
                }
                _ = stops.superseded.cancelled() => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Superseded);
                }
                _ = interrupt.cancelled() => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Interrupted);
                }
                _ = &mut encode_deadline => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Rejected(format!(
                        "the conversion took longer than the limit of {} seconds",
                        self.media.encode_timeout.as_secs()
                    )));
                }
            }
        };
        // ffmpeg is done with what it was given; a followed upload counts
        // only once it is whole and matches its digest.
        if let Some(feeding) = feeding {
            let done = tokio::select! {
                done = feeding => done,
                _ = stops.canceled.cancelled() => return Err(AttemptError::Canceled),
                _ = stops.superseded.cancelled() => return Err(AttemptError::Superseded),
                _ = interrupt.cancelled() => return Err(AttemptError::Interrupted),
            };
            fed = Some(feed::outcome(done)?);
        }
        let finished = result?;
        let last = *encode.progress.borrow();
        Ok(Passed {
            finished,
            last,
            fed,
        })
    }
}

/// Kills a pass and waits for it to be gone.
async fn stop(encode: &mut Encode) {
    encode.kill();
    let _ = encode.finish().await;
}
