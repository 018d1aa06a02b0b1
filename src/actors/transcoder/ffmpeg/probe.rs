//! ffprobe, for the two questions ffmpeg's own report leaves open: how long
//! an input's audio stream is, and how long a finished output is. Both are
//! asked rarely; the media policy is checked on ffmpeg's report instead.

use std::path::Path;
use std::process::Stdio;

use serde::Deserialize;

use super::sandbox;

use super::{
    ALLOWED_DEMUXERS, MediaError, MediaPolicy, PROBE_BYTES, PROBE_MICROS, PROBE_TIMEOUT, tool,
};

#[derive(Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

/// The duration of the input's first audio stream, when its container
/// says. Asked only when an encode came out shorter than the container's
/// duration, to tell a damaged file from one whose sound ends before its
/// picture does.
pub async fn audio_duration(policy: &MediaPolicy, path: &Path) -> Result<Option<f64>, MediaError> {
    let files = sandbox::Files::open(path, None).map_err(tool("open the upload"))?;
    let demuxers = ALLOWED_DEMUXERS.join(",");
    let args = [
        "-probesize",
        PROBE_BYTES,
        "-analyzeduration",
        PROBE_MICROS,
        "-format_whitelist",
        &demuxers,
        "-protocol_whitelist",
        "file",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=duration",
        "-of",
        "json",
    ];
    let output = ffprobe(policy, &files, &args, "probe the upload").await?;
    let parsed: ProbeOutput =
        serde_json::from_slice(&output.stdout).map_err(tool("read ffprobe's output"))?;
    Ok(parsed
        .streams
        .first()
        .and_then(|s| seconds(s.duration.as_deref())))
}

/// Runs the confined ffprobe with `args` on the file `files` holds, for
/// `PROBE_TIMEOUT` at most (`what` names the step that timed out).
pub(super) async fn ffprobe(
    policy: &MediaPolicy,
    files: &sandbox::Files,
    args: &[&str],
    what: &'static str,
) -> Result<std::process::Output, MediaError> {
    let mut command = tokio::process::Command::new(&policy.ffprobe);
    command
        .args(["-v", "error"])
        .args(args)
        .arg(sandbox::INPUT)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    sandbox::confine(command.as_std_mut(), policy, files);
    tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(tool(what))?
        .map_err(tool(format!("run ffprobe ({})", policy.ffprobe.display())))
}

fn seconds(text: Option<&str>) -> Option<f64> {
    text.and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
}

/// The duration of a finished output, which must have come out whole.
pub async fn output_duration(policy: &MediaPolicy, path: &Path) -> Result<f64, MediaError> {
    let files = sandbox::Files::open(path, None).map_err(tool("open the output"))?;
    let args = [
        "-protocol_whitelist",
        "file",
        "-show_entries",
        "format=duration",
        "-of",
        "json",
    ];
    let output = ffprobe(policy, &files, &args, "probe the output").await?;
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
