//! The waveform of a job's audio, from one confined decode of its first
//! output: peaks in the JSON format of BBC's audiowaveform (version 2, 8
//! bits, which the `waveform-data` npm package reads), and a picture made
//! by ffmpeg's `showwavespic`.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use super::{MediaError, MediaPolicy, tool};
use crate::actors::transcoder::sandbox;
use crate::audio::Format;

/// The rate the peaks are taken at: enough for the shape of speech and
/// music, and a sixth of what a 48 kHz decode would pipe.
const PEAKS_RATE: u32 = 16_000;
/// About how many min/max pairs the peaks hold, whatever the length: a
/// few kB of JSON, enough for a page's width.
const POINTS: u64 = 1000;
/// Most pairs kept, should the audio run longer than its reported length.
const MAX_POINTS: usize = 4 * POINTS as usize;
/// The picture's size, in pixels.
pub const PICTURE_SIZE: (u32, u32) = (1800, 280);

/// The demuxer that reads a format's files, the only one the decode may use.
fn demuxer(format: Format) -> &'static str {
    match format {
        Format::Mp3 => "mp3",
        Format::Aac => "mov,mp4,m4a,3gp,3g2,mj2",
        Format::Opus => "ogg",
        Format::Flac => "flac",
        Format::Wav => "wav",
    }
}

/// Decodes `audio` (a file of `format`, `seconds` long) once, writing the
/// picture to `picture` and returning the peaks' JSON.
pub async fn make_waveform(
    policy: &MediaPolicy,
    audio: &Path,
    format: Format,
    seconds: f64,
    picture: &Path,
) -> Result<Vec<u8>, MediaError> {
    let files =
        sandbox::Files::open(audio, Some(picture)).map_err(tool("open the waveform's files"))?;
    let (width, height) = PICTURE_SIZE;
    let graph = format!(
        "[0:a:0]aformat=channel_layouts=mono,asplit=2[a][b];\
         [a]showwavespic=s={width}x{height}:colors=0x2563eb[picture];\
         [b]aformat=sample_fmts=s16:sample_rates={PEAKS_RATE}[peaks]"
    );
    let mut command = tokio::process::Command::new(&policy.ffmpeg);
    command
        .args(["-v", "error", "-nostdin", "-threads", "1"])
        .args([
            "-format_whitelist",
            demuxer(format),
            "-protocol_whitelist",
            "file",
        ])
        .args(["-i", sandbox::INPUT, "-filter_complex", &graph])
        .args(["-map", "[picture]", "-frames:v", "1", "-c:v", "png"])
        .args(["-f", "image2", "-update", "1", "-y", sandbox::OUTPUT])
        .args([
            "-map",
            "[peaks]",
            "-c:a",
            "pcm_s16le",
            "-f",
            "s16le",
            "pipe:1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    sandbox::confine(command.as_std_mut(), policy, &files);
    let mut child = command
        .spawn()
        .map_err(tool(format!("run ffmpeg ({})", policy.ffmpeg.display())))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| tool("read the waveform")("no stdout"))?;
    let expected = (seconds.max(0.0) * f64::from(PEAKS_RATE)) as u64;
    let mut peaks = Peaks::new(expected.div_ceil(POINTS).max(1));
    let decode = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = stdout.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            peaks.add(&buffer[..read]);
        }
        child.wait().await
    };
    let status = tokio::time::timeout(policy.encode_timeout, decode)
        .await
        .map_err(tool("make the waveform"))?
        .map_err(tool("read the waveform"))?;
    if !status.success() {
        if let Some(reason) = super::limit_hit(status, policy) {
            return Err(MediaError::Rejected(reason));
        }
        return Err(MediaError::Rejected(
            "no waveform could be made of the audio".into(),
        ));
    }
    Ok(peaks.json())
}

/// The min/max pairs of 16-bit samples, `per_point` samples to a pair.
struct Peaks {
    per_point: u64,
    /// A sample's first byte, when a read ended inside it.
    odd: Option<u8>,
    in_point: u64,
    min: i16,
    max: i16,
    data: Vec<i8>,
}

impl Peaks {
    fn new(per_point: u64) -> Peaks {
        Peaks {
            per_point,
            odd: None,
            in_point: 0,
            min: 0,
            max: 0,
            data: Vec::new(),
        }
    }

    fn add(&mut self, mut bytes: &[u8]) {
        if let (Some(low), Some((&high, rest))) = (self.odd, bytes.split_first()) {
            self.sample(i16::from_le_bytes([low, high]));
            self.odd = None;
            bytes = rest;
        }
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            self.sample(i16::from_le_bytes([pair[0], pair[1]]));
        }
        self.odd = pairs.remainder().first().copied();
    }

    fn sample(&mut self, sample: i16) {
        if self.in_point == 0 {
            (self.min, self.max) = (sample, sample);
        } else {
            self.min = self.min.min(sample);
            self.max = self.max.max(sample);
        }
        self.in_point += 1;
        if self.in_point == self.per_point {
            self.close();
        }
    }

    /// Ends the pair being gathered, keeping it if there is room.
    fn close(&mut self) {
        if self.in_point > 0 && self.data.len() < 2 * MAX_POINTS {
            // 8 bits: the high byte of each 16-bit sample.
            self.data.push((self.min >> 8) as i8);
            self.data.push((self.max >> 8) as i8);
        }
        self.in_point = 0;
    }

    fn json(mut self) -> Vec<u8> {
        self.close();
        let value = serde_json::json!({
            "version": 2,
            "channels": 1,
            "sample_rate": PEAKS_RATE,
            "samples_per_pixel": self.per_point,
            "bits": 8,
            "length": self.data.len() / 2,
            "data": self.data,
        });
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_pair_the_high_bytes_of_each_point_s_lowest_and_highest_sample() {
        let mut peaks = Peaks::new(3);
        let samples: Vec<u8> = [-256i16, 512, 0, 32767, -32768, 256, 1024]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        // Split inside a sample: the halves still make it.
        peaks.add(&samples[..5]);
        peaks.add(&samples[5..]);
        let json: serde_json::Value = serde_json::from_slice(&peaks.json()).unwrap();
        assert_eq!(json["length"], 3);
        assert_eq!(json["samples_per_pixel"], 3);
        assert_eq!(json["data"], serde_json::json!([-1, 2, -128, 127, 4, 4]));
    }
}
