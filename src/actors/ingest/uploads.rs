//! Uploads in progress, per owner: they count against the owner's cap on
//! unfinished jobs while their bytes arrive, so parallel uploads cannot all
//! pass a check made before any of them became a job. Counted in this
//! process: each Ingest instance enforces the cap for what it receives.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct InProgress {
    by_owner: Mutex<HashMap<String, u64>>,
}

/// One upload in progress; it stops counting when dropped.
pub struct Slot<'a> {
    uploads: &'a InProgress,
    owner: String,
}

impl InProgress {
    /// Counts a new upload of `owner`'s and returns it with how many of
    /// theirs are now in progress, this one included.
    pub fn start(&self, owner: &str) -> (Slot<'_>, u64) {
        let mut by_owner = self.by_owner.lock().unwrap_or_else(|e| e.into_inner());
        let count = by_owner.entry(owner.to_string()).or_insert(0);
        *count += 1;
        let now = *count;
        (
            Slot {
                uploads: self,
                owner: owner.to_string(),
            },
            now,
        )
    }

    /// How many of `owner`'s uploads are in progress.
    pub fn of(&self, owner: &str) -> u64 {
        let by_owner = self.by_owner.lock().unwrap_or_else(|e| e.into_inner());
        by_owner.get(owner).copied().unwrap_or(0)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut by_owner = self
            .uploads
            .by_owner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = by_owner.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_owner.remove(&self.owner);
            }
        }
    }
}
