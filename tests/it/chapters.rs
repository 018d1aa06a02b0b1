//! Chapters of the input, carried into the output and read back by ffprobe
//! and mutagen: ID3 CHAP frames in mp3, MP4 chapters in m4a, Vorbis
//! `CHAPTERnnn` comments in Opus. A trimmed output carries none.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{self, TestApp};
use crate::tags::mutagen;

/// A 5 s video with the chapters "Intro" (0–2 s) and "Main part" (2–5 s).
fn chaptered_video(dir: &Path) -> PathBuf {
    let chapters = dir.join("chapters.txt");
    std::fs::write(
        &chapters,
        ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=2000\ntitle=Intro\n\
         [CHAPTER]\nTIMEBASE=1/1000\nSTART=2000\nEND=5000\ntitle=Main part\n",
    )
    .unwrap();
    let video = dir.join("chaptered.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=d=5:s=160x120:r=5",
        ])
        .args(["-f", "lavfi", "-i", "sine=d=5", "-i"])
        .arg(&chapters)
        .args([
            "-map",
            "0",
            "-map",
            "1",
            "-map_chapters",
            "2",
            "-c:v",
            "mpeg4",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&video)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "ffmpeg could not make the chaptered video"
    );
    video
}

/// The chapters ffprobe reads: (title, start, end) in seconds.
fn ffprobe_chapters(path: &Path) -> Vec<(String, f64, f64)> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_chapters", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    let probed: Value = serde_json::from_slice(&output.stdout).unwrap();
    probed["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let time = |key: &str| c[key].as_str().unwrap().parse::<f64>().unwrap();
            let title = c["tags"]["title"].as_str().unwrap_or_default().to_string();
            (title, time("start_time"), time("end_time"))
        })
        .collect()
}

async fn convert(app: &TestApp, token: &str, video: &Path, fields: &[(&str, &str)]) -> PathBuf {
    let id = app.submit_with(token, video, fields).await;
    let job = app.wait_until_finished(token, &id).await;
    app.save_output(token, &job).await
}

#[tokio::test]
async fn the_input_s_chapters_are_carried_into_mp3_m4a_and_opus() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = chaptered_video(app.dir.path());
    for format in ["mp3", "aac", "opus"] {
        let audio = convert(&app, &token, &video, &[("format", format)]).await;
        let chapters = ffprobe_chapters(&audio);
        let titles: Vec<&str> = chapters.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(titles, ["Intro", "Main part"], "{format}: {chapters:?}");
        assert!((chapters[1].1 - 2.0).abs() < 0.05, "{format}: {chapters:?}");
        let read = mutagen(&audio);
        let found = read["chapters"].to_string();
        assert!(
            found.contains("Intro") && found.contains("Main part"),
            "{format}: mutagen reads {found}"
        );
    }
    let trimmed = convert(&app, &token, &video, &[("format", "mp3"), ("start", "1")]).await;
    assert_eq!(
        ffprobe_chapters(&trimmed),
        [],
        "a trimmed output carries no chapters"
    );
}
