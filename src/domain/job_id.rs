//! Job ids: UUIDv7, so that they sort by creation time.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// A job's id, held in its one canonical spelling: lowercase and
/// hyphenated, as bucket keys, subjects and file names use it. Any spelling
/// of a UUID a user sends (braces, `urn:uuid:`, capitals) parses to it; a
/// stored or sent job id must already be canonical, so a forged one does
/// not even decode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A new id, later than every id made before it on this clock.
    pub fn new() -> Self {
        JobId(Uuid::now_v7().hyphenated().to_string())
    }

    /// The id `text` spells, if it spells a UUID at all.
    pub fn parse(text: &str) -> Option<JobId> {
        // The longest spelling `uuid` accepts is `urn:uuid:` and 36
        // characters; anything longer is refused before it is looked at.
        if text.len() > 45 {
            return None;
        }
        let uuid = Uuid::parse_str(text).ok()?;
        Some(JobId(uuid.hyphenated().to_string()))
    }

    /// The id `text` is, if it is one in the canonical spelling.
    fn parse_canonical(text: &str) -> Option<JobId> {
        JobId::parse(text).filter(|id| id.0 == text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        JobId::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        JobId::parse_canonical(&text)
            .ok_or_else(|| serde::de::Error::custom("not a job id in its canonical form"))
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
            assert_eq!(JobId::parse(&spelling).as_ref(), Some(&id), "{spelling}");
        }
        assert_eq!(JobId::parse("not-a-job"), None);
        assert_eq!(JobId::parse(&"a".repeat(5000)), None);
        assert!(JobId::new() > id, "ids sort by creation");
    }

    #[test]
    fn only_the_canonical_spelling_decodes() {
        let id = JobId::new();
        let decoded: JobId = serde_json::from_value(serde_json::json!(id.as_str())).unwrap();
        assert_eq!(decoded, id);
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            serde_json::json!(id.as_str())
        );
        for forged in [
            id.as_str().to_uppercase(),
            format!("{{{id}}}"),
            "../../etc/passwd".to_string(),
            String::new(),
        ] {
            assert!(
                serde_json::from_value::<JobId>(serde_json::json!(forged)).is_err(),
                "{forged}"
            );
        }
    }
}
