//! Who owns a job while it encodes: the jobs bucket is the authority, and
//! every write is a compare-and-set over the state this attempt wrote last,
//! so an owner's cancel wins and a later attempt's state is never
//! overwritten.

use async_nats::jetstream::kv;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::Transcoder;
use crate::error::BoxError;
use crate::wire::{self, Job, JobState};

/// What can end an attempt early, besides shutdown.
#[derive(Default)]
pub(super) struct Stops {
    /// The owner canceled the job.
    pub(super) canceled: CancellationToken,
    /// A later attempt has started the job: this one's ack wait ran out (it
    /// was cut off from NATS, say) and the work item went to another
    /// transcoder, whose result counts.
    pub(super) superseded: CancellationToken,
}

/// Where an attempt stands with its job, as the jobs bucket has it now.
pub(super) enum Standing {
    /// The job is still this attempt's, at this revision (possibly with an
    /// earlier write of this attempt's whose acknowledgement was lost).
    Holds(u64),
    /// The owner canceled the job while this attempt ran, at this revision.
    Canceled(u64),
    /// A later attempt has started the job, or it is gone.
    Superseded,
}

impl Transcoder {
    /// Writes the job over the state this attempt wrote last (`revision`),
    /// so that a cancel written in between wins and stops the encode even if
    /// the cancel message was lost, and a later attempt's state is never
    /// overwritten (this attempt is then told to stop). Returns the revision
    /// to write over next; `None` when not known.
    pub(super) async fn save_over(
        &self,
        job: &mut Job,
        revision: Option<u64>,
        stops: &Stops,
    ) -> Option<u64> {
        job.updated_at = OffsetDateTime::now_utc();
        let key = job.id.as_str();
        if let Some(current) = revision {
            match self.jobs.update(key, wire::encode(job), current).await {
                Ok(next) => return Some(next),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot update the progress");
                    return revision;
                }
            }
        }
        // Someone else wrote, or what we wrote last is not known.
        match self.standing(job).await {
            Ok(Standing::Holds(at)) => match self.jobs.update(key, wire::encode(job), at).await {
                Ok(next) => Some(next),
                Err(_) => Some(at),
            },
            Ok(Standing::Canceled(at)) => {
                stops.canceled.cancel();
                Some(at)
            }
            Ok(Standing::Superseded) => {
                stops.superseded.cancel();
                revision
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot update the progress");
                revision
            }
        }
    }

    /// Where this attempt (`job` as it last wrote it) stands with the job
    /// as stored now.
    pub(super) async fn standing(&self, job: &Job) -> Result<Standing, kv::EntryError> {
        let entry = self.jobs.entry(job.id.as_str()).await?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(Standing::Superseded);
        };
        let Ok(stored) = wire::decode::<Job>(&entry.value) else {
            return Ok(Standing::Superseded);
        };
        // Every attempt counts itself in `attempts` when it starts, with a
        // compare-and-set: a higher count is a later attempt. A lower one is
        // a replica that has not caught up with this attempt's writes (in a
        // cluster, a read may be served by any replica): still ours.
        Ok(if stored.attempts > job.attempts {
            Standing::Superseded
        } else if stored.state == JobState::Canceled {
            Standing::Canceled(entry.revision)
        } else {
            Standing::Holds(entry.revision)
        })
    }

    /// Writes this attempt's result over the job, unless the job has moved
    /// on without it (then says how and writes nothing).
    pub(super) async fn write_result(
        &self,
        job: &mut Job,
        revision: Option<u64>,
    ) -> Result<Standing, BoxError> {
        job.updated_at = OffsetDateTime::now_utc();
        let mut over = revision;
        for _ in 0..3 {
            let at = match over {
                Some(at) => at,
                None => match self.standing(job).await? {
                    Standing::Holds(at) => at,
                    moved_on => return Ok(moved_on),
                },
            };
            match self
                .jobs
                .update(job.id.as_str(), wire::encode(job), at)
                .await
            {
                Ok(written) => return Ok(Standing::Holds(written)),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => over = None,
                Err(err) => return Err(err.into()),
            }
        }
        Err("the job kept changing while its result was written".into())
    }
}
