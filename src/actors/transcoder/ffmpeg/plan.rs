//! What ffmpeg is asked to do for a job's output: the filters (downmix,
//! loudness), the encoder and its settings, the container; and, for a
//! normalized output, the measuring pass that comes first.

use super::chapters::{Chapter, vorbis_chapter_args};
use super::cover::{Picture, picture_block};
use super::encode::StopIf;
use super::loudness::{self, LOSSY_HEADROOM_DB, Measured};
use crate::audio::{AudioOptions, Format, LoudnessTarget, Normalization};

/// What is known by the time an output is encoded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Known<'a> {
    /// The target and the first pass's measurement, for a normalized output.
    pub measured: Option<(LoudnessTarget, Measured)>,
    /// The input's sample rate, kept by formats without a default one
    /// (`loudnorm` works at 192 kHz and would otherwise hand that on).
    pub input_rate: Option<u32>,
    /// Whether the input has a title of its own.
    pub input_titled: bool,
    /// The cover, and its JPEG's bytes where the format carries it in a
    /// tag rather than as a stream.
    pub cover: Option<(&'a Picture, &'a [u8])>,
    /// The input's chapters, for a format whose muxer does not carry them
    /// over itself.
    pub chapters: &'a [Chapter],
}

/// Largest cover an Ogg file carries: the picture travels base64-encoded
/// in a comment given on ffmpeg's command line, where one argument may be
/// at most 128 KiB.
const TAG_PICTURE_BYTES: u64 = 90 * 1024;

/// An output's passes. Options were checked against the format when the
/// job was accepted.
#[derive(Debug, Clone)]
pub struct Plan {
    format: Format,
    options: AudioOptions,
    /// The upload's file name without its extension: the title when
    /// neither the job nor the input has one.
    stem: String,
}

impl Plan {
    pub fn new(format: Format, options: AudioOptions, stem: &str) -> Plan {
        Plan {
            format,
            options,
            stem: stem.to_string(),
        }
    }

    /// Whether the output's title depends on the input having one.
    pub fn title_from_input(&self) -> bool {
        self.options.tags.title.is_none()
    }

    /// Whether a trim keeps the input's chapters out of the output.
    fn trimmed(&self) -> bool {
        self.options.start.is_some() || self.options.end.is_some()
    }

    /// Whether the output's chapters are written from [`Known::chapters`]:
    /// ffmpeg carries them over into mp3, m4a and Ogg, but its FLAC muxer
    /// writes none, so FLAC gets them as Vorbis `CHAPTERnnn` comments.
    pub fn writes_chapters(&self) -> bool {
        self.format == Format::Flac && !self.trimmed()
    }

    /// What a pass that encodes without knowing the input's description
    /// must stop for, to be run again knowing it.
    pub fn stop_if(&self) -> StopIf {
        StopIf {
            titled: self.title_from_input(),
            chaptered: self.writes_chapters(),
        }
    }

    /// The job's tags, and the file name as the title when neither the job
    /// nor the input (`input_titled`) has one. Tags the job leaves out come
    /// from the input: ffmpeg maps its global metadata to the output.
    fn tag_args(&self, input_titled: bool) -> Vec<String> {
        let mut pairs = self.options.tags.pairs();
        if self.title_from_input() && !input_titled {
            pairs.insert(0, ("title", self.stem.as_str()));
        }
        pairs
            .into_iter()
            .flat_map(|(name, value)| ["-metadata".to_string(), format!("{name}={value}")])
            .collect()
    }

    /// The target, when the output is normalized (and so takes two passes).
    pub fn loudness(&self) -> Option<LoudnessTarget> {
        self.options.loudness.map(|l| l.target())
    }

    /// Filters that shape the audio before its level is measured or set:
    /// both passes must hear the same thing. A trim cuts the decoded audio
    /// to the sample, wherever the input's keyframes are.
    fn shape(&self) -> Vec<String> {
        let mut filters = Vec::new();
        let (start, end) = (self.options.start, self.options.end);
        if start.is_some() || end.is_some() {
            let mut trim = vec![format!("start={}", start.unwrap_or(0.0))];
            trim.extend(end.map(|end| format!("end={end}")));
            filters.push(format!("atrim={},asetpts=PTS-STARTPTS", trim.join(":")));
        }
        let layout = match self.options.channel_count() {
            Some(1) => Some("mono"),
            Some(2) => Some("stereo"),
            _ => None,
        };
        filters.extend(layout.map(|layout| format!("aformat=channel_layouts={layout}")));
        filters
    }

    /// How long the output of an input lasting `input` seconds is.
    pub fn output_length(&self, input: f64) -> f64 {
        let end = self.options.end.map_or(input, |end| end.min(input));
        (end - self.options.start.unwrap_or(0.0)).max(0.0)
    }

