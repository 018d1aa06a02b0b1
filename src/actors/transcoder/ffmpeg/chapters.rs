//! The input's chapters, as ffmpeg's input dump lists them, and what an
//! output makes of them: Vorbis `CHAPTERnnn` comments in FLAC (whose muxer
//! writes none of its own), and the tracks a `split=chapters` output is cut
//! into.

use crate::audio::AudioOptions;

/// Most chapters read from one input; a split output makes at most this
/// many tracks.
pub const MAX_CHAPTERS: usize = 100;
/// Longest chapter title kept, in characters.
const MAX_TITLE: usize = 128;
/// Shortest piece of a chapter that becomes a track, in seconds: what a
/// trim leaves of a chapter it cuts near its end is no track.
const MIN_TRACK: f64 = 0.05;

/// One chapter of the input: where it starts and ends (seconds into the
/// input) and its title, if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Chapter {
    pub start: f64,
    pub end: f64,
    pub title: Option<String>,
}

/// The chapters of an input dump, read line by line.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Chapters {
    pub list: Vec<Chapter>,
    /// More chapters were listed than are kept.
    pub too_many: bool,
    /// Whether the lines read are inside a chapter's description, where a
    /// `title` is the chapter's.
    inside: bool,
}

impl Chapters {
    /// Takes one line of ffmpeg's input dump into account:
    /// `Chapter #0:1: start 2.000000, end 5.000000`, then the chapter's
    /// metadata, `title : Main part`.
    pub fn line(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Chapter #0:") {
            self.inside = false;
            let Some(chapter) = parse_times(rest) else {
                return;
            };
            if self.list.len() == MAX_CHAPTERS {
                self.too_many = true;
                return;
            }
            self.list.push(chapter);
            self.inside = true;
        } else if line.starts_with("Stream #") || line.starts_with("Chapters:") {
            self.streams_begin();
        } else if self.inside
            && let Some((key, value)) = line.split_once(':')
            && key.trim_end() == "title"
            && let Some(chapter) = self.list.last_mut()
            && chapter.title.is_none()
        {
            let title: String = value
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_TITLE)
                .collect();
            chapter.title = (!title.is_empty()).then_some(title);
        }
    }
}

impl Chapters {
    /// Ends the last chapter's description: the streams' metadata follows,
    /// whose titles are theirs. (ffmpeg-sidecar hands a stream's line over
    /// parsed, not as a line.)
    pub fn streams_begin(&mut self) {
        self.inside = false;
    }
}

/// `1: start 2.000000, end 5.000000` (the chapter's number already cut).
fn parse_times(rest: &str) -> Option<Chapter> {
    let (_, times) = rest.split_once(": start ")?;
    let (start, end) = times.split_once(", end ")?;
    let start: f64 = start.trim().parse().ok()?;
    let end: f64 = end.trim().parse().ok()?;
    (start.is_finite() && end.is_finite() && end > start && start >= 0.0).then_some(Chapter {
        start,
        end,
        title: None,
    })
}

/// The chapters as FLAC comments (after the Vorbis chapter extension, as
/// ffmpeg's Ogg muxer writes them): `CHAPTER000=00:00:00.000` and
/// `CHAPTER000NAME=Intro`, as `-metadata` arguments.
pub fn vorbis_chapter_args<'a>(chapters: impl Iterator<Item = &'a Chapter>) -> Vec<String> {
    let mut args = Vec::new();
    for (n, chapter) in chapters.enumerate() {
        args.push("-metadata".to_string());
        args.push(format!("CHAPTER{n:03}={}", clock(chapter.start)));
        if let Some(title) = &chapter.title {
            args.push("-metadata".to_string());
            args.push(format!("CHAPTER{n:03}NAME={title}"));
        }
    }
    args
}

/// `hh:mm:ss.mmm`.
fn clock(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

/// One track of a split output: where it starts in the input and how long
/// it lasts, in seconds, and its title (none: the whole output's).
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: f64,
    pub length: f64,
    pub title: Option<String>,
}

