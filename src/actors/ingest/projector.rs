//! The history projector: terminal job events written into SurrealDB, so
//! the history lists every job as it ended.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, kv};
use tracing::Instrument;

use super::Ingest;
use crate::error::BoxError;
use crate::wire::{self, Job};

impl Ingest {
    /// Records one job event in the history; acks it once recorded, naks
    /// it when SurrealDB is unavailable.
    pub(super) async fn project(&self, message: jetstream::Message) {
        let job = match wire::decode::<Job>(&message.payload) {
            Ok(job) => job,
            Err(err) => {
                tracing::warn!(subject = %message.subject, error = %err, "dropping a malformed job event");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        // The job's span, as the transcoder's attempt and the mailer have.
        let span = tracing::info_span!("record", job = %job.id);
        async {
            let outcome = match self.record_event(&job).await {
                Ok(()) => message.ack().await,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot record the job; retrying");
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                        .await
                }
            };
            if let Err(err) = outcome {
                tracing::warn!(error = %err, "cannot acknowledge a job event");
            }
        }
        .instrument(span)
        .await
    }

    /// Writes a job's event into the history, unless the job has been
    /// deleted: its live state is then gone (a purge marker), and an event
    /// delivered late, or again, must not bring the job back. The live
    /// state is checked once more after the write, since a delete may have
    /// come in between; the row is then removed again.
    async fn record_event(&self, job: &Job) -> Result<(), BoxError> {
        if self.deleted(job.id.as_str()).await? {
            return Ok(());
        }
        self.history.upsert(job).await?;
        if self.deleted(job.id.as_str()).await? {
            self.history.delete(job.id.as_str()).await?;
        }
        Ok(())
    }

    /// Whether the job's live state says it was deleted.
    async fn deleted(&self, job_id: &str) -> Result<bool, BoxError> {
        let entry = self.jobs.entry(job_id).await?;
        Ok(entry.is_none_or(|entry| entry.operation != kv::Operation::Put))
    }
}
