//! Output formats and their options: every format decodes with ffprobe as
//! what was asked for, and a bad combination is a clear 400.

use crate::common;

use crate::common::{Probed, TestApp};
use serde_json::Value;

/// Converts a generated video with these form fields and returns the
/// download's content type, file name and what ffprobe reads in it.
async fn convert(app: &TestApp, fields: &[(&str, &str)]) -> (String, String, Probed) {
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 3);
    let response = app.upload_with(&token, &video, fields).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");

    let download = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(download.status(), 200);
    let header = |name: &str| {
        download
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let content_type = header("content-type");
    let disposition = header("content-disposition");
    let filename = disposition
        .split("filename=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(job["output"]["filename"], filename.as_str());
    let path = app.dir.path().join(&filename);
    std::fs::write(&path, download.bytes().await.unwrap()).unwrap();
    let probed = common::probe(&path);
    assert!(
        (probed.duration - 3.0).abs() < 0.5,
        "duration {} for a 3 s input",
        probed.duration
    );
    (content_type, filename, probed)
}

#[tokio::test]
async fn mp3_is_the_default_at_192k_and_44_1_khz() {
    let app = common::spawn_app().await;
    let (content_type, filename, probed) = convert(&app, &[]).await;
    assert_eq!(content_type, "audio/mpeg");
    assert_eq!(filename, "clip.mp3");
    assert_eq!(probed.codec, "mp3");
    assert_eq!(probed.sample_rate, 44100);
    assert!(
        (180_000..=200_000).contains(&probed.bit_rate),
        "{}",
        probed.bit_rate
    );
}

#[tokio::test]
async fn mp3_takes_a_bitrate_and_sample_rate() {
    let app = common::spawn_app().await;
    let fields = [
        ("format", "mp3"),
        ("bitrate", "128k"),
        ("sample_rate", "48000"),
    ];
    let (_, _, probed) = convert(&app, &fields).await;
    assert_eq!(probed.codec, "mp3");
    assert_eq!(probed.sample_rate, 48000);
    assert!(
        (120_000..=136_000).contains(&probed.bit_rate),
        "{}",
        probed.bit_rate
    );
}

#[tokio::test]
async fn aac_comes_as_an_m4a_file() {
    let app = common::spawn_app().await;
    let fields = [
        ("format", "aac"),
        ("bitrate", "96"),
        ("sample_rate", "48000"),
    ];
    let (content_type, filename, probed) = convert(&app, &fields).await;
    assert_eq!(content_type, "audio/mp4");
    assert_eq!(filename, "clip.m4a");
    assert_eq!(probed.codec, "aac");
    assert!(probed.format.contains("m4a"), "{}", probed.format);
    assert_eq!(probed.sample_rate, 48000);
}

#[tokio::test]
async fn opus_comes_in_ogg_at_48_khz() {
    let app = common::spawn_app().await;
    let (content_type, filename, probed) = convert(&app, &[("format", "opus")]).await;
    assert_eq!(content_type, "audio/ogg");
    assert_eq!(filename, "clip.opus");
    assert_eq!(probed.codec, "opus");
    assert_eq!(probed.format, "ogg");
    assert_eq!(probed.sample_rate, 48000);
}

#[tokio::test]
async fn flac_is_lossless_at_the_asked_sample_rate() {
    let app = common::spawn_app().await;
    let fields = [("format", "flac"), ("sample_rate", "22050")];
    let (content_type, filename, probed) = convert(&app, &fields).await;
    assert_eq!(content_type, "audio/flac");
    assert_eq!(filename, "clip.flac");
    assert_eq!(probed.codec, "flac");
    assert_eq!(probed.sample_rate, 22050);
}

#[tokio::test]
async fn wav_keeps_the_input_sample_rate() {
    let app = common::spawn_app().await;
    let (content_type, filename, probed) = convert(&app, &[("format", "WAV")]).await;
    assert_eq!(content_type, "audio/wav");
    assert_eq!(filename, "clip.wav");
    assert_eq!(probed.codec, "pcm_s16le");
    assert_eq!(probed.format, "wav");
    // make_video's tone is 44.1 kHz.
    assert_eq!(probed.sample_rate, 44100);
}

#[tokio::test]
async fn options_a_format_cannot_take_are_a_400_and_create_no_job() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    // Form fields, the error code, and a word the message must contain.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 6] = [
        (
            &[("format", "flac"), ("bitrate", "128")],
            "invalid_options",
            "lossless",
        ),
        (
            &[("format", "wav"), ("bitrate", "320k")],
            "invalid_options",
            "lossless",
        ),
        (
            &[("format", "opus"), ("sample_rate", "44100")],
            "invalid_options",
            "48000",
        ),
        (
            &[("format", "mp3"), ("bitrate", "100")],
            "invalid_options",
            "320",
        ),
        (&[("bitrate", "fast")], "invalid_options", "whole number"),
        (&[("format", "exe")], "unsupported_format", "opus"),
    ];
    for (fields, code, hint) in cases {
        let response = app.upload_with(&token, &video, fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{fields:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(hint), "{fields:?}: {message}");
    }
    let list = app.list_jobs(&token).await;
    assert_eq!(list, serde_json::json!([]), "a rejected upload left a job");
}

/// Top-level MP4 boxes in file order, as (type, offset).
fn mp4_boxes(bytes: &[u8]) -> Vec<(String, usize)> {
    let mut boxes = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        boxes.push((
            String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned(),
            at,
        ));
        if size < 8 {
            break;
        }
        at += size;
    }
    boxes
}

#[tokio::test]
async fn an_mp4_whose_index_comes_after_its_media_converts_whole() {
    // ffmpeg writes the `moov` index after the `mdat` media unless told to
    // move it: read from a pipe, such a file would give an almost empty
    // mp3 and exit 0.
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "late-index.mp4", 12);
    let boxes = mp4_boxes(&std::fs::read(&video).unwrap());
    let offset = |kind: &str| boxes.iter().find(|(k, _)| k == kind).map(|(_, at)| *at);
    assert!(
        offset("moov").unwrap() > offset("mdat").unwrap(),
        "the test video has its index first: {boxes:?}"
    );
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let download = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    let path = app.dir.path().join("late-index.mp3");
    std::fs::write(&path, download.bytes().await.unwrap()).unwrap();
    let probed = common::probe(&path);
    assert!((probed.duration - 12.0).abs() < 0.3, "{}", probed.duration);
}