/// The tracks an output with `options` is split into, given its audio
/// lasts `length` seconds: one per chapter, within the output's trim;
/// without chapters, one for the whole output.
pub fn spans(chapters: &[Chapter], options: &AudioOptions, length: f64) -> Vec<Span> {
    let from = options.start.unwrap_or(0.0);
    let to = from + length;
    let mut spans: Vec<Span> = chapters
        .iter()
        .filter_map(|chapter| {
            let start = chapter.start.max(from);
            let end = chapter.end.min(to);
            (end - start >= MIN_TRACK).then(|| Span {
                start,
                length: end - start,
                title: chapter.title.clone(),
            })
        })
        .collect();
    if spans.is_empty() {
        spans.push(Span {
            start: from,
            length,
            title: None,
        });
    }
    // A chapter's end may fall short of the next one's start, or the last
    // one short of the input's end; no audio between them is lost: each
    // track runs to where the next starts, the last to the output's end.
    let starts: Vec<f64> = spans.iter().skip(1).map(|s| s.start).collect();
    for (span, next) in spans.iter_mut().zip(starts.into_iter().chain([to])) {
        span.length = (next - span.start).max(0.0);
    }
    if spans.len() > 1 {
        for (n, span) in spans.iter_mut().enumerate() {
            span.title
                .get_or_insert_with(|| format!("Chapter {}", n + 1));
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "  Duration: 00:00:05.00, start: 0.000000, bitrate: 73 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 2.000000
      Metadata:
        title           : Intro
    Chapter #0:1: start 2.000000, end 5.000000
    Chapter #0:2: start 5.000000, end 4.000000
  Stream #0:0[0x1](und): Audio: aac (LC), 44100 Hz, mono, fltp, 69 kb/s (default)
    Metadata:
      title           : Not a chapter's";

    fn read(dump: &str) -> Chapters {
        let mut chapters = Chapters::default();
        dump.lines().for_each(|line| chapters.line(line));
        chapters
    }

    #[test]
    fn chapters_and_their_titles_are_read_from_the_input_dump() {
        let chapters = read(DUMP);
        assert_eq!(
            chapters.list,
            [
                Chapter {
                    start: 0.0,
                    end: 2.0,
                    title: Some("Intro".into())
                },
                Chapter {
                    start: 2.0,
                    end: 5.0,
                    title: None
                },
            ]
        );
        assert!(!chapters.too_many);
        let many: String = (0..=MAX_CHAPTERS)
            .map(|n| format!("Chapter #0:{n}: start {n}.0, end {}.0\n", n + 1))
            .collect();
        let many = read(&many);
        assert_eq!(many.list.len(), MAX_CHAPTERS);
        assert!(many.too_many);
    }

    #[test]
    fn flac_gets_vorbis_chapter_comments() {
        assert_eq!(
            vorbis_chapter_args(read(DUMP).list.iter()).join(" "),
            "-metadata CHAPTER000=00:00:00.000 -metadata CHAPTER000NAME=Intro \
             -metadata CHAPTER001=00:00:02.000"
        );
        assert_eq!(clock(3723.25), "01:02:03.250");
    }

    #[test]
    fn tracks_follow_the_chapters_within_the_trim() {
        let chapters = read(DUMP).list;
        let whole = spans(&chapters, &AudioOptions::default(), 5.0);
        let summary = |spans: &[Span]| -> Vec<(f64, f64, Option<String>)> {
            spans
                .iter()
                .map(|s| {
                    (
                        s.start,
                        (s.length * 1000.0).round() / 1000.0,
                        s.title.clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            summary(&whole),
            [
                (0.0, 2.0, Some("Intro".into())),
                (2.0, 3.0, Some("Chapter 2".into()))
            ]
        );
        let trimmed = AudioOptions {
            start: Some(1.0),
            end: Some(2.02),
            ..AudioOptions::default()
        };
        assert_eq!(
            summary(&spans(&chapters, &trimmed, 1.02)),
            [(1.0, 1.02, Some("Intro".into()))],
            "a sliver of a chapter is no track"
        );
        assert_eq!(
            summary(&spans(&[], &AudioOptions::default(), 7.5)),
            [(0.0, 7.5, None)]
        );
    }
}
