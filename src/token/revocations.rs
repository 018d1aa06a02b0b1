//! Revoked sessions, mirrored from the revoked bucket.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_nats::jetstream::kv;
use tokio_util::sync::DropGuard;

use super::mirror::mirror_bucket;
use super::{TokenError, unix_now};
use crate::wire;

/// Revoked sessions, mirrored in memory from the revoked bucket. A revocation
/// made by this process counts here at once; one made elsewhere counts once
/// the watch delivers it (milliseconds). While NATS is unreachable the mirror
/// may miss new revocations; the short life of access tokens bounds that.
#[derive(Clone)]
pub struct Revocations {
    store: kv::Store,
    revoked: Arc<Revoked>,
    /// Stops the watch when the last clone is dropped.
    _watching: Arc<DropGuard>,
}

/// The revoked sessions known here, and a signal that fires when one is
/// added (an open event stream then checks whether it was its own).
#[derive(Default)]
struct Revoked {
    sessions: RwLock<HashMap<String, u64>>,
    added: tokio::sync::Notify,
}

impl Revocations {
    /// Starts mirroring the bucket in a background task, and waits (a few
    /// seconds at most) until the revocations made so far are known, so a
    /// process that just started does not accept a revoked token.
    pub async fn watch(store: kv::Store) -> Self {
        let revoked = Arc::new(Revoked::default());
        let mirrored = Arc::clone(&revoked);
        let watching = mirror_bucket(store.clone(), "revoked sessions", move |entry| {
            if entry.operation == kv::Operation::Put
                && let Ok(value) = wire::decode::<wire::Revoked>(&entry.value)
            {
                remember(&mirrored, &entry.key, value.until);
            }
        })
        .await;
        Revocations {
            store,
            revoked,
            _watching: Arc::new(watching),
        }
    }

    pub fn is_revoked(&self, session: &str) -> bool {
        let now = unix_now();
        self.revoked
            .sessions
            .read()
            .ok()
            .and_then(|revoked| revoked.get(session).copied())
            .is_some_and(|until| now <= until)
    }

    /// Completes once `session` is revoked.
    pub async fn revoked(&self, session: &str) {
        loop {
            let added = self.revoked.added.notified();
            if self.is_revoked(session) {
                return;
            }
            added.await;
        }
    }

    /// Counts a revocation made elsewhere at once, before the watch brings it.
    pub fn note(&self, session: &str, until: u64) {
        remember(&self.revoked, session, until);
    }

    /// Revokes a session until `until` (Unix time): for this process at once
    /// and, through the bucket, for every other.
    pub async fn revoke(&self, session: &str, until: u64) -> Result<(), TokenError> {
        let entry = wire::Revoked {
            v: wire::VERSION,
            until,
        };
        self.store
            .put(session, wire::encode(&entry))
            .await
            .map_err(|err| TokenError::Unavailable(err.into()))?;
        remember(&self.revoked, session, until);
        Ok(())
    }
}

fn remember(revoked: &Revoked, session: &str, until: u64) {
    if let Ok(mut sessions) = revoked.sessions.write() {
        // Entries past their time protect nothing: drop them as we go.
        let now = unix_now();
        sessions.retain(|_, until| *until >= now);
        sessions.insert(session.to_string(), until);
    }
    revoked.added.notify_waiters();
}
