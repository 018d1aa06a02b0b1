//! The audio formats mediajet makes and the encoding options each takes:
//! service policy (which bit rates and sample rates, which defaults), kept
//! apart from the wire contract that merely carries a format's name.
//!
//! - `loudness`: normalization targets and the statistics a job reports
//! - `trim`: the times a trim is given in
//! - `tags`: the tags an output carries

mod loudness;
mod tags;
mod trim;

pub use loudness::{
    Loudness, LoudnessPreset, LoudnessReport, LoudnessStats, LoudnessTarget, Normalization, PRESETS,
};
pub use tags::{TAG_NAMES, Tags};
pub use trim::parse_time;

use serde::{Deserialize, Serialize};

/// Output audio formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// MPEG layer 3 (libmp3lame).
    Mp3,
    /// AAC in an MPEG-4 audio file (`.m4a`).
    Aac,
    /// Opus in Ogg (`.opus`).
    Opus,
    /// FLAC, lossless.
    Flac,
    /// 16-bit PCM in WAV, uncompressed.
    Wav,
}

/// Every format, in the order the API documents them.
pub const FORMATS: [Format; 5] = [
    Format::Mp3,
    Format::Aac,
    Format::Opus,
    Format::Flac,
    Format::Wav,
];

/// Sample rates (Hz) that mp3 and AAC encoders take.
const COMMON_RATES: &[u32] = &[8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/// Encoding options of a job: `None` takes the format's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudioOptions {
    /// Bit rate in kbit/s (lossy formats only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    /// Sample rate in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// 1 (mono, a downmix) or 2 (stereo); absent keeps the input's layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2)]
    pub channels: Option<u8>,
    /// Loudness to normalize to; absent leaves the level as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<Loudness>,
    /// Where in the input the output starts, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    /// Where in the input the output ends, in seconds (past the input's
    /// end: at its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// Variable bit rate quality instead of `bitrate`, lossy formats only:
    /// 0 (best, largest) to 9 (smallest), after LAME's `-V` scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9)]
    pub vbr: Option<u8>,
    #[serde(flatten)]
    pub tags: Tags,
    /// The picture embedded in the output (mp3, m4a, FLAC, Opus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<Cover>,
    /// With `cover=frame`: the time of the frame, in seconds (default: a
    /// tenth of the way in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_at: Option<f64>,
    /// `chapters`: one track per chapter of the input, delivered together
    /// as a zip with a playlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

/// How an output is cut into tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// One track per chapter of the input (the whole output as one track
    /// when the input has none).
    Chapters,
}

/// Where an output's cover picture comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cover {
    /// A frame of the video.
    Frame,
    /// A JPEG or PNG picture uploaded with the job.
    Upload,
}

/// An option a format cannot take: which one, and what it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    pub option: &'static str,
    pub message: String,
}

impl AudioOptions {
    /// The channel count to encode: the one asked for, else the one the
    /// loudness preset implies.
    pub fn channel_count(&self) -> Option<u8> {
        self.channels
            .or_else(|| self.loudness.and_then(Loudness::channels))
    }
}