    /// Why an input lasting `input` seconds cannot give this output.
    pub fn refusal(&self, input: f64) -> Option<String> {
        let start = self.options.start?;
        (start >= input).then(|| {
            format!("`start` ({start} s) is not before the end of the input ({input:.3} s)")
        })
    }

    /// The measuring pass's output arguments (its output is discarded).
    pub fn measure_args(&self, target: LoudnessTarget) -> Vec<String> {
        let mut filters = self.shape();
        filters.push(loudness::measure_filter(target));
        vec!["-af".into(), filters.join(",")]
    }

    /// Whether the cover goes in as a picture stream (mp3, m4a, FLAC);
    /// ffmpeg's Ogg muxer takes none, so Opus carries it in a comment.
    pub fn attaches_picture(&self) -> bool {
        self.format != Format::Opus
    }

    /// The most bytes the cover may take, if the format bounds it.
    pub fn cover_limit(&self) -> Option<u64> {
        (!self.attaches_picture()).then_some(TAG_PICTURE_BYTES)
    }

    /// The encoding pass's output arguments, with the normalizing filter
    /// the measurement calls for, if any.
    pub fn encode_args(&self, known: &Known<'_>) -> (Vec<String>, Option<Normalization>) {
        let Known {
            measured,
            input_rate,
            input_titled,
            cover,
            chapters,
        } = *known;
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
        args.extend(codec_args(self.format, self.quality(), rate));
        let chapters = chapters.iter().filter(|_| self.writes_chapters());
        // ffmpeg keeps an output's tags in a list where setting a key the
        // list holds moves its last entry into the freed place, and ffmpeg's
        // own FLAC reader takes a CHAPTERnnnNAME only after its CHAPTERnnn.
        // So the chapters come after the job's tags, and the one tag ffmpeg
        // sets after all of them, `encoder`, is taken out before.
        if chapters.clone().next().is_some() {
            args.extend(["-metadata".to_string(), "encoder=".to_string()]);
        }
        args.extend(self.tag_args(input_titled));
        // ffmpeg carries the input's chapters over as they are; the trim
        // filter does not move them, so a trimmed output carries none
        // rather than chapters at the wrong times.
        if self.trimmed() {
            args.extend(["-map_chapters".to_string(), "-1".to_string()]);
        }
        args.extend(vorbis_chapter_args(chapters));
        if let Some((picture, jpeg)) = cover.filter(|_| !self.attaches_picture()) {
            args.extend([
                "-metadata".to_string(),
                format!("METADATA_BLOCK_PICTURE={}", picture_block(picture, jpeg)),
            ]);
        }
        (args, normalization)
    }
}

impl Plan {
    /// The encoder's rate control: a constant (average) bit rate, or a
    /// variable one at a quality level.
    fn quality(&self) -> Quality {
        match (self.options.vbr, self.options.bitrate) {
            (Some(level), _) => Quality::Variable(level.min(9)),
            (None, Some(kbits)) => Quality::Bitrate(kbits),
            (None, None) => self
                .format
                .defaults()
                .0
                .map_or(Quality::Lossless, Quality::Bitrate),
        }
    }
}

/// How an encoder spends bits.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Quality {
    Bitrate(u32),
    /// 0 (best) to 9 (smallest).
    Variable(u8),
    Lossless,
}

/// What a variable-quality level means per encoder: LAME's own `-V`
/// scale; the native AAC encoder's VBR quality, 2.0 down to 0.2; and for
/// Opus, which is always variable, the target it varies around.
fn quality_args(format: Format, quality: Quality) -> Vec<String> {
    const OPUS_KBITS: [u32; 10] = [160, 128, 112, 96, 80, 64, 56, 48, 40, 32];
    match (quality, format) {
        (Quality::Bitrate(kbits), _) => vec!["-b:a".into(), format!("{kbits}k")],
        (Quality::Variable(level), Format::Mp3) => vec!["-q:a".into(), level.to_string()],
        (Quality::Variable(level), Format::Aac) => {
            let q = 2.0 - f64::from(level) * 0.2;
            vec!["-q:a".into(), format!("{q:.1}")]
        }
        (Quality::Variable(level), Format::Opus) => vec![
            "-vbr".into(),
            "on".into(),
            "-b:a".into(),
            format!("{}k", OPUS_KBITS[usize::from(level.min(9))]),
        ],
        (Quality::Variable(_) | Quality::Lossless, _) => Vec::new(),
    }
}

