//! The media policy, checked on the encoding ffmpeg's own report of its
//! input: the duration and streams it prints before it writes any audio.
//!
//! One process per job is the point: a separate ffprobe before ffmpeg cost
//! as much CPU as converting a short clip (Debian's builds load about 215
//! shared libraries per start). ffmpeg reads the input with the same bounds
//! the probe had (probe size, analysis time, allowed demuxers and
//! protocols), so what it reports is what ffprobe would have said; the
//! encode is stopped as soon as the report breaks the policy.

use super::chapters::Chapters;
use super::{MediaError, MediaPolicy};

/// What ffmpeg has said so far about its input.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InputReport {
    /// Whether ffmpeg opened an input at all (printed `Input #0`, or
    /// `Input #1` for a cover picture).
    pub opened: bool,
    /// The container's duration in seconds, when it says.
    pub duration: Option<f64>,
    /// The input's streams, as far as ffmpeg printed them.
    pub streams: Vec<StreamKind>,
    /// Whether the container's own tags (printed before its duration)
    /// include a title.
    pub titled: bool,
    /// Whether ffmpeg has moved on from the container's tags.
    pub past_tags: bool,
    /// The input's chapters.
    pub chapters: Chapters,
}

/// One input stream, as much of it as the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamKind {
    Audio,
    /// A picture of `pixels` (width × height) per frame.
    Video {
        pixels: u64,
    },
    /// Subtitles, data, attachments, or a line ffmpeg-sidecar could not
    /// parse: each counts against the stream limit.
    Other,
}

impl InputReport {
    /// Takes one line of ffmpeg's input dump into account. ffmpeg-sidecar
    /// parses most stream lines; one it could not parse still names a
    /// stream, and is counted rather than missed.
    pub fn unparsed_line(&mut self, line: &str) {
        let line = line.strip_prefix("[info]").unwrap_or(line).trim_start();
        if line.starts_with("Stream #0:") {
            self.streams.push(StreamKind::Other);
        }
        self.chapters.line(line);
        if !self.past_tags
            && let Some((key, value)) = line.split_once(':')
            && key.trim_end() == "title"
            && !value.trim().is_empty()
        {
            self.titled = true;
        }
    }

    /// Whether the input breaks `policy`: the first rule it breaks, as the
    /// reason the user reads. `complete` says ffmpeg has finished
    /// describing the input, so a missing audio stream really is missing.
    pub fn check(&self, policy: &MediaPolicy, complete: bool) -> Result<(), MediaError> {
        let reject = |reason: String| Err(MediaError::Rejected(reason));
        if let Some(seconds) = self.duration
            && seconds > policy.max_duration.as_secs_f64()
        {
            return reject(format!(
                "the upload lasts {seconds:.0} seconds; at most {} are accepted",
                policy.max_duration.as_secs()
            ));
        }
        if self.streams.len() > policy.max_streams {
            return reject(format!(
                "the upload has {} streams; at most {} are accepted",
                self.streams.len(),
                policy.max_streams
            ));
        }
        let largest_picture = self
            .streams
            .iter()
            .filter_map(|s| match s {
                StreamKind::Video { pixels } => Some(*pixels),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        if largest_picture > policy.max_pixels {
            return reject(format!(
                "the upload's picture has {largest_picture} pixels; at most {} are accepted",
                policy.max_pixels
            ));
        }
        if complete && !self.streams.contains(&StreamKind::Audio) {
            return reject("the upload has no audio track".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> MediaPolicy {
        MediaPolicy {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            max_duration: Duration::from_secs(600),
            max_streams: 3,
            max_pixels: 1920 * 1080,
            max_output_bytes: 1 << 30,
            threads: 1,
            memory_bytes: 1 << 30,
            encode_timeout: Duration::from_secs(60),
        }
    }

    fn report(duration: Option<f64>, streams: &[StreamKind]) -> InputReport {
        InputReport {
            opened: true,
            duration,
            streams: streams.to_vec(),
            ..InputReport::default()
        }
    }

    #[test]
    fn each_rule_of_the_policy_is_checked_on_the_report() {
        use StreamKind::*;
        let hd = Video {
            pixels: 1920 * 1080,
        };
        let cases: &[(InputReport, bool, Option<&str>)] = &[
            (report(Some(60.0), &[hd, Audio]), true, None),
            (report(None, &[Audio]), true, None),
            (
                report(Some(601.0), &[Audio]),
                false,
                Some("lasts 601 seconds"),
            ),
            (
                report(Some(1.0), &[Audio, Other, Other, Other]),
                false,
                Some("has 4 streams"),
            ),
            (
                report(
                    Some(1.0),
                    &[
                        Video {
                            pixels: 4096 * 4096,
                        },
                        Audio,
                    ],
                ),
                true,
                Some("16777216 pixels"),
            ),
            (report(Some(1.0), &[hd]), true, Some("no audio track")),
            // While ffmpeg is still describing the input, audio may follow.
            (report(Some(1.0), &[hd]), false, None),
        ];
        for (report, complete, expected) in cases {
            let result = report.check(&policy(), *complete);
            match (expected, result) {
                (None, Ok(())) => {}
                (Some(wanted), Err(MediaError::Rejected(reason))) => {
                    assert!(reason.contains(wanted), "{report:?}: {reason}");
                }
                (expected, result) => panic!("{report:?}: {result:?}, wanted {expected:?}"),
            }
        }
    }

    #[test]
    fn a_stream_line_the_parser_missed_still_counts() {
        let mut report = InputReport::default();
        report.unparsed_line("[info]   Stream #0:3[0x4]: Video: none, 0x0");
        report.unparsed_line("[info]     title           : Stream #0:9 is not a stream");
        report.unparsed_line("[info]   Stream #1:0: Audio: mp3");
        assert_eq!(report.streams, vec![StreamKind::Other]);
    }
}
