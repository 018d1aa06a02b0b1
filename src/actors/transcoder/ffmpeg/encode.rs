//! One ffmpeg pass: ffmpeg reading the upload within the probe's bounds,
//! the first audio stream only, confined, its input report checked against
//! the media policy and its progress reported as it goes. A pass either
//! writes the output or only measures (its filters' reports are kept).

use std::path::Path;
use std::sync::{Arc, Mutex};

use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use tokio::sync::watch;

use super::sandbox;

use super::chapters::Chapters;
use super::report::{InputReport, StreamKind};
use super::{
    ALLOWED_DEMUXERS, MediaError, MediaPolicy, PROBE_BYTES, PROBE_MICROS, limit_hit, tool,
};

/// Progress of a running encode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Seconds of output written.
    pub seconds: f64,
    /// Encode speed as a multiple of real time.
    pub speed: f64,
    /// The input's duration in seconds, once ffmpeg has said and if the
    /// container knows.
    pub total: Option<f64>,
}

/// A running ffmpeg process that can be stopped from another task.
pub struct Encode {
    child: Arc<Mutex<ffmpeg_sidecar::child::FfmpegChild>>,
    pid: u32,
    events: tokio::task::JoinHandle<Result<Finished, MediaError>>,
    pub progress: watch::Receiver<Progress>,
}

/// What a pass that ended well says besides its output.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The last lines ffmpeg logged after describing its input, without
    /// their level prefix: where filters such as `loudnorm` report.
    pub lines: Vec<String>,
    /// The sample rate of the input's first audio stream, if ffmpeg said.
    pub input_rate: Option<u32>,
    /// Whether the input's container has a title of its own.
    pub input_titled: bool,
    /// The input's chapters.
    pub chapters: Chapters,
    /// Whether the pass was stopped as soon as the input turned out to
    /// have what [`Pass::stop_if`] names: it wrote nothing worth keeping,
    /// and is to be run again knowing it.
    pub stopped_early: bool,
}

/// How many of a pass's last log lines are kept: enough for a filter's
/// summary, never the whole log of a long input.
const KEPT_LINES: usize = 64;

/// What ffmpeg reads.
pub enum Input<'a> {
    /// A complete file: ffmpeg may seek in it.
    File(&'a Path),
    /// The read end of a pipe another task writes the upload into as it
    /// arrives, for containers read front to back.
    Pipe(std::io::PipeReader),
}

/// What one pass is asked to do.
pub struct Pass<'a> {
    pub input: Input<'a>,
    /// Where the output goes; without one, the pass only runs the filters.
    pub output: Option<&'a Path>,
    /// The output's arguments (filters, encoder, container, tags).
    pub args: &'a [String],
    /// A JPEG to attach to the output as its cover.
    pub picture: Option<&'a Path>,
    /// Where in the input to start, in seconds: ffmpeg seeks there and
    /// decodes from the exact sample on.
    pub seek: Option<f64>,
    /// What in the input's description stops the pass before it decodes,
    /// because `args` were made without knowing it.
    pub stop_if: StopIf,
}

/// What stops a pass as soon as ffmpeg has described its input.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopIf {
    /// The input has a title of its own (`args` gave another title).
    pub titled: bool,
    /// The input has chapters (`args` wrote none).
    pub chaptered: bool,
}

