//! Loudness normalization as a job asks for it: a platform's preset or an
//! explicit target, checked against the ranges ffmpeg's `loudnorm` filter
//! and common sense allow; and the statistics a finished job reports.

use serde::{Deserialize, Serialize};

/// Loudness a job's audio is normalized to: a preset's name, or a target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Loudness {
    Preset(LoudnessPreset),
    Target(LoudnessTarget),
}

/// The targets platforms publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoudnessPreset {
    /// −16 LUFS, −1 dBTP: Apple Podcasts, Spotify podcasts and most apps.
    Podcast,
    /// −19 LUFS, −1 dBTP: the mono podcast target; the audio is downmixed
    /// to one channel unless `channels` says otherwise.
    PodcastMono,
    /// −14 LUFS, −1 dBTP: music streaming (Spotify, YouTube, Tidal).
    Streaming,
    /// −23 LUFS, −1 dBTP: European broadcast (EBU R 128).
    EbuR128,
    /// −24 LUFS, −2 dBTP: US broadcast (ATSC A/85).
    AtscA85,
}

pub const PRESETS: [LoudnessPreset; 5] = [
    LoudnessPreset::Podcast,
    LoudnessPreset::PodcastMono,
    LoudnessPreset::Streaming,
    LoudnessPreset::EbuR128,
    LoudnessPreset::AtscA85,
];

/// An explicit target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoudnessTarget {
    /// Integrated loudness in LUFS, −40 to −5.
    pub integrated: f64,
    /// Highest true peak in dBTP, −9 to 0 (default −1).
    #[serde(default = "default_true_peak")]
    pub true_peak: f64,
    /// Largest loudness range in LU, 1 to 50 (default 20). Audio with a
    /// wider range is compressed rather than only turned up or down.
    #[serde(default = "default_lra")]
    pub lra: f64,
}

fn default_true_peak() -> f64 {
    -1.0
}

/// Wide enough that speech and most music keep their dynamics: only the
/// gain changes.
fn default_lra() -> f64 {
    20.0
}

const INTEGRATED: (f64, f64) = (-40.0, -5.0);
const TRUE_PEAK: (f64, f64) = (-9.0, 0.0);
const LRA: (f64, f64) = (1.0, 50.0);

impl LoudnessPreset {
    pub fn name(self) -> &'static str {
        match self {
            LoudnessPreset::Podcast => "podcast",
            LoudnessPreset::PodcastMono => "podcast-mono",
            LoudnessPreset::Streaming => "streaming",
            LoudnessPreset::EbuR128 => "ebu-r128",
            LoudnessPreset::AtscA85 => "atsc-a85",
        }
    }

    pub fn target(self) -> LoudnessTarget {
        let (integrated, true_peak) = match self {
            LoudnessPreset::Podcast => (-16.0, -1.0),
            LoudnessPreset::PodcastMono => (-19.0, -1.0),
            LoudnessPreset::Streaming => (-14.0, -1.0),
            LoudnessPreset::EbuR128 => (-23.0, -1.0),
            LoudnessPreset::AtscA85 => (-24.0, -2.0),
        };
        LoudnessTarget {
            integrated,
            true_peak,
            lra: default_lra(),
        }
    }
}

impl Loudness {
    /// Reads a form field or metadata value: a preset's name, or a target
    /// as a JSON object.
    pub fn parse(text: &str) -> Result<Loudness, String> {
        let text = text.trim();
        if text.starts_with('{') {
            let target: LoudnessTarget = serde_json::from_str(text).map_err(|err| {
                format!(
                    "`loudness` is not a target {{\"integrated\", \"true_peak\", \"lra\"}}: {err}"
                )
            })?;
            return Ok(Loudness::Target(target));
        }
        let name = text.to_ascii_lowercase();
        PRESETS
            .into_iter()
            .find(|preset| preset.name() == name)
            .map(Loudness::Preset)
            .ok_or_else(|| {
                let asked: String = text.chars().take(32).collect();
                let names: Vec<&str> = PRESETS.iter().map(|p| p.name()).collect();
                format!(
                    "unknown loudness preset `{asked}`; use one of {}, or a target {{\"integrated\": -18, \"true_peak\": -1.5, \"lra\": 11}}",
                    names.join(", ")
                )
            })
    }

    pub fn target(self) -> LoudnessTarget {
        match self {
            Loudness::Preset(preset) => preset.target(),
            Loudness::Target(target) => target,
        }
    }

    /// The channel count the preset implies, if any.
    pub fn channels(self) -> Option<u8> {
        (self == Loudness::Preset(LoudnessPreset::PodcastMono)).then_some(1)
    }

    /// Checks an explicit target against the ranges allowed.
    pub fn check(self) -> Result<(), String> {
        let target = self.target();
        let within = |value: f64, (low, high): (f64, f64)| (low..=high).contains(&value);
        if !within(target.integrated, INTEGRATED) {
            return Err(format!(
                "`loudness.integrated` must be {} to {} LUFS",
                INTEGRATED.0, INTEGRATED.1
            ));
        }
        if !within(target.true_peak, TRUE_PEAK) {
            return Err(format!(
                "`loudness.true_peak` must be {} to {} dBTP",
                TRUE_PEAK.0, TRUE_PEAK.1
            ));
        }
        if !within(target.lra, LRA) {
            return Err(format!("`loudness.lra` must be {} to {} LU", LRA.0, LRA.1));
        }
        Ok(())
    }
}

/// Loudness of a stretch of audio, after ITU-R BS.1770 (EBU R 128).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoudnessStats {
    /// Integrated loudness, LUFS.
    pub integrated: f64,
    /// True peak, dBTP.
    pub true_peak: f64,
    /// Loudness range, LU.
    pub lra: f64,
}

/// How the audio was brought to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// One gain for the whole file: the dynamics are untouched.
    Linear,
    /// The peaks or the range did not fit the target: ffmpeg's `loudnorm`
    /// turned the gain up and down as it went, with a true-peak limiter.
    Dynamic,
}

/// A normalized output's audio statistics: the input as measured, the
/// output as it went to the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoudnessReport {
    pub target: LoudnessTarget,
    pub input: LoudnessStats,
    pub output: LoudnessStats,
    pub normalization: Normalization,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_targets_parse_and_out_of_range_targets_are_refused() {
        assert_eq!(
            Loudness::parse(" Podcast").unwrap().target().integrated,
            -16.0
        );
        assert_eq!(Loudness::parse("podcast-mono").unwrap().channels(), Some(1));
        let target =
            Loudness::parse(r#"{"integrated": -18, "true_peak": -1.5, "lra": 11}"#).unwrap();
        assert_eq!(target.target().lra, 11.0);
        assert!(target.check().is_ok());
        let quiet = Loudness::parse(r#"{"integrated": -60}"#).unwrap();
        assert!(quiet.check().unwrap_err().contains("integrated"));
        let peak = Loudness::parse(r#"{"integrated": -16, "true_peak": 2}"#).unwrap();
        assert!(peak.check().unwrap_err().contains("true_peak"));
        assert!(Loudness::parse("loud").unwrap_err().contains("podcast"));
        assert!(Loudness::parse(r#"{"integrated": -16, "gain": 3}"#).is_err());
    }
}
