//! Disabled and removed users, mirrored from the disabled bucket: their
//! tokens, keys and links stop passing on every process as soon as the
//! watch brings the change (milliseconds).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_nats::jetstream::kv;
use tokio_util::sync::DropGuard;

use super::TokenError;
use super::mirror::mirror_bucket;
use crate::wire;

/// The users disabled or removed, mirrored in memory from their bucket.
#[derive(Clone)]
pub struct DisabledUsers {
    store: kv::Store,
    users: Arc<RwLock<HashSet<String>>>,
    /// Stops the watch when the last clone is dropped.
    _watching: Arc<DropGuard>,
}

impl DisabledUsers {
    /// Starts mirroring the bucket, and waits (a few seconds at most) until
    /// the users disabled so far are known.
    pub async fn watch(store: kv::Store) -> Self {
        let users = Arc::new(RwLock::new(HashSet::new()));
        let mirrored = Arc::clone(&users);
        let watching = mirror_bucket(store.clone(), "disabled users", move |entry| {
            if let Ok(mut users) = mirrored.write() {
                match entry.operation {
                    kv::Operation::Put => users.insert(entry.key.clone()),
                    kv::Operation::Delete | kv::Operation::Purge => users.remove(&entry.key),
                };
            }
        })
        .await;
        DisabledUsers {
            store,
            users,
            _watching: Arc::new(watching),
        }
    }

    pub fn is_disabled(&self, user: &str) -> bool {
        self.users.read().is_ok_and(|users| users.contains(user))
    }

    /// Disables `user` (for good when `removed`): here at once and,
    /// through the bucket, everywhere.
    pub async fn disable(&self, user: &str, removed: bool) -> Result<(), TokenError> {
        let entry = wire::Disabled {
            v: wire::VERSION,
            removed,
        };
        self.store
            .put(user, wire::encode(&entry))
            .await
            .map_err(|err| TokenError::Unavailable(err.into()))?;
        if let Ok(mut users) = self.users.write() {
            users.insert(user.to_string());
        }
        Ok(())
    }

    /// Enables `user` again.
    pub async fn enable(&self, user: &str) -> Result<(), TokenError> {
        self.store
            .purge(user)
            .await
            .map_err(|err| TokenError::Unavailable(err.into()))?;
        if let Ok(mut users) = self.users.write() {
            users.remove(user);
        }
        Ok(())
    }
}
