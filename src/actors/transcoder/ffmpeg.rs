//! Probing and converting with the system's ffprobe and ffmpeg.
//!
//! Uploads are untrusted. The input is probed first; only a fixed list of
//! container demuxers is accepted, and ffmpeg is then pinned to the probed
//! demuxer and to the `file` protocol, so a crafted upload cannot switch to a
//! playlist or concat demuxer and read other files. Encodes are bounded in
//! time by the caller.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use serde::Deserialize;
use tokio::sync::watch;

use crate::wire::{AudioOptions, Format};

/// Demuxers accepted for uploads: media containers only, no playlists,
/// concatenation lists or image sequences.
const ALLOWED_DEMUXERS: &[&str] = &[
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts", "mpeg",
    "ogg", "wav", "mp3", "flac", "aac", "asf", "aiff", "caf", "amr", "w64", "au",
];

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
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

/// Probes `path` and decides whether it is a convertible media file.
pub async fn probe(ffprobe: &Path, path: &Path) -> Result<Probe, MediaError> {
    let output = tokio::process::Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-show_entries",
        ])
        .arg("format=format_name,duration:stream=codec_type")
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            MediaError::Tool(format!("cannot run ffprobe ({}): {e}", ffprobe.display()))
        })?;
    if !output.status.success() {
        let detail = String::from_utf8_lossy(&output.stderr);
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
    let duration = format
        .duration
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0);
    Ok(Probe { demuxer, duration })
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
    events: tokio::task::JoinHandle<Result<(), MediaError>>,
    pub progress: watch::Receiver<Progress>,
}

impl Encode {
    /// Starts converting `input` (already probed) to `output`.
    pub fn start(
        ffmpeg: &Path,
        probe: &Probe,
        input: &Path,
        output: &Path,
        format: Format,
        options: AudioOptions,
    ) -> Result<Encode, MediaError> {
        let mut command = FfmpegCommand::new_with_path(ffmpeg);
        command
            .hide_banner()
            .args([
                "-nostdin",
                "-protocol_whitelist",
                "file",
                "-f",
                probe.demuxer.as_str(),
                "-i",
            ])
            .arg(input)
            .args(["-map", "0:a:0", "-vn", "-sn", "-dn"])
            .args(codec_args(format, options))
            .arg("-y")
            .arg(output);
        let mut child = command.spawn().map_err(|e| {
            MediaError::Tool(format!("cannot run ffmpeg ({}): {e}", ffmpeg.display()))
        })?;
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
            } else {
                let reason = errors.last().map_or("no details", |s| s.trim());
                Err(MediaError::Rejected(format!(
                    "ffmpeg could not convert the file: {reason}"
                )))
            }
        });
        Ok(Encode {
            child,
            events,
            progress,
        })
    }

    /// Stops the encode at once.
    pub fn kill(&self) {
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
