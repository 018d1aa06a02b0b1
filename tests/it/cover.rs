//! Cover pictures read back by mutagen (tests/audio/tags.py) and decoded by
//! ffprobe, for mp3, m4a, FLAC and Opus: a frame of the video, or a picture
//! uploaded with the job; and hostile pictures refused cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::Value;

use crate::common::{self, TestApp};
use crate::tags::mutagen;

/// The width and height of the first picture mutagen found.
fn picture_size(dir: &Path, read: &Value) -> (u64, u64) {
    let data = read["picture_data"][0].as_str().expect("a picture");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let path = dir.join("picture.jpg");
    std::fs::write(&path, bytes).unwrap();
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "the picture does not decode");
    let probed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &probed["streams"][0];
    (
        stream["width"].as_u64().unwrap(),
        stream["height"].as_u64().unwrap(),
    )
}

/// An image ffmpeg makes: `source` is a lavfi source, `name` says the
/// format.
fn image(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
            "-frames:v",
            "1",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make {name}");
    path
}

/// Posts `video` with a cover part (`cover`: its file name and bytes) and
/// `fields`.
async fn post_with_cover(
    app: &TestApp,
    token: &str,
    video: &Path,
    cover: (&str, Vec<u8>),
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let form = form
        .part(
            "cover",
            reqwest::multipart::Part::bytes(cover.1).file_name(cover.0.to_string()),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(video).unwrap()).file_name("talk.mp4"),
        );
    app.http
        .post(app.url("/v1/jobs"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn finished(app: &TestApp, token: &str, response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    app.wait_until_finished(token, job["id"].as_str().unwrap())
        .await
}

#[tokio::test]
async fn a_frame_of_the_video_becomes_the_cover_of_mp3_m4a_flac_and_opus() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let codecs = ["-c:v", "mpeg4", "-q:v", "5", "-c:a", "aac"];
    let video = common::lavfi_video(
        app.dir.path(),
        "hd.mp4",
        3,
        "size=1920x1080:rate=5",
        &codecs,
    );
    for format in ["mp3", "aac", "flac", "opus"] {
        let fields = [("format", format), ("cover", "frame"), ("cover_at", "1.5")];
        let id = app.submit_with(&token, &video, &fields).await;
        let job = app.wait_until_finished(&token, &id).await;
        let read = mutagen(&app.save_output(&token, &job).await);
        assert_eq!(
            read["pictures"].as_array().unwrap().len(),
            1,
            "{format}: {read}"
        );
        assert_eq!(read["pictures"][0]["mime"], "image/jpeg", "{format}");
        let (width, height) = picture_size(app.dir.path(), &read);
        // 1920×1080 scaled to 1400 pixels a side; Ogg carries a smaller one
        // when that one does not fit its comment.
        if format == "opus" {
            assert!(
                width <= 1400 && (width * 1080 / 1920).abs_diff(height) <= 1,
                "{width}×{height}"
            );
        } else {
            assert_eq!((width, height), (1400, 788), "{format}");
        }
        assert_eq!(job["cover"], "frame");
    }
    // The default frame, a tenth of the way in.
    let id = app.submit_with(&token, &video, &[("cover", "frame")]).await;
    let job = app.wait_until_finished(&token, &id).await;
    let read = mutagen(&app.save_output(&token, &job).await);
    assert_eq!(picture_size(app.dir.path(), &read), (1400, 788));
}

#[tokio::test]
async fn an_uploaded_picture_becomes_the_cover_and_hostile_ones_fail_cleanly() {
    // The upload's two streams are all the policy allows: the cover, a
    // second input, is not counted among them.
    let app = common::spawn_app_with(|config| config.transcoder.max_streams = 2).await;
    let token = app.new_user("ann@example.com").await;
    let dir = app.dir.path();
    let video = common::make_video(dir, "talk.mp4", 2);
    let png = std::fs::read(image(dir, "art.png", "color=c=orange:s=600x400")).unwrap();
    let response = post_with_cover(
        &app,
        &token,
        &video,
        ("art.png", png),
        &[("format", "flac")],
    )
    .await;
    let job = finished(&app, &token, response).await;
    assert_eq!(job["cover"], "upload", "{job}");
    let read = mutagen(&app.save_output(&token, &job).await);
    assert_eq!(picture_size(dir, &read), (600, 400), "{read}");

    // Refused at once, and nothing is kept: an SVG, text named .jpg, a PNG
    // whose header says 20000×20000 pixels, a cover for wav, a picture as
    // well as `frame`.
    let mut huge_header = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    huge_header.extend(20000u32.to_be_bytes());
    huge_header.extend(20000u32.to_be_bytes());
    // The cover's file name and bytes, form fields, words of the message.
    type Refusal<'a> = (&'a str, Vec<u8>, &'a [(&'a str, &'a str)], &'a str);
    let refusals: [Refusal; 5] = [
        (
            "art.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
            &[],
            "JPEG or PNG",
        ),
        (
            "art.jpg",
            b"this is not a picture".to_vec(),
            &[],
            "JPEG or PNG",
        ),
        ("art.png", huge_header, &[], "20000"),
        (
            "art.jpg",
            vec![0xFF, 0xD8, 0xFF, 0xE0],
            &[("format", "wav")],
            "wav",
        ),
        (
            "art.jpg",
            vec![0xFF, 0xD8, 0xFF, 0xE0],
            &[("cover", "frame")],
            "once",
        ),
    ];
    for (name, bytes, fields, words) in refusals {
        let response = post_with_cover(&app, &token, &video, (name, bytes), fields).await;
        assert_eq!(response.status(), 400, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_cover", "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{name}: {message}");
    }
    assert_eq!(app.listed_ids(&token).await.len(), 1, "only the first job");

    // Failed by the transcoder, with the reason: a picture larger than the
    // media policy allows, a frame past the end, an upload with no picture.
    let big = std::fs::read(image(dir, "big.png", "color=c=blue:s=6000x6000")).unwrap();
    let response = post_with_cover(&app, &token, &video, ("big.png", big), &[]).await;
    let job = finished(&app, &token, response).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("6000×6000"),
        "{job}"
    );
    let id = app
        .submit_with(&token, &video, &[("cover", "frame"), ("cover_at", "9")])
        .await;
    let job = app.wait_until_finished(&token, &id).await;
    assert!(
        job["error"].as_str().unwrap().contains("`cover_at` (9 s)"),
        "{job}"
    );
    let sound = dir.join("sound.m4a");
    let status = Command::new("ffmpeg")
        .args([
            "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac",
        ])
        .arg(&sound)
        .status()
        .unwrap();
    assert!(status.success());
    let id = app.submit_with(&token, &sound, &[("cover", "frame")]).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert!(
        job["error"].as_str().unwrap().contains("no picture"),
        "{job}"
    );
    // The uploads bucket keeps no cover of any of these.
    app.wait_until_work_settled().await;
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let uploads = async_nats::jetstream::new(nats)
        .get_object_store("mediajet_uploads")
        .await
        .unwrap();
    let mut list = uploads.list().await.unwrap();
    let mut kept = Vec::new();
    while let Some(info) = futures::StreamExt::next(&mut list).await {
        let info = info.unwrap();
        if !info.deleted {
            kept.push(info.name);
        }
    }
    assert!(kept.is_empty(), "the uploads bucket still holds {kept:?}");
}
