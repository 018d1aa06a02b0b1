//! Converting with the system's ffmpeg, one process per job.
//!
//! Uploads are untrusted input to a large C program. The defences, in order:
//! ffmpeg reads a bounded amount to learn the input's layout, with only a
//! fixed list of container demuxers and the `file` protocol allowed; the
//! layout it reports must fit the [`MediaPolicy`] (duration, streams,
//! picture size), or the process is killed before it decodes further; it
//! maps the first audio stream only, with a thread cap, in a process group
//! of its own under resource limits (CPU time, file size, address space),
//! so the caller's wall-clock timeout can kill all of it. A playlist or
//! concat list disguised as a video therefore cannot make it read other
//! files.
//!
//! - `chapters`: the input's chapters, as FLAC comments and as the tracks
//!   of a split output
//! - `cover`: cover pictures, made from a frame or an uploaded picture
//! - `plan`: the passes an output takes, and their filters and encoder
//! - `loudness`: the measuring and normalizing filters, and their reports
//! - `encode`: one confined ffmpeg pass, its input report and its progress
//! - `report`: the media policy, checked on that report
//! - `probe`: ffprobe for the rare questions the report leaves open
//! - `waveform`: the peaks and the picture of a job's audio

mod chapters;
mod cover;
mod encode;
mod loudness;
mod plan;
mod probe;
mod report;
mod waveform;

pub use chapters::{Chapter, Chapters, MAX_CHAPTERS, Span, spans};
pub use cover::{Picture, Source as CoverSource, make_cover, picture_block};
pub use encode::{Encode, Finished, Input, Pass, Progress, StopIf};
pub use loudness::{parse_measurement, parse_output};
pub use plan::{Known, Plan};
pub use probe::{audio_duration, output_duration};
pub use waveform::{PICTURE_SIZE, make_waveform};

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::sandbox;
use crate::error::BoxError;

/// Demuxers accepted for uploads: media containers only, no playlists,
/// concatenation lists or image sequences.
const ALLOWED_DEMUXERS: &[&str] = &[
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts", "mpeg",
    "ogg", "wav", "mp3", "flac", "aac", "asf", "aiff", "caf", "amr", "w64", "au",
];

/// What ffmpeg may read of an upload to learn its layout.
const PROBE_BYTES: &str = "20000000";
/// The same in microseconds of media.
const PROBE_MICROS: &str = "20000000";
/// Wall-clock limit of one ffprobe run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The tools and the limits under which they run on untrusted uploads.
#[derive(Debug, Clone)]
pub struct MediaPolicy {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Longest input accepted.
    pub max_duration: Duration,
    /// Most streams (audio, video, subtitles, data) an input may have.
    pub max_streams: usize,
    /// Largest picture (width × height) of a video stream.
    pub max_pixels: u64,
    /// Largest output file ffmpeg may write.
    pub max_output_bytes: u64,
    /// Threads one ffmpeg may use.
    pub threads: u32,
    /// Address space of one ffmpeg or ffprobe process.
    pub memory_bytes: u64,
    /// Wall-clock limit of one encode; CPU time is limited to this times
    /// the thread cap.
    pub encode_timeout: Duration,
}

/// Why a confined tool died, when a resource limit killed it.
fn limit_hit(status: std::process::ExitStatus, policy: &MediaPolicy) -> Option<String> {
    match status.signal()? {
        libc::SIGXFSZ => Some(format!(
            "the output would be larger than the limit of {} bytes",
            policy.max_output_bytes
        )),
        libc::SIGXCPU => Some("the conversion used more CPU time than allowed".to_string()),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The upload is not something we convert: the user's fault, not retried.
    #[error("{0}")]
    Rejected(String),
    /// ffmpeg or ffprobe could not be run, or failed for reasons of its own.
    #[error("cannot {context}")]
    Tool {
        context: String,
        #[source]
        source: BoxError,
    },
}

/// The failure of a tool to `context` (a verb phrase: "run ffprobe").
fn tool<E: Into<BoxError>>(context: impl Into<String>) -> impl FnOnce(E) -> MediaError {
    move |err| MediaError::Tool {
        context: context.into(),
        source: err.into(),
    }
}

/// Where a job's files live while it is converted.
pub fn work_dir(root: &Path, job_id: &str) -> PathBuf {
    root.join(job_id)
}
