//! Cover pictures: a frame of the video, or a picture uploaded with the
//! job, decoded by the confined ffmpeg under the media policy (its size
//! checked by ffprobe first) and made a JPEG of at most 1400 pixels a side.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;

use super::{ALLOWED_DEMUXERS, MediaError, MediaPolicy, PROBE_BYTES, PROBE_MICROS, PROBE_TIMEOUT};
use super::{sandbox, tool};

/// Where a cover comes from.
pub enum Source<'a> {
    /// The frame of the upload at `at` seconds (default: a tenth in).
    Frame { video: &'a Path, at: Option<f64> },
    /// A JPEG or PNG uploaded with the job.
    Upload(&'a Path),
}

/// A cover made for an output: a JPEG file and its size.
#[derive(Debug, Clone)]
pub struct Picture {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
}

/// Sides (pixels) and JPEG qualities tried in turn until the picture fits
/// `max_bytes`: the first is the one every container but Ogg gets.
const SIZES: [(u32, u32); 3] = [(1400, 3), (800, 5), (500, 8)];

#[derive(Deserialize)]
struct Probed {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    width: Option<u64>,
    height: Option<u64>,
}

#[derive(Deserialize)]
struct Format {
    duration: Option<String>,
}

/// Makes the cover of `source` at `out`, no larger than `max_bytes` if
/// given (a picture that must travel in a tag).
pub async fn make_cover(
    policy: &MediaPolicy,
    source: Source<'_>,
    out: &Path,
    max_bytes: Option<u64>,
) -> Result<Picture, MediaError> {
    let (input, demuxers) = match source {
        Source::Frame { video, .. } => (video, ALLOWED_DEMUXERS.join(",")),
        Source::Upload(picture) => (picture, "png_pipe,jpeg_pipe".to_string()),
    };
    let probed = probe(policy, input, &demuxers).await?;
    let stream = probed.streams.first();
    let (Some(width), Some(height)) = (stream.and_then(|s| s.width), stream.and_then(|s| s.height))
    else {
        return Err(MediaError::Rejected(match source {
            Source::Frame { .. } => "the upload has no picture to take a cover from".into(),
            Source::Upload(_) => "the cover is not a picture ffmpeg can read".into(),
        }));
    };
    if width.saturating_mul(height) > policy.max_pixels {
        return Err(MediaError::Rejected(format!(
            "the cover picture is {width}×{height}; at most {} pixels are accepted",
            policy.max_pixels
        )));
    }
    let seek = match source {
        Source::Frame { at, .. } => {
            let duration = probed
                .format
                .and_then(|f| f.duration)
                .and_then(|d| d.parse::<f64>().ok())
                .filter(|d| d.is_finite() && *d > 0.0);
            match (at, duration) {
                (Some(at), Some(duration)) if at >= duration => {
                    return Err(MediaError::Rejected(format!(
                        "`cover_at` ({at} s) is not before the end of the input ({duration:.3} s)"
                    )));
                }
                (Some(at), _) => Some(at),
                (None, duration) => Some(duration.unwrap_or(0.0) * 0.1),
            }
        }
        Source::Upload(_) => None,
    };
    for (side, quality) in SIZES {
        encode(policy, input, &demuxers, seek, side, quality, out).await?;
        let bytes = tokio::fs::read(out).await.map_err(tool("read the cover"))?;
        if max_bytes.is_some_and(|most| bytes.len() as u64 > most) {
            continue;
        }
        let (width, height) = jpeg_size(&bytes)
            .ok_or_else(|| MediaError::Rejected("no cover picture could be made of it".into()))?;
        return Ok(Picture {
            path: out.to_path_buf(),
            width,
            height,
        });
    }
    Err(MediaError::Rejected(
        "the cover picture cannot be made small enough for the format".into(),
    ))
}

async fn probe(policy: &MediaPolicy, input: &Path, demuxers: &str) -> Result<Probed, MediaError> {
    let files = sandbox::Files::open(input, None).map_err(tool("open the cover's source"))?;
    let args = [
        "-probesize",
        PROBE_BYTES,
        "-analyzeduration",
        PROBE_MICROS,
        "-format_whitelist",
        demuxers,
        "-protocol_whitelist",
        "file",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height:format=duration",
        "-of",
        "json",
    ];
    let output = super::probe::ffprobe(policy, &files, &args, "probe the cover's source").await?;
    // ffprobe failing on it means the source is no picture it can read.
    Ok(serde_json::from_slice(&output.stdout).unwrap_or(Probed {
        streams: Vec::new(),
        format: None,
    }))
}

/// One confined ffmpeg run: the frame at `seek` (or the picture), scaled
/// to at most `side` pixels a side, as a JPEG of `quality` (2 best).
async fn encode(
    policy: &MediaPolicy,
    input: &Path,
    demuxers: &str,
    seek: Option<f64>,
    side: u32,
    quality: u32,
    out: &Path,
) -> Result<(), MediaError> {
    let files = sandbox::Files::open(input, Some(out)).map_err(tool("open the cover's files"))?;
    let mut command = tokio::process::Command::new(&policy.ffmpeg);
    command.args(["-v", "error", "-nostdin", "-threads", "1"]);
    if let Some(seek) = seek {
        command.args(["-ss", &format!("{seek:.3}")]);
    }
    let scale =
        format!("scale='min({side},iw)':'min({side},ih)':force_original_aspect_ratio=decrease");
    command
        .args(["-probesize", PROBE_BYTES, "-analyzeduration", PROBE_MICROS])
        .args(["-format_whitelist", demuxers, "-protocol_whitelist", "file"])
        .args(["-i", sandbox::INPUT, "-map", "0:v:0", "-frames:v", "1"])
        .args(["-vf", &scale, "-c:v", "mjpeg", "-q:v", &quality.to_string()])
        .args(["-f", "mjpeg", "-y", sandbox::OUTPUT])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    sandbox::confine(command.as_std_mut(), policy, &files);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(tool("make the cover"))?
        .map_err(tool(format!("run ffmpeg ({})", policy.ffmpeg.display())))?;
    if output.status.success() {
        return Ok(());
    }
    if let Some(reason) = super::limit_hit(output.status, policy) {
        return Err(MediaError::Rejected(reason));
    }
    Err(MediaError::Rejected(
        "no cover picture could be made of it".into(),
    ))
}

/// The width and height a JPEG's frame header gives.
fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        // Start-of-frame markers, but for DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let header = bytes.get(at + 5..at + 9)?;
            let height = u16::from_be_bytes([header[0], header[1]]);
            let width = u16::from_be_bytes([header[2], header[3]]);
            return Some((u32::from(width), u32::from(height)));
        }
        at += 2 + length;
    }
    None
}

/// The cover as a FLAC picture block (front cover, JPEG), base64-encoded:
/// the `METADATA_BLOCK_PICTURE` comment that carries a picture in Ogg.
pub fn picture_block(picture: &Picture, jpeg: &[u8]) -> String {
    use base64::Engine;
    let mime = b"image/jpeg";
    let mut block = Vec::with_capacity(jpeg.len() + 64);
    let number = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    block.extend(3u32.to_be_bytes());
    block.extend(number(mime.len()));
    block.extend(mime);
    block.extend(number(0));
    block.extend(picture.width.to_be_bytes());
    block.extend(picture.height.to_be_bytes());
    block.extend(24u32.to_be_bytes());
    block.extend(0u32.to_be_bytes());
    block.extend(number(jpeg.len()));
    block.extend(jpeg);
    base64::engine::general_purpose::STANDARD.encode(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_frame_header_gives_its_size() {
        // SOI, an APP0 segment of 4 bytes, then SOF0: precision 8, 200 high,
        // 300 wide.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00,
            0xC8, 0x01, 0x2C, 0x03,
        ];
        assert_eq!(jpeg_size(&jpeg), Some((300, 200)));
        assert_eq!(jpeg_size(b"not a jpeg"), None);
    }
}
