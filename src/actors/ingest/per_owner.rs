//! Things in progress, counted per owner: uploads (they count against the
//! owner's cap on unfinished jobs while their bytes arrive, so parallel
//! uploads cannot all pass a check made before any of them became a job)
//! and open event streams. Counted in this process: each Ingest instance
//! enforces its caps for what it serves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type ByOwner = Arc<Mutex<HashMap<String, u64>>>;

#[derive(Default)]
pub struct Counts {
    by_owner: ByOwner,
}

/// One thing in progress; it stops counting when dropped.
pub struct Slot {
    by_owner: ByOwner,
    owner: String,
}

impl Counts {
    /// Counts one more of `owner`'s and returns it with how many of theirs
    /// are now in progress, this one included.
    pub fn start(&self, owner: &str) -> (Slot, u64) {
        let mut by_owner = self.by_owner.lock().unwrap_or_else(|e| e.into_inner());
        let count = by_owner.entry(owner.to_string()).or_insert(0);
        *count += 1;
        let now = *count;
        (
            Slot {
                by_owner: Arc::clone(&self.by_owner),
                owner: owner.to_string(),
            },
            now,
        )
    }

    /// How many of `owner`'s are in progress.
    pub fn of(&self, owner: &str) -> u64 {
        let by_owner = self.by_owner.lock().unwrap_or_else(|e| e.into_inner());
        by_owner.get(owner).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut by_owner = self.by_owner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = by_owner.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_owner.remove(&self.owner);
            }
        }
    }
}
