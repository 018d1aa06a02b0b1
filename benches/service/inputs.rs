//! The inputs the runs upload, made with ffmpeg once and cached between runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::io::AsyncWriteExt;

/// Runs ffmpeg to make an input, unless the cache has it already.
pub fn cached(path: &Path, args: &[&str]) -> PathBuf {
    if !path.exists() {
        let partial = path.with_extension("partial.mp4");
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(&partial)
            .status()
            .expect("ffmpeg must be installed");
        assert!(status.success(), "ffmpeg could not make {}", path.display());
        std::fs::rename(&partial, path).unwrap();
    }
    path.to_path_buf()
}

/// A 720p H.264 video with a stereo AAC track (moov at the end, as ffmpeg
/// writes it by default).
pub fn video_720p(dir: &Path, seconds: u32) -> PathBuf {
    cached(
        &dir.join(format!("b1-720p-{seconds}s.mp4")),
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=1280x720:rate=25:duration={seconds}"),
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:duration={seconds}"),
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=660:duration={seconds}"),
            "-filter_complex",
            "[1:a][2:a]amerge=inputs=2[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "28",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
        ],
    )
}

/// A one-second video with sound, the unit of B4.
pub fn one_second(dir: &Path) -> PathBuf {
    cached(
        &dir.join("b4-1s.mp4"),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ],
    )
}

/// A file of `mib` MiB of varied bytes, the upload of B2 and B3.
pub async fn blob(dir: &Path, mib: u64) -> PathBuf {
    let path = dir.join(format!("b2-{mib}MiB.bin"));
    if !path.exists() {
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial).await.unwrap();
        let block: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 + 13) as u8).collect();
        for _ in 0..mib {
            file.write_all(&block).await.unwrap();
        }
        file.flush().await.unwrap();
        tokio::fs::rename(&partial, &path).await.unwrap();
    }
    path
}
