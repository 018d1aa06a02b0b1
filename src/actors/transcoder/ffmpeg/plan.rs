//! What ffmpeg is asked to do for a job's output: the filters (downmix,
//! loudness), the encoder and its settings, the container; and, for a
//! normalized output, the measuring pass that comes first.

use super::loudness::{self, LOSSY_HEADROOM_DB, Measured};
use crate::audio::{AudioOptions, Format, LoudnessTarget, Normalization};

/// An output's passes. Options were checked against the format when the
/// job was accepted.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    format: Format,
    options: AudioOptions,
}

impl Plan {
    pub fn new(format: Format, options: AudioOptions) -> Plan {
        Plan { format, options }
    }

    /// The target, when the output is normalized (and so takes two passes).
    pub fn loudness(&self) -> Option<LoudnessTarget> {
        self.options.loudness.map(|l| l.target())
    }

    /// Filters that shape the audio before its level is measured or set:
    /// both passes must hear the same thing.
    fn shape(&self) -> Vec<String> {
        let layout = match self.options.channel_count() {
            Some(1) => Some("mono"),
            Some(2) => Some("stereo"),
            _ => None,
        };
        layout
            .map(|layout| format!("aformat=channel_layouts={layout}"))
            .into_iter()
            .collect()
    }

    /// The measuring pass's output arguments (its output is discarded).
    pub fn measure_args(&self, target: LoudnessTarget) -> Vec<String> {
        let mut filters = self.shape();
        filters.push(loudness::measure_filter(target));
        vec!["-af".into(), filters.join(",")]
    }

    /// The encoding pass's output arguments, with the normalizing filter
    /// the measurement calls for, if any. `input_rate` is the input's
    /// sample rate, kept by formats without a default one (`loudnorm`
    /// works at 192 kHz and would otherwise hand that on).
    pub fn encode_args(
        &self,
        measured: Option<(LoudnessTarget, Measured)>,
        input_rate: Option<u32>,
    ) -> (Vec<String>, Option<Normalization>) {
        let mut filters = self.shape();
        let mut normalization = None;
        if let Some((target, measured)) = measured {
            let headroom = if self.format.is_lossy() {
                LOSSY_HEADROOM_DB
            } else {
                0.0
            };
            let (filter, kind) = loudness::normalize_filter(target, measured, headroom);
            filters.push(filter);
            filters.push(loudness::OUTPUT_METER.into());
            normalization = Some(kind);
        }
        let mut args = Vec::new();
        if !filters.is_empty() {
            args.extend(["-af".into(), filters.join(",")]);
        }
        let rate = self.options.sample_rate.or(self.format.defaults().1);
        let rate = rate.or(input_rate.filter(|_| normalization.is_some()));
        args.extend(codec_args(self.format, self.options.bitrate, rate));
        (args, normalization)
    }
}

/// Encoder, bit rate, sample rate and container of an output.
fn codec_args(format: Format, bitrate: Option<u32>, rate: Option<u32>) -> Vec<String> {
    let (codec, container, extra): (&str, &str, &[&str]) = match format {
        Format::Mp3 => ("libmp3lame", "mp3", &[]),
        // The index up front, so players can start before the download ends.
        Format::Aac => ("aac", "ipod", &["-movflags", "+faststart"]),
        Format::Opus => ("libopus", "ogg", &[]),
        Format::Flac => ("flac", "flac", &[]),
        Format::Wav => ("pcm_s16le", "wav", &[]),
    };
    let mut args: Vec<String> = vec!["-c:a".into(), codec.into()];
    if let Some(kbits) = bitrate.or(format.defaults().0) {
        args.extend(["-b:a".into(), format!("{kbits}k")]);
    }
    if let Some(rate) = rate {
        args.extend(["-ar".into(), rate.to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(["-f".into(), container.into()]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Loudness, LoudnessPreset, LoudnessStats};

    #[test]
    fn a_plain_output_is_one_encode_with_the_format_defaults() {
        let plan = Plan::new(Format::Mp3, AudioOptions::default());
        assert_eq!(plan.loudness(), None);
        let (args, normalization) = plan.encode_args(None, Some(22050));
        assert_eq!(args.join(" "), "-c:a libmp3lame -b:a 192k -ar 44100 -f mp3");
        assert_eq!(normalization, None);
    }

    #[test]
    fn a_normalized_mono_flac_keeps_the_input_rate_and_measures_the_downmix() {
        let options = AudioOptions {
            loudness: Some(Loudness::Preset(LoudnessPreset::PodcastMono)),
            ..AudioOptions::default()
        };
        let plan = Plan::new(Format::Flac, options);
        let target = plan.loudness().unwrap();
        assert_eq!(
            plan.measure_args(target)[1],
            "aformat=channel_layouts=mono,loudnorm=I=-19:TP=-1:LRA=20:print_format=json"
        );
        let measured = Measured {
            stats: LoudnessStats {
                integrated: -25.0,
                true_peak: -12.0,
                lra: 3.0,
            },
            threshold: -35.0,
        };
        let (args, normalization) = plan.encode_args(Some((target, measured)), Some(22050));
        assert_eq!(
            args.join(" "),
            "-af aformat=channel_layouts=mono,volume=6.00dB,ebur128=peak=true:framelog=verbose \
             -c:a flac -ar 22050 -f flac"
        );
        assert_eq!(normalization, Some(Normalization::Linear));
    }
}
