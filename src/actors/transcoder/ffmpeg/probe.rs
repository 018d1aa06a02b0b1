//! The probe: ffprobe on an untrusted upload, bounded in what it reads and
//! how long it takes, checked against the media policy.

use std::path::Path;
use std::process::Stdio;

use serde::Deserialize;

use super::sandbox;

use super::{ALLOWED_DEMUXERS, MediaError, MediaPolicy, PROBE_BYTES, PROBE_MICROS, PROBE_TIMEOUT};

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
