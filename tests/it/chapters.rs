//! Chapters of the input, carried into the output and read back by ffprobe
//! and mutagen: ID3 CHAP frames in mp3, MP4 chapters in m4a, Vorbis
//! `CHAPTERnnn` comments in Opus and FLAC. A trimmed output carries none.
//! A `split=chapters` output is one track per chapter, in a zip read back
//! by Python's `zipfile`.

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
async fn the_input_s_chapters_are_carried_into_mp3_m4a_opus_and_flac() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = chaptered_video(app.dir.path());
    for format in ["mp3", "aac", "opus", "flac"] {
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

/// Reads a zip with Python's own `zipfile`, not with anything of
/// mediajet's: checks every entry's CRC, extracts them into `into`, and
/// returns the entries' names and whether all are stored uncompressed.
fn unzip(zip: &Path, into: &Path) -> (Vec<String>, bool) {
    let script = "import json, sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  bad = z.testzip()\n\
                  z.extractall(sys.argv[2])\n\
                  stored = all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())\n\
                  print(json.dumps({'bad': bad, 'names': z.namelist(), 'stored': stored}))";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(into)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(read["bad"], Value::Null, "a damaged entry: {read}");
    let names = read["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_string())
        .collect();
    (names, read["stored"] == true)
}

#[tokio::test]
async fn a_split_output_is_a_zip_of_one_titled_numbered_track_per_chapter_and_a_playlist() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = chaptered_video(app.dir.path());
    let fields = [
        ("format", "mp3"),
        ("split", "chapters"),
        ("album", "Lectures"),
        ("comment", "Recorded live"),
    ];
    let id = app.submit_with(&token, &video, &fields).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["split"], "chapters", "{job}");
    let output = &job["outputs"][0]["audio"];
    assert_eq!(output["content_type"], "application/zip", "{job}");
    assert_eq!(output["filename"], "chaptered.zip", "{job}");
    let tracks = output["tracks"].as_array().unwrap();
    let described: Vec<(&str, f64)> = tracks
        .iter()
        .map(|t| {
            (
                t["title"].as_str().unwrap(),
                t["start_seconds"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(described, [("Intro", 0.0), ("Main part", 2.0)], "{job}");

    let zip = app.save_output(&token, &job).await;
    let unzipped = app.dir.path().join("unzipped");
    let (names, stored) = unzip(&zip, &unzipped);
    assert_eq!(
        names,
        ["01 - Intro.mp3", "02 - Main part.mp3", "chaptered.m3u8"]
    );
    assert!(stored, "the audio is stored, not compressed again");
    let playlist = std::fs::read_to_string(unzipped.join("chaptered.m3u8")).unwrap();
    assert_eq!(
        playlist,
        "#EXTM3U\n#EXTINF:2,Intro\n01 - Intro.mp3\n#EXTINF:3,Main part\n02 - Main part.mp3\n"
    );
    for (k, (name, title, seconds)) in [
        ("01 - Intro.mp3", "Intro", 2.0),
        ("02 - Main part.mp3", "Main part", 3.0),
    ]
    .into_iter()
    .enumerate()
    {
        let path = unzipped.join(name);
        let decoded = common::decoded_seconds(&path);
        assert!((decoded - seconds).abs() <= 0.1, "{name}: {decoded} s");
        let read = mutagen(&path);
        let tags = &read["tags"];
        assert_eq!(tags["title"], title, "{read}");
        assert_eq!(tags["track"], format!("{}/2", k + 1), "{read}");
        assert_eq!(tags["album"], "Lectures", "{read}");
        assert_eq!(tags["comment"], "Recorded live", "{read}");
        assert_eq!(read["chapters"], serde_json::json!([]), "{read}");

        // Each track on its own is the zip's entry, byte for byte, and
        // takes byte ranges.
        let url = tracks[k]["url"].as_str().unwrap();
        let whole = app.get(&token, url).await;
        assert_eq!(whole.status(), 200);
        assert_eq!(whole.headers()["content-type"], "audio/mpeg");
        let disposition = whole.headers()["content-disposition"].to_str().unwrap();
        assert!(disposition.contains(name), "{disposition}");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(whole.bytes().await.unwrap(), bytes);
        let part = app
            .http
            .get(app.url(url))
            .bearer_auth(&token)
            .header("Range", "bytes=10-109")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 10-109/{}", bytes.len()).as_str()
        );
        assert_eq!(part.bytes().await.unwrap(), bytes[10..110]);
        // So is its signed link, without a token.
        let share = tracks[k]["share_url"].as_str().unwrap();
        let linked = app.http.get(share).send().await.unwrap();
        assert_eq!(linked.status(), 200, "{share}");
        assert_eq!(linked.bytes().await.unwrap(), bytes);
    }
    let beyond = format!("/v1/jobs/{id}/outputs/0/tracks/2");
    assert_eq!(app.get(&token, &beyond).await.status(), 404);
    let unsplit = format!("/v1/jobs/{id}/outputs/1/tracks/0");
    assert_eq!(app.get(&token, &unsplit).await.status(), 404);
}

#[tokio::test]
async fn a_split_over_nats_follows_the_trim_and_an_input_without_chapters_is_one_track() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = chaptered_video(app.dir.path());
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let uploads = async_nats::jetstream::new(nats.clone())
        .get_object_store(mediajet::wire::names::UPLOADS_BUCKET)
        .await
        .unwrap();
    let mut file = tokio::fs::File::open(&video).await.unwrap();
    uploads
        .put("ann@example.com/chaptered.mp4", &mut file)
        .await
        .unwrap();
    // Normalized, trimmed into the first chapter, with a cover: the tracks
    // are what the trim leaves of each chapter, each with the picture.
    let request = serde_json::json!({
        "v": 1, "object": "ann@example.com/chaptered.mp4", "format": "opus",
        "split": "chapters", "start": 1, "loudness": "podcast", "cover": "frame",
    });
    let reply = common::submit_over_nats(&nats, &token, &request).await;
    let id = reply["job"]["id"].as_str().unwrap().to_string();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let unzipped = app.dir.path().join("over-nats");
    let (names, _) = unzip(&app.save_output(&token, &job).await, &unzipped);
    assert_eq!(
        names,
        ["01 - Intro.opus", "02 - Main part.opus", "chaptered.m3u8"]
    );
    for (name, seconds) in [("01 - Intro.opus", 1.0), ("02 - Main part.opus", 3.0)] {
        let path = unzipped.join(name);
        let decoded = common::decoded_seconds(&path);
        assert!((decoded - seconds).abs() <= 0.1, "{name}: {decoded} s");
        let read = mutagen(&path);
        assert_eq!(read["pictures"].as_array().unwrap().len(), 1, "{read}");
    }
    let starts: Vec<f64> = job["output"]["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["start_seconds"].as_f64().unwrap())
        .collect();
    assert_eq!(starts, [0.0, 1.0], "{job}");

    // A video without chapters gives one track: the whole output.
    let plain = common::make_video(app.dir.path(), "plain.mp4", 2);
    let id = app
        .submit_with(&token, &plain, &[("format", "flac"), ("split", "chapters")])
        .await;
    let job = app.wait_until_finished(&token, &id).await;
    let unzipped = app.dir.path().join("plain");
    let (names, _) = unzip(&app.save_output(&token, &job).await, &unzipped);
    assert_eq!(names, ["01 - plain.flac", "plain.m3u8"], "{job}");
    let decoded = common::decoded_seconds(&unzipped.join("01 - plain.flac"));
    assert!((decoded - 2.0).abs() <= 0.1, "{decoded} s");
}
