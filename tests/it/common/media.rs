//! Media and the processes that work on it: test videos made with
//! ffmpeg, what ffprobe says about an output, a real-time ffmpeg for tests
//! that interfere with an encode, and the processes working on a job.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Whether a running process mentions `needle` in its command line or in
/// the file it has open as its input (a job's ffmpeg gets the upload in the
/// job's work dir as fd 3).
pub fn process_mentions(needle: &str) -> bool {
    !processes_mentioning(needle).is_empty()
}

/// The ids of the processes [`process_mentions`] finds.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let input = std::fs::read_link(entry.path().join("fd/3")).unwrap_or_default();
            let mentions = String::from_utf8_lossy(&cmdline).contains(needle)
                || input.to_string_lossy().contains(needle);
            mentions.then_some(pid)
        })
        .collect()
}

/// An ffmpeg that reads its input at real-time speed, so that an encode is
/// still running when a test interferes. Everything else is real ffmpeg.
pub fn realtime_ffmpeg(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    // The transcoder runs ffmpeg as an unprivileged user when it can,
    // which must be able to reach the wrapper.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let path = dir.join("ffmpeg-realtime");
    std::fs::write(&path, "#!/bin/sh\nexec ffmpeg -readrate 1 \"$@\"\n").expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Makes a video of `seconds` with ffmpeg's test picture (`picture`: its
/// size and rate) and a tone, encoded with `codecs`.
pub fn lavfi_video(
    dir: &Path,
    name: &str,
    seconds: u32,
    picture: &str,
    codecs: &[&str],
) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=duration={seconds}:{picture}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .arg("-shortest")
        .args(codecs)
        .arg(&path)
        .status()
        .expect("ffmpeg must be installed for the tests");
    assert!(status.success(), "ffmpeg could not make a test video");
    path
}

/// Makes a short video with a test picture and a tone, using ffmpeg's lavfi.
pub fn make_video(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let codecs = ["-c:v", "mpeg4", "-c:a", "aac", "-b:a", "64k"];
    lavfi_video(dir, name, seconds, "size=160x120:rate=10", &codecs)
}

/// A video of `seconds` of uncompressed picture and sound (about 3 MB a
/// second): large without costing an encoder's time to make.
pub fn make_raw_video(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let codecs = [
        "-c:v",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "pcm_s16le",
    ];
    lavfi_video(dir, name, seconds, "size=320x240:rate=25", &codecs)
}

/// How long a file's audio lasts as ffmpeg decodes it, to the sample. A
/// container's own duration can be longer: ffprobe counts an mp3's
/// encoder padding, about two frames.
pub fn decoded_seconds(path: &Path) -> f64 {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "s16le", "-",
        ])
        .output()
        .expect("ffmpeg must be installed for the tests");
    assert!(
        output.status.success(),
        "ffmpeg cannot decode {}",
        path.display()
    );
    output.stdout.len() as f64 / 2.0 / 48000.0
}

/// What ffprobe says about a file's first audio stream and container.
pub struct Probed {
    pub format: String,
    pub codec: String,
    pub sample_rate: u32,
    pub bit_rate: u64,
    pub duration: f64,
    pub channels: u64,
}

pub fn probe(path: &Path) -> Probed {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
        .arg("format=format_name,duration,bit_rate:stream=codec_name,sample_rate,channels")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed for the tests");
    assert!(
        output.status.success(),
        "ffprobe cannot read {}",
        path.display()
    );
    let v: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &v["streams"][0];
    Probed {
        format: v["format"]["format_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        codec: stream["codec_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        sample_rate: stream["sample_rate"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        bit_rate: v["format"]["bit_rate"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
        channels: stream["channels"].as_u64().unwrap_or(0),
    }
}