impl Encode {
    /// Starts a pass.
    pub fn start(policy: &MediaPolicy, pass: Pass<'_>) -> Result<Encode, MediaError> {
        let Pass {
            input,
            output,
            args,
            picture,
            seek,
            stop_if,
        } = pass;
        let (files, source, protocol) = match input {
            Input::File(path) => (sandbox::Files::open(path, output), sandbox::INPUT, "file"),
            Input::Pipe(pipe) => (
                sandbox::Files::piped(pipe, output),
                sandbox::INPUT_PIPE,
                "pipe",
            ),
        };
        let mut files = files.map_err(tool("open the work files"))?;
        if let Some(picture) = picture {
            files = files
                .with_picture(picture)
                .map_err(tool("open the cover"))?;
        }
        let whitelist = ALLOWED_DEMUXERS.join(",");
        let threads = policy.threads.max(1).to_string();
        let mut command = FfmpegCommand::new_with_path(&policy.ffmpeg);
        command
            .hide_banner()
            // Stop at the first broken packet rather than write a short file.
            .args(["-nostdin", "-xerror", "-threads", threads.as_str()])
            .args(["-probesize", PROBE_BYTES, "-analyzeduration", PROBE_MICROS])
            .args(["-protocol_whitelist", protocol, "-format_whitelist"])
            .arg(&whitelist);
        if let Some(seconds) = seek {
            command.arg("-ss").arg(format!("{seconds:.6}"));
        }
        command.arg("-i").arg(source);
        match picture {
            // The cover goes in as a second stream, shown as the file's
            // picture rather than played.
            Some(_) => command
                .args(["-f", "jpeg_pipe", "-protocol_whitelist", "file"])
                .args(["-format_whitelist", "jpeg_pipe", "-i", sandbox::PICTURE])
                .args(["-map", "0:a:0", "-map", "1:v:0", "-c:v", "copy"])
                .args(["-disposition:v:0", "attached_pic", "-sn", "-dn"]),
            None => command.args(["-map", "0:a:0", "-vn", "-sn", "-dn"]),
        };
        command.args(["-threads", threads.as_str()]).args(args);
        match output {
            Some(_) => command.arg("-y").arg(sandbox::OUTPUT),
            // The null muxer opens no file at all.
            None => command.args(["-f", "null", "-"]),
        };
        sandbox::confine(command.as_inner_mut(), policy, &files);
        let mut child = command
            .spawn()
            .map_err(tool(format!("run ffmpeg ({})", policy.ffmpeg.display())))?;
        let pid = child.as_inner().id();
        let limits = policy.clone();
        let iter = child.iter().map_err(tool("read ffmpeg's output"))?;
        let child = Arc::new(Mutex::new(child));
        let (tx, progress) = watch::channel(Progress::default());
        let waiter = child.clone();
        // ffmpeg-sidecar's event iterator blocks; it gets a thread of its own.
        let events = tokio::task::spawn_blocking(move || {
            let mut last_error: Option<String> = None;
            let mut report = InputReport::default();
            let mut describing = false;
            let mut judged = false;
            let mut progress = Progress::default();
            let mut too_long = false;
            let mut finished = Finished::default();
            let mut lines = std::collections::VecDeque::with_capacity(KEPT_LINES);
            for event in iter {
                let ends_dump = ends_input_dump(&event);
                match event {
                    FfmpegEvent::ParsedInput(_) => {
                        report.opened = true;
                        describing = true;
                    }
                    // Only the upload is judged and timed: a cover picture,
                    // the second input, is ffmpeg's own JPEG.
                    FfmpegEvent::ParsedDuration(d) if describing && d.input_index == 0 => {
                        report.past_tags = true;
                        report.duration = Some(d.duration).filter(|d| d.is_finite() && *d > 0.0);
                        progress.total = report.duration;
                        // Known before a sample is decoded: a trim past the
                        // end is refused at once.
                        let _ = tx.send(progress);
                    }
                    FfmpegEvent::ParsedInputStream(stream)
                        if describing && stream.parent_index == 0 =>
                    {
                        report.past_tags = true;
                        report.chapters.streams_begin();
                        report.streams.push(stream_kind(&stream));
                        if let ffmpeg_sidecar::event::StreamTypeSpecificData::Audio(audio) =
                            &stream.type_specific_data
                        {
                            finished.input_rate.get_or_insert(audio.sample_rate);
                        }
                    }
                    FfmpegEvent::Log(LogLevel::Info, line) if describing => {
                        report.unparsed_line(&line);
                    }
                    // A filter's report of several lines has the level
                    // prefix on its first line only.
                    FfmpegEvent::Log(LogLevel::Info | LogLevel::Unknown, line) => {
                        if lines.len() == KEPT_LINES {
                            lines.pop_front();
                        }
                        let line = line.strip_prefix("[info]").unwrap_or(&line);
                        lines.push_back(line.trim_end().to_string());
                    }
                    FfmpegEvent::Progress(p) => {
                        progress.seconds = parse_clock(&p.time).unwrap_or(0.0);
                        progress.speed = f64::from(p.speed);
                        let _ = tx.send(progress);
                        // A container that does not say how long it lasts
                        // (a stream read from a pipe) is held to the limit
                        // as its audio is written.
                        if progress.seconds > limits.max_duration.as_secs_f64() && !too_long {
                            too_long = true;
                            sandbox::kill_group(pid);
                        }
                    }
                    FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, line)
                    | FfmpegEvent::Error(line) => {
                        last_error = Some(line);
                    }
                    _ => {}
                }
                // The input dump ends where the stream mapping, the output
                // or an error begins: that is the moment to judge it, before
                // ffmpeg has decoded more than its probe.
                if describing && ends_dump {
                    describing = false;
                }
                if !describing && report.opened && !judged {
                    judged = true;
                    finished.input_titled = report.titled;
                    finished.chapters = report.chapters.clone();
                    let chaptered = !report.chapters.list.is_empty();
                    if report.check(&limits, true).is_err() {
                        sandbox::kill_group(pid);
                    } else if stop_if.titled && report.titled || stop_if.chaptered && chaptered {
                        finished.stopped_early = true;
                        sandbox::kill_group(pid);
                    }
                }
            }
            let status = waiter
                .lock()
                .map_err(|_| tool("wait for ffmpeg")("its handle was poisoned"))?
                .wait()
                .map_err(tool("wait for ffmpeg"))?;
            if report.opened {
                report.check(&limits, true)?;
            }
            if finished.stopped_early {
                return Ok(finished);
            }
            if too_long {
                return Err(MediaError::Rejected(format!(
                    "the upload lasts more than {} seconds, the most accepted",
                    limits.max_duration.as_secs()
                )));
            }
            let reason = || {
                let reason = last_error.as_deref().map_or("no details", str::trim);
                // ffmpeg-sidecar asks for level prefixes; the user needs none.
                let reason = ["[error]", "[fatal]"]
                    .iter()
                    .find_map(|level| reason.strip_prefix(level))
                    .unwrap_or(reason)
                    .trim();
                reason.replace(source, "upload")
            };
            if status.success() {
                finished.lines = lines.into();
                Ok(finished)
            } else if let Some(reason) = limit_hit(status, &limits) {
                Err(MediaError::Rejected(reason))
            } else if !report.opened {
                Err(MediaError::Rejected(format!(
                    "the upload is not a readable video or audio file ({})",
                    reason()
                )))
            } else {
                Err(MediaError::Rejected(format!(
                    "ffmpeg could not convert the file: {}",
                    reason()
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
    pub async fn finish(&mut self) -> Result<Finished, MediaError> {
        (&mut self.events).await.map_err(tool("watch ffmpeg"))?
    }
}

/// Whether `event` comes after ffmpeg's description of its input.
fn ends_input_dump(event: &FfmpegEvent) -> bool {
    matches!(
        event,
        FfmpegEvent::ParsedStreamMapping(_)
            | FfmpegEvent::ParsedOutput(_)
            | FfmpegEvent::Progress(_)
            | FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, _)
            | FfmpegEvent::Error(_)
            | FfmpegEvent::LogEOF
            | FfmpegEvent::Done
    )
}

/// What the policy needs to know of a stream ffmpeg-sidecar parsed.
fn stream_kind(stream: &ffmpeg_sidecar::event::Stream) -> StreamKind {
    use ffmpeg_sidecar::event::StreamTypeSpecificData as Data;
    match &stream.type_specific_data {
        Data::Audio(_) => StreamKind::Audio,
        Data::Video(video) => StreamKind::Video {
            pixels: u64::from(video.width) * u64::from(video.height),
        },
        Data::Subtitle() | Data::Other() => StreamKind::Other,
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
