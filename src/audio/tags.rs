//! The tags an output carries: ID3v2.4 frames in mp3, Vorbis comments in
//! Opus and FLAC, MP4 atoms in m4a, written by ffmpeg's muxers from its
//! own metadata names, which these are.

use serde::{Deserialize, Serialize};

/// The tags a job may set, by name.
pub const TAG_NAMES: [&str; 7] = [
    "title", "artist", "album", "date", "track", "comment", "genre",
];

/// Longest tag value, in bytes.
const MAX_TAG: usize = 256;

/// Tags asked for; absent ones come from the input's own tags (and the
/// title, failing that, from the file name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tags {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    /// A year or a date (`2026`, `2026-12-04`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The track's number, optionally of how many (`3`, `3/12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
}

impl Tags {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "title" => &mut self.title,
            "artist" => &mut self.artist,
            "album" => &mut self.album,
            "date" => &mut self.date,
            "track" => &mut self.track,
            "comment" => &mut self.comment,
            "genre" => &mut self.genre,
            _ => return None,
        })
    }

    /// Sets the tag `name` (one of [`TAG_NAMES`]), refusing a value that is
    /// too long, holds control characters, or is no track number.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        if value.len() > MAX_TAG {
            return Err(format!("`{name}` may be at most {MAX_TAG} bytes long"));
        }
        // A comment may run over several lines; nothing else may.
        let allowed = |c: char| !c.is_control() || (name == "comment" && c == '\n');
        if !value.chars().all(allowed) {
            return Err(format!("`{name}` may not hold control characters"));
        }
        if name == "track" && !is_track(value) {
            return Err("`track` is a number, optionally of how many: `3` or `3/12`".into());
        }
        let slot = self
            .slot(name)
            .ok_or_else(|| format!("there is no tag `{name}`"))?;
        *slot = (!value.is_empty()).then(|| value.to_string());
        Ok(())
    }

    /// The tags set, by name, in [`TAG_NAMES`] order.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let values = [
            &self.title,
            &self.artist,
            &self.album,
            &self.date,
            &self.track,
            &self.comment,
            &self.genre,
        ];
        TAG_NAMES
            .into_iter()
            .zip(values)
            .filter_map(|(name, value)| Some((name, value.as_deref()?)))
            .collect()
    }
}

fn is_track(value: &str) -> bool {
    let number = |s: &str| (1..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    match value.split_once('/') {
        Some((track, of)) => number(track) && number(of),
        None => number(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_bounded_and_a_track_is_a_number() {
        let mut tags = Tags::default();
        tags.set("title", " Lecture 3 ").unwrap();
        tags.set("track", "3/12").unwrap();
        tags.set("comment", "two\nlines").unwrap();
        assert_eq!(
            tags.pairs(),
            [
                ("title", "Lecture 3"),
                ("track", "3/12"),
                ("comment", "two\nlines")
            ]
        );
        assert!(tags.set("track", "third").is_err());
        assert!(tags.set("title", "a\nb").is_err());
        assert!(tags.set("artist", &"x".repeat(300)).is_err());
        assert!(tags.set("composer", "x").is_err());
    }
}