/// Encoder, rate control, sample rate and container of an output.
fn codec_args(format: Format, quality: Quality, rate: Option<u32>) -> Vec<String> {
    let (codec, container, extra): (&str, &str, &[&str]) = match format {
        Format::Mp3 => ("libmp3lame", "mp3", &[]),
        // The index up front, so players can start before the download ends.
        Format::Aac => ("aac", "ipod", &["-movflags", "+faststart"]),
        Format::Opus => ("libopus", "ogg", &[]),
        Format::Flac => ("flac", "flac", &[]),
        Format::Wav => ("pcm_s16le", "wav", &[]),
    };
    let mut args: Vec<String> = vec!["-c:a".into(), codec.into()];
    args.extend(quality_args(format, quality));
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
        let plan = Plan::new(Format::Mp3, AudioOptions::default(), "talk");
        assert_eq!(plan.loudness(), None);
        let (args, normalization) = plan.encode_args(&Known {
            input_rate: Some(22050),
            ..Known::default()
        });
        assert_eq!(
            args.join(" "),
            "-c:a libmp3lame -b:a 192k -ar 44100 -f mp3 -metadata title=talk"
        );
        assert_eq!(normalization, None);
        let (args, _) = plan.encode_args(&Known {
            input_rate: Some(22050),
            input_titled: true,
            ..Known::default()
        });
        assert!(!args.contains(&"-metadata".to_string()), "{args:?}");
    }

    #[test]
    fn a_normalized_mono_flac_keeps_the_input_rate_and_measures_the_downmix() {
        let options = AudioOptions {
            loudness: Some(Loudness::Preset(LoudnessPreset::PodcastMono)),
            ..AudioOptions::default()
        };
        let mut options = options;
        options.tags.set("artist", "Ann").unwrap();
        let plan = Plan::new(Format::Flac, options, "talk");
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
        let (args, normalization) = plan.encode_args(&Known {
            measured: Some((target, measured)),
            input_rate: Some(22050),
            input_titled: true,
            ..Known::default()
        });
        assert_eq!(
            args.join(" "),
            "-af aformat=channel_layouts=mono,volume=6.00dB,ebur128=peak=true:framelog=verbose \
             -c:a flac -ar 22050 -f flac -metadata artist=Ann"
        );
        assert_eq!(normalization, Some(Normalization::Linear));
    }

    #[test]
    fn flac_writes_the_chapters_after_the_tags_and_a_trimmed_one_none() {
        let chapters = [
            Chapter {
                start: 0.0,
                end: 2.0,
                title: Some("Intro".into()),
            },
            Chapter {
                start: 2.0,
                end: 5.0,
                title: None,
            },
        ];
        let known = Known {
            chapters: &chapters,
            ..Known::default()
        };
        let plan = Plan::new(Format::Flac, AudioOptions::default(), "talk");
        assert_eq!(
            plan.encode_args(&known).0.join(" "),
            "-c:a flac -f flac -metadata encoder= -metadata title=talk \
             -metadata CHAPTER000=00:00:00.000 -metadata CHAPTER000NAME=Intro \
             -metadata CHAPTER001=00:00:02.000"
        );
        let trimmed = AudioOptions {
            start: Some(1.0),
            ..AudioOptions::default()
        };
        let args = Plan::new(Format::Flac, trimmed, "talk")
            .encode_args(&known)
            .0;
        assert!(!args.join(" ").contains("CHAPTER"), "{args:?}");
        let mp3 = Plan::new(Format::Mp3, AudioOptions::default(), "talk");
        assert!(!mp3.encode_args(&known).0.join(" ").contains("CHAPTER"));
    }

    #[test]
    fn a_trim_cuts_before_the_downmix_and_vbr_replaces_the_bitrate() {
        let options = AudioOptions {
            start: Some(1.5),
            end: Some(4.0),
            channels: Some(1),
            vbr: Some(2),
            ..AudioOptions::default()
        };
        let plan = Plan::new(Format::Mp3, options.clone(), "talk");
        let (args, _) = plan.encode_args(&Known {
            input_titled: true,
            ..Known::default()
        });
        assert_eq!(
            args.join(" "),
            "-af atrim=start=1.5:end=4,asetpts=PTS-STARTPTS,aformat=channel_layouts=mono \
             -c:a libmp3lame -q:a 2 -ar 44100 -f mp3 -map_chapters -1"
        );
        assert_eq!(plan.output_length(10.0), 2.5);
        assert_eq!(plan.output_length(3.0), 1.5);
        assert!(plan.refusal(1.5).unwrap().contains("`start`"));
        assert_eq!(plan.refusal(1.6), None);
        let opus = Plan::new(Format::Opus, options, "talk");
        let known = Known {
            input_titled: true,
            ..Known::default()
        };
        let args = opus.encode_args(&known).0.join(" ");
        assert!(args.contains("-vbr on -b:a 112k"), "{args}");
    }
}
