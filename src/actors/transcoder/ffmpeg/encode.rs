//! The encode: ffmpeg pinned to the probed demuxer and the first audio
//! stream, confined, with its progress reported as it goes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use tokio::sync::watch;

use super::sandbox;
use crate::wire::{AudioOptions, Format};

use super::probe::Probe;
use super::{ALLOWED_DEMUXERS, MediaError, MediaPolicy, limit_hit};

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
