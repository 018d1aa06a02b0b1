//! Purging the chunks that no object names: what a write left behind when
//! its process died part-way.

use std::time::Duration;

use async_nats::jetstream::object_store::ObjectInfo;
use futures::StreamExt;

use super::Bucket;
use crate::error::BoxError;

impl Bucket {
    /// Purges chunks that no object names and that have not grown for
    /// `idle`: what a put left behind when its process died mid-way (a
    /// crash, or a redeploy that did not wait for an upload). A put in
    /// progress elsewhere writes a chunk well within `idle` (uploads slower
    /// than that are cut off), so it is never taken for one. Returns how
    /// many objects' chunks were purged. The chunks under the ids in
    /// `open` are spared: objects still being written in parts.
    pub async fn sweep_orphans(
        &self,
        idle: Duration,
        open: &std::collections::HashSet<String>,
    ) -> Result<usize, BoxError> {
        let mut named = self.named_nuids().await?;
        named.extend(open.iter().cloned());
        let chunks = format!("$O.{}.C.", self.name);
        let mut subjects = self
            .stream
            .clone()
            .info_with_subjects(format!("{chunks}>"))
            .await?;
        let mut orphans = Vec::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject?;
            let nuid = subject.strip_prefix(&chunks).unwrap_or_default();
            if !named.contains(nuid) {
                orphans.push(subject);
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let mut purged = 0;
        for subject in orphans {
            let Ok(last) = self
                .stream
                .direct_get_last_for_subject(subject.as_str())
                .await
            else {
                continue;
            };
            if now - last.time >= idle {
                self.purge_subject(&subject).await;
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// The chunk subjects' ids of every object the bucket names.
    async fn named_nuids(&self) -> Result<std::collections::HashSet<String>, BoxError> {
        let meta = format!("$O.{}.M.>", self.name);
        let mut subjects = self.stream.clone().info_with_subjects(meta).await?;
        let mut named = std::collections::HashSet::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject?;
            let last = self.stream.direct_get_last_for_subject(subject).await?;
            if let Ok(info) = serde_json::from_slice::<ObjectInfo>(&last.payload) {
                named.insert(info.nuid);
            }
        }
        Ok(named)
    }

    /// Removes every message on `subject`: the chunks of a put that failed
    /// or of an object that was replaced. A failure is logged; the bucket's
    /// max age removes them in the end.
    pub(super) async fn purge_subject(&self, subject: &str) {
        if let Err(err) = self.stream.purge().filter(subject).await {
            tracing::warn!(subject, error = %err, "cannot purge the chunks of an object");
        }
    }
}
