//! The transcoder's settings: encodes at once, the drain, and the limits
//! ffprobe and ffmpeg run under.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::duration::parse_duration;
use crate::actors::transcoder::ffmpeg::MediaPolicy;

/// What the transcoder alone reads.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Transcoder")]
pub struct TranscoderSettings {
    /// Concurrent encodes. Default: the number of cores.
    #[arg(long, env = "MEDIAJET_TRANSCODERS")]
    pub transcoders: Option<usize>,

    /// How long a stopping transcoder lets in-flight encodes run before it
    /// hands them back to the queue (`30s`, `2m`, or seconds).
    #[arg(long, env = "MEDIAJET_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Longest input an encode may take, after which it is stopped and failed.
    #[arg(long, env = "MEDIAJET_ENCODE_TIMEOUT", default_value = "2h", value_parser = parse_duration)]
    pub encode_timeout: Duration,

    /// Longest input accepted (`6h`, `90m`, or seconds); a longer one fails
    /// its job at once.
    #[arg(long, env = "MEDIAJET_MAX_INPUT_DURATION", default_value = "6h", value_parser = parse_duration)]
    pub max_input_duration: Duration,

    /// Most streams an input may have.
    #[arg(long, env = "MEDIAJET_MAX_STREAMS", default_value_t = 16)]
    pub max_streams: usize,

    /// Largest video picture of an input, in pixels (default 8K UHD).
    #[arg(long, env = "MEDIAJET_MAX_VIDEO_PIXELS", default_value_t = 7680 * 4320)]
    pub max_video_pixels: u64,

    /// Largest output file an encode may write, in bytes.
    #[arg(long, env = "MEDIAJET_MAX_OUTPUT_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_output_bytes: u64,

    /// Threads of one ffmpeg.
    #[arg(long, env = "MEDIAJET_FFMPEG_THREADS", default_value_t = 2)]
    pub ffmpeg_threads: u32,

    /// Address space of one ffmpeg or ffprobe, in bytes.
    #[arg(long, env = "MEDIAJET_FFMPEG_MEMORY_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub ffmpeg_memory_bytes: u64,

    /// The ffmpeg binary.
    #[arg(long, env = "MEDIAJET_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// The ffprobe binary.
    #[arg(long, env = "MEDIAJET_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,
}

impl TranscoderSettings {
    /// The tools and limits for converting untrusted uploads.
    pub fn media_policy(&self) -> MediaPolicy {
        MediaPolicy {
            ffmpeg: self.ffmpeg.clone(),
            ffprobe: self.ffprobe.clone(),
            max_duration: self.max_input_duration,
            max_streams: self.max_streams,
            max_pixels: self.max_video_pixels,
            max_output_bytes: self.max_output_bytes,
            threads: self.ffmpeg_threads,
            memory_bytes: self.ffmpeg_memory_bytes,
            encode_timeout: self.encode_timeout,
        }
    }

    /// The number of concurrent encodes this process runs.
    pub fn transcode_slots(&self) -> usize {
        self.transcoders
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}
