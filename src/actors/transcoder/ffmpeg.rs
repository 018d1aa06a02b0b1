//! Probing and converting with the system's ffprobe and ffmpeg.
//!
//! Uploads are untrusted input to a large C program. The defences, in order:
//! the probe reads a bounded amount, in a bounded time, with only a fixed
//! list of container demuxers and the `file` protocol allowed; the probed
//! file must fit the [`MediaPolicy`] (duration, streams, picture size);
//! ffmpeg is then pinned to the probed demuxer, the same lists and the first
//! audio stream, with a thread cap, and runs in a process group of its own
//! under resource limits (CPU time, file size, address space), so the
//! caller's wall-clock timeout can kill all of it. A playlist or concat list
//! disguised as a video therefore cannot make either tool read other files.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use serde::Deserialize;
use tokio::sync::watch;

use super::sandbox;
use crate::wire::{AudioOptions, Format};

/// Demuxers accepted for uploads: media containers only, no playlists,
/// concatenation lists or image sequences.
const ALLOWED_DEMUXERS: &[&str] = &[
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts", "mpeg",
    "ogg", "wav", "mp3", "flac", "aac", "asf", "aiff", "caf", "amr", "w64", "au",
];

/// What the probe may spend on one upload.
const PROBE_BYTES: &str = "20000000";
/// The same in microseconds of media.
const PROBE_MICROS: &str = "20000000";
/// Wall-clock limit of one probe.
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
    #[error("{0}")]
    Tool(String),
}

/// What the probe learned about an input.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The demuxer ffmpeg must use.
    pub demuxer: String,
    /// Duration in seconds, when the container says.
    pub duration: Option<f64>,
    /// Duration of the first audio stream, when the container says.
    pub audio_duration: Option<f64>,
}

#[derive(Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
    nb_streams: Option<usize>,
}

/// Probes `path` and decides whether it is a convertible media file within
/// the policy.
pub async fn probe(policy: &MediaPolicy, path: &Path) -> Result<Probe, MediaError> {
    let files = sandbox::Files::open(path, None)
        .map_err(|e| MediaError::Tool(format!("cannot open the upload: {e}")))?;
    let mut command = tokio::process::Command::new(&policy.ffprobe);
    command
        .args(["-v", "error", "-probesize", PROBE_BYTES])
        .args(["-analyzeduration", PROBE_MICROS])
        .args(["-format_whitelist", &ALLOWED_DEMUXERS.join(",")])
        .args(["-protocol_whitelist", "file", "-show_entries"])
        .arg("format=format_name,duration,nb_streams:stream=codec_type,width,height,duration")
        .args(["-of", "json"])
        .arg(sandbox::INPUT)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    sandbox::confine(command.as_std_mut(), policy, &files);
    let ran = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            MediaError::Rejected(format!(
                "reading the upload took longer than {} seconds",
                PROBE_TIMEOUT.as_secs()
            ))
        })?;
    let output = ran.map_err(|e| {
        MediaError::Tool(format!(
            "cannot run ffprobe ({}): {e}",
            policy.ffprobe.display()
        ))
    })?;
    if !output.status.success() {
        // ffprobe names the file it read; the user knows it as the upload.
        let detail = String::from_utf8_lossy(&output.stderr).replace(sandbox::INPUT, "upload");
        let detail = detail.lines().last().unwrap_or("unknown error").trim();
        return Err(MediaError::Rejected(format!(
            "the upload is not a readable video or audio file ({detail})"
        )));
    }
    let parsed: ProbeOutput = serde_json::from_slice(&output.stdout)
        .map_err(|e| MediaError::Tool(format!("unexpected ffprobe output: {e}")))?;
    let format = parsed.format.ok_or_else(|| {
        MediaError::Rejected("the upload is not a readable video or audio file".into())
    })?;
    let names = format.format_name.unwrap_or_default();
    let demuxer = names
        .split(',')
        .find(|name| ALLOWED_DEMUXERS.contains(name))
        .map(str::to_string)
        .ok_or_else(|| MediaError::Rejected(format!("files of type `{names}` are not accepted")))?;
    if !parsed
        .streams
        .iter()
        .any(|s| s.codec_type.as_deref() == Some("audio"))
    {
        return Err(MediaError::Rejected("the upload has no audio track".into()));
    }
    let streams = format.nb_streams.unwrap_or(parsed.streams.len());
    if streams > policy.max_streams {
        return Err(MediaError::Rejected(format!(
            "the upload has {streams} streams; at most {} are accepted",
            policy.max_streams
        )));
    }
    let seconds = |text: Option<&String>| {
        text.and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
    };
    let duration = seconds(format.duration.as_ref());
    let audio_duration = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .and_then(|s| seconds(s.duration.as_ref()));
    if let Some(seconds) = duration
        && seconds > policy.max_duration.as_secs_f64()
    {
        return Err(MediaError::Rejected(format!(
            "the upload lasts {seconds:.0} seconds; at most {} are accepted",
            policy.max_duration.as_secs()
        )));
    }
    let largest_picture = parsed
        .streams
        .iter()
        .filter_map(|s| Some(s.width?.saturating_mul(s.height?)))
        .max()
        .unwrap_or(0);
    if largest_picture > policy.max_pixels {
        return Err(MediaError::Rejected(format!(
            "the upload's picture has {largest_picture} pixels; at most {} are accepted",
            policy.max_pixels
        )));
    }
    Ok(Probe {
        demuxer,
        duration,
        audio_duration,
    })
}

