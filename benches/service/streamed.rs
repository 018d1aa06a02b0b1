//! B6: a streamable video uploaded at a capped rate, from its last byte to
//! `completed`, against bare ffmpeg on the same file.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Scale;
use crate::inputs::*;
use crate::report::{Report, Row};
use crate::service::*;

/// The client's upload rate.
const RATE_MIB_PER_SECOND: u64 = 40;

/// The B1 video in Matroska: the same streams, readable front to back.
fn video_mkv(dir: &Path, seconds: u32) -> std::path::PathBuf {
    let mp4 = video_720p(dir, seconds);
    let mp4 = mp4.to_string_lossy().to_string();
    cached(
        &dir.join(format!("b6-720p-{seconds}s.mkv")),
        &["-i", &mp4, "-c", "copy", "-f", "matroska"],
    )
}

/// Uploads `path` with `format` before the file, sending at most
/// [`RATE_MIB_PER_SECOND`]; returns the job id and when the last byte was
/// handed to the connection.
async fn throttled_upload(service: &Service, token: &str, path: &Path) -> (String, Instant) {
    let bytes = Bytes::from(std::fs::read(path).unwrap());
    let size = bytes.len() as u64;
    let piece = 1024 * 1024;
    let (last_sent, sent_at) = tokio::sync::oneshot::channel();
    let pieces = futures::stream::unfold(
        (bytes, 0usize, Instant::now(), Some(last_sent)),
        move |(bytes, at, start, mut last_sent)| async move {
            if at >= bytes.len() {
                if let Some(last_sent) = last_sent.take() {
                    let _ = last_sent.send(Instant::now());
                }
                return None;
            }
            // Each MiB leaves no sooner than the rate allows.
            let due = start
                + Duration::from_secs_f64(at as f64 / piece as f64 / RATE_MIB_PER_SECOND as f64);
            tokio::time::sleep_until(due.into()).await;
            let end = (at + piece).min(bytes.len());
            let part = bytes.slice(at..end);
            Some((
                Ok::<_, std::io::Error>(part),
                (bytes, end, start, last_sent),
            ))
        },
    );
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(pieces), size)
            .file_name("in.mkv");
    let job = service.upload_part(token, part).await;
    assert_eq!(job["streamed"], true, "the job was not streamed: {job}");
    let id = job["id"].as_str().unwrap().to_string();
    (id, sent_at.await.unwrap())
}

/// B6, on the service B1 started.
pub async fn b6(scale: &Scale, inputs: &Path, service: &Service, report: &mut Report) {
    let video = video_mkv(inputs, scale.video_seconds);
    let size = std::fs::metadata(&video).unwrap().len();
    let token = service.token().await;
    let mut endings = Endings::subscribe(service).await;
    let out = tempfile::tempdir().unwrap();
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for run in 0..scale.runs {
        let started = Instant::now();
        bare_ffmpeg(
            Path::new("ffmpeg"),
            &video,
            &out.path().join(format!("bare-{run}.mp3")),
        )
        .await;
        bare.push(started.elapsed().as_secs_f64());

        let (id, last_byte) = throttled_upload(service, &token, &video).await;
        endings.wait_for(std::slice::from_ref(&id)).await;
        ours.push(last_byte.elapsed().as_secs_f64());
        service.delete(&token, &id).await;
    }
    report.rows.push(Row::against_bare_ffmpeg(
        "B6",
        format!(
            "{} s 720p H.264 + stereo in Matroska ({:.0} MiB) uploaded at {RATE_MIB_PER_SECOND} MiB/s → mp3 192k: last upload byte → `completed`",
            scale.video_seconds,
            size as f64 / 1048576.0
        ),
        (ours, bare),
        ("≤ 0.15", 0.15),
    ));
}