impl Format {
    /// Parses a user-supplied format name.
    pub fn parse(name: &str) -> Option<Format> {
        let name = name.trim().to_ascii_lowercase();
        FORMATS.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Aac => "aac",
            Format::Opus => "opus",
            Format::Flac => "flac",
            Format::Wav => "wav",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Aac => "m4a",
            Format::Opus => "opus",
            Format::Flac => "flac",
            Format::Wav => "wav",
        }
    }

    /// Whether the format's encoder discards sound (and so overshoots the
    /// peaks it is given).
    pub fn is_lossy(self) -> bool {
        matches!(self, Format::Mp3 | Format::Aac | Format::Opus)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Mp3 => "audio/mpeg",
            Format::Aac => "audio/mp4",
            Format::Opus => "audio/ogg",
            Format::Flac => "audio/flac",
            Format::Wav => "audio/wav",
        }
    }

    /// Bit rate (kbit/s) and sample rate (Hz) used when a job names none;
    /// `None` keeps the input's sample rate (lossless formats) or has no bit
    /// rate at all.
    pub fn defaults(self) -> (Option<u32>, Option<u32>) {
        match self {
            // The settings of the service this one replaces.
            Format::Mp3 => (Some(192), Some(44100)),
            Format::Aac => (Some(192), Some(44100)),
            Format::Opus => (Some(128), Some(48000)),
            Format::Flac | Format::Wav => (None, None),
        }
    }

    /// Checks options against what this format can encode, with a sentence
    /// saying what is allowed when they do not fit.
    pub fn check(self, options: &AudioOptions) -> Result<(), OptionError> {
        let refuse = |option, message| Err(OptionError { option, message });
        if let Some((option, message)) = self.check_rates(options) {
            return refuse(option, message);
        }
        if options.channels.is_some_and(|c| !(1..=2).contains(&c)) {
            return refuse(
                "channels",
                "`channels` must be 1 (mono) or 2 (stereo)".into(),
            );
        }
        if let Some(Err(message)) = options.loudness.map(Loudness::check) {
            return refuse("loudness", message);
        }
        if let (Some(start), Some(end)) = (options.start, options.end)
            && end <= start
        {
            return refuse(
                "end",
                format!("`end` ({end} s) must come after `start` ({start} s)"),
            );
        }
        if options.cover.is_some() && self == Format::Wav {
            return refuse("cover", "wav carries no picture".into());
        }
        if options.cover_at.is_some() && options.cover != Some(Cover::Frame) {
            return refuse("cover_at", "`cover_at` goes with `cover=frame`".into());
        }
        if let Some(vbr) = options.vbr {
            if !self.is_lossy() {
                return refuse(
                    "vbr",
                    format!("{} is lossless: it takes no `vbr`", self.name()),
                );
            }
            if vbr > 9 {
                return refuse("vbr", "`vbr` must be 0 (best) to 9 (smallest)".into());
            }
            if options.bitrate.is_some() {
                return refuse("vbr", "give `bitrate` or `vbr`, not both".into());
            }
        }
        Ok(())
    }

    /// What is wrong with the bit rate or sample rate, if anything.
    fn check_rates(self, options: &AudioOptions) -> Option<(&'static str, String)> {
        const MP3_RATES: &[u32] = &[
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ];
        const OPUS_RATES: &[u32] = &[8000, 12000, 16000, 24000, 48000];
        const LOSSLESS_RATES: &[u32] = &[
            8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400,
            192000,
        ];
        let list = |values: &[u32]| {
            values
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (bitrates_ok, bitrate_rule) = match self {
            Format::Mp3 => (
                options.bitrate.is_none_or(|b| MP3_RATES.contains(&b)),
                format!("one of {} kbit/s", list(MP3_RATES)),
            ),
            Format::Aac => (
                options.bitrate.is_none_or(|b| (32..=320).contains(&b)),
                "32 to 320 kbit/s".to_string(),
            ),
            Format::Opus => (
                options.bitrate.is_none_or(|b| (6..=510).contains(&b)),
                "6 to 510 kbit/s".to_string(),
            ),
            Format::Flac | Format::Wav => (
                options.bitrate.is_none(),
                "none: the format is lossless".to_string(),
            ),
        };
        if !bitrates_ok {
            return Some((
                "bitrate",
                format!("{} takes a bitrate of {bitrate_rule}", self.name()),
            ));
        }
        let rates = match self {
            Format::Mp3 | Format::Aac => COMMON_RATES,
            Format::Opus => OPUS_RATES,
            Format::Flac | Format::Wav => LOSSLESS_RATES,
        };
        options
            .sample_rate
            .is_some_and(|r| !rates.contains(&r))
            .then(|| {
                let message = format!(
                    "{} takes a sample rate of one of {} Hz",
                    self.name(),
                    list(rates)
                );
                ("sample_rate", message)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_are_case_insensitive_and_unknown_ones_rejected() {
        assert_eq!(Format::parse(" MP3 "), Some(Format::Mp3));
        assert_eq!(Format::parse("Opus"), Some(Format::Opus));
        assert_eq!(Format::parse("exe"), None);
    }

    #[test]
    fn options_are_checked_per_format() {
        let opts = |bitrate, sample_rate| AudioOptions {
            bitrate,
            sample_rate,
            ..AudioOptions::default()
        };
        for format in FORMATS {
            let (bitrate, sample_rate) = format.defaults();
            assert_eq!(
                format.check(&opts(bitrate, sample_rate)),
                Ok(()),
                "{format:?}"
            );
            assert_eq!(format.check(&AudioOptions::default()), Ok(()));
        }
        assert!(Format::Mp3.check(&opts(Some(100), None)).is_err());
        assert!(Format::Mp3.check(&opts(Some(320), Some(48000))).is_ok());
        assert!(Format::Opus.check(&opts(None, Some(44100))).is_err());
        assert!(Format::Flac.check(&opts(Some(128), None)).is_err());
        assert!(Format::Wav.check(&opts(None, Some(96000))).is_ok());
        assert!(Format::Aac.check(&opts(Some(400), None)).is_err());
        let stereo = AudioOptions {
            channels: Some(6),
            ..AudioOptions::default()
        };
        assert_eq!(Format::Mp3.check(&stereo).unwrap_err().option, "channels");
        let refused =
            |format: Format, options: AudioOptions| format.check(&options).unwrap_err().option;
        let trim = AudioOptions {
            start: Some(10.0),
            end: Some(10.0),
            ..AudioOptions::default()
        };
        assert_eq!(refused(Format::Mp3, trim), "end");
        let vbr = |vbr, bitrate| AudioOptions {
            vbr: Some(vbr),
            bitrate,
            ..AudioOptions::default()
        };
        assert!(Format::Opus.check(&vbr(2, None)).is_ok());
        assert_eq!(refused(Format::Mp3, vbr(10, None)), "vbr");
        assert_eq!(refused(Format::Flac, vbr(2, None)), "vbr");
        assert_eq!(refused(Format::Aac, vbr(2, Some(128))), "vbr");
    }
}
