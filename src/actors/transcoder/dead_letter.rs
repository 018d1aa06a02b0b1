//! Dead letters: a work item that cannot be processed (malformed, forged,
//! its job gone, or failed on our side too often) is copied to
//! `MEDIAJET_DEAD` with the reason, for an operator.

use async_nats::jetstream::{self, AckKind};

use super::Transcoder;
use crate::wire::{self, subject};

impl Transcoder {
    /// Keeps a copy of a work item for an operator, then removes it from the
    /// queue (`Term` deletes it from a work-queue stream).
    pub(super) async fn dead_letter(&self, message: &jetstream::Message, reason: &str) {
        tracing::error!(subject = %message.subject, reason, "dead-lettering a work item");
        self.copy_to_dead_letter(message, reason).await;
        let _ = message.ack_with(AckKind::Term).await;
    }

    pub(super) async fn copy_to_dead_letter(&self, message: &jetstream::Message, reason: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Mediajet-Dead-Reason", wire::header_safe(reason).as_str());
        let published = match self
            .js
            .publish_with_headers(subject::DEAD_TRANSCODE, headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()),
            Err(err) => Err(err),
        };
        if let Err(err) = published {
            tracing::error!(error = %err, "cannot dead-letter a work item");
        }
    }
}
