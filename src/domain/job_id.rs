//! Job ids: UUIDv7, so that they sort by creation time.

use std::fmt;

use uuid::Uuid;

/// A job's id. Any spelling of a UUID (braces, `urn:uuid:`, capitals) parses
/// to the same id, which is written in one canonical form: lowercase and
/// hyphenated, as bucket keys, subjects and file names use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Uuid);

impl JobId {
    /// A new id, later than every id made before it on this clock.
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }

    /// The id `text` spells, if it spells a UUID at all.
    pub fn parse(text: &str) -> Option<JobId> {
        // The longest spelling `uuid` accepts is `urn:uuid:` and 36
        // characters; anything longer is refused before it is looked at.
        if text.len() > 45 {
            return None;
        }
        Uuid::parse_str(text).ok().map(JobId)
    }
}

impl Default for JobId {
    fn default() -> Self {
        JobId::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_uuid_is_one_id_and_nothing_else_is_one() {
        let id = JobId::new();
        let canonical = id.to_string();
        assert_eq!(canonical.len(), 36);
        assert_eq!(canonical, canonical.to_lowercase());
        for spelling in [
            canonical.clone(),
            canonical.to_uppercase(),
            format!("{{{canonical}}}"),
            format!("urn:uuid:{canonical}"),
        ] {
            assert_eq!(JobId::parse(&spelling), Some(id), "{spelling}");
        }
        assert_eq!(JobId::parse("not-a-job"), None);
        assert_eq!(JobId::parse(&"a".repeat(5000)), None);
        assert!(JobId::new() > id, "ids sort by creation");
    }
}