/// The duration of a finished output, which must have come out whole.
pub async fn output_duration(policy: &MediaPolicy, path: &Path) -> Result<f64, MediaError> {
    let files = sandbox::Files::open(path, None)
        .map_err(|e| MediaError::Tool(format!("cannot open the output: {e}")))?;
    let mut command = tokio::process::Command::new(&policy.ffprobe);
    command
        .args(["-v", "error", "-protocol_whitelist", "file"])
        .args(["-show_entries", "format=duration", "-of", "json"])
        .arg(sandbox::INPUT)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    sandbox::confine(command.as_std_mut(), policy, &files);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(|_| MediaError::Tool("probing the output timed out".into()))?
        .map_err(|e| MediaError::Tool(format!("cannot run ffprobe: {e}")))?;
    // ffprobe ran: an output without a duration is what this input made,
    // and converting it again would make the same.
    let unreadable = || MediaError::Rejected("the conversion produced no readable audio".into());
    let parsed: ProbeOutput = serde_json::from_slice(&output.stdout).map_err(|_| unreadable())?;
    parsed
        .format
        .and_then(|f| f.duration)
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite())
        .ok_or_else(unreadable)
}

/// Encoder, bit rate, sample rate and container of an output. Options were
/// checked against the format when the job was accepted.
fn codec_args(format: Format, options: AudioOptions) -> Vec<String> {
    let (default_bitrate, default_rate) = format.defaults();
    let (codec, container, extra): (&str, &str, &[&str]) = match format {
        Format::Mp3 => ("libmp3lame", "mp3", &[]),
        // The index up front, so players can start before the download ends.
        Format::Aac => ("aac", "ipod", &["-movflags", "+faststart"]),
        Format::Opus => ("libopus", "ogg", &[]),
        Format::Flac => ("flac", "flac", &[]),
        Format::Wav => ("pcm_s16le", "wav", &[]),
    };
    let mut args: Vec<String> = vec!["-c:a".into(), codec.into()];
    if let Some(kbits) = options.bitrate.or(default_bitrate) {
        args.extend(["-b:a".into(), format!("{kbits}k")]);
    }
    if let Some(rate) = options.sample_rate.or(default_rate) {
        args.extend(["-ar".into(), rate.to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(["-f".into(), container.into()]);
    args
}

/// Progress of a running encode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Seconds of output written.
    pub seconds: f64,
    /// Encode speed as a multiple of real time.
    pub speed: f64,
}

/// A running ffmpeg process that can be stopped from another task.
pub struct Encode {
    child: Arc<Mutex<ffmpeg_sidecar::child::FfmpegChild>>,
    pid: u32,
    events: tokio::task::JoinHandle<Result<(), MediaError>>,
    pub progress: watch::Receiver<Progress>,
}

impl Encode {
    /// Starts converting `input` (already probed) to `output`.
    pub fn start(
        policy: &MediaPolicy,
        probe: &Probe,
        input: &Path,
        output: &Path,
        format: Format,
        options: AudioOptions,
    ) -> Result<Encode, MediaError> {
        let files = sandbox::Files::open(input, Some(output))
            .map_err(|e| MediaError::Tool(format!("cannot open the work files: {e}")))?;
        let whitelist = ALLOWED_DEMUXERS.join(",");
        let threads = policy.threads.max(1).to_string();
        let mut command = FfmpegCommand::new_with_path(&policy.ffmpeg);
        command
            .hide_banner()
            // Stop at the first broken packet rather than write a short file.
            .args(["-nostdin", "-xerror", "-threads", threads.as_str()])
            .args(["-protocol_whitelist", "file", "-format_whitelist"])
            .arg(&whitelist)
            .args(["-f", probe.demuxer.as_str(), "-i"])
            .arg(sandbox::INPUT)
            .args(["-map", "0:a:0", "-vn", "-sn", "-dn"])
            .args(["-threads", threads.as_str()])
            .args(codec_args(format, options))
            .arg("-y")
            .arg(sandbox::OUTPUT);
        sandbox::confine(command.as_inner_mut(), policy, &files);
        let mut child = command.spawn().map_err(|e| {
            MediaError::Tool(format!(
                "cannot run ffmpeg ({}): {e}",
                policy.ffmpeg.display()
            ))
        })?;
        let pid = child.as_inner().id();
        let limits = policy.clone();
        let iter = child
            .iter()
            .map_err(|e| MediaError::Tool(format!("cannot read ffmpeg's output: {e}")))?;
        let child = Arc::new(Mutex::new(child));
        let (tx, progress) = watch::channel(Progress::default());
        let waiter = child.clone();
        // ffmpeg-sidecar's event iterator blocks; it gets a thread of its own.
        let events = tokio::task::spawn_blocking(move || {
            let mut errors: Vec<String> = Vec::new();
            for event in iter {
                match event {
                    FfmpegEvent::Progress(p) => {
                        let _ = tx.send(Progress {
                            seconds: parse_clock(&p.time).unwrap_or(0.0),
                            speed: f64::from(p.speed),
                        });
                    }
                    FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, line)
                    | FfmpegEvent::Error(line) => {
                        errors.push(line);
                    }
                    _ => {}
                }
            }
            let status = waiter
                .lock()
                .map_err(|_| MediaError::Tool("ffmpeg handle poisoned".into()))?
                .wait()
                .map_err(|e| MediaError::Tool(format!("cannot wait for ffmpeg: {e}")))?;
            if status.success() {
                Ok(())
            } else if let Some(reason) = limit_hit(status, &limits) {
                Err(MediaError::Rejected(reason))
            } else {
                let reason = errors.last().map_or("no details", |s| s.trim());
                Err(MediaError::Rejected(format!(
                    "ffmpeg could not convert the file: {}",
                    reason.replace(sandbox::INPUT, "upload")
                )))
            }
        });
        Ok(Encode {
            child,
            pid,
            events,
            progress,
        })
    }

    /// Stops the encode at once: ffmpeg and anything it started.
    pub fn kill(&self) {
        sandbox::kill_group(self.pid);
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
        }
    }

    /// Waits for ffmpeg to exit.
    pub async fn finish(&mut self) -> Result<(), MediaError> {
        (&mut self.events)
            .await
            .map_err(|e| MediaError::Tool(format!("ffmpeg watcher failed: {e}")))?
    }
}

/// Parses ffmpeg's `HH:MM:SS.ss` clock.
fn parse_clock(clock: &str) -> Option<f64> {
    let mut seconds = 0.0;
    for part in clock.trim().split(':') {
        seconds = seconds * 60.0 + part.parse::<f64>().ok()?;
    }
    seconds.is_finite().then_some(seconds.max(0.0))
}

/// Where a job's files live while it is converted.
pub fn work_dir(root: &Path, job_id: &str) -> PathBuf {
    root.join(job_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_clocks_parse_to_seconds() {
        assert_eq!(parse_clock("00:01:02.50"), Some(62.5));
        assert_eq!(parse_clock("01:00:00.00"), Some(3600.0));
        assert_eq!(parse_clock("N/A"), None);
    }
}
