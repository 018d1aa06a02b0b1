//! The audio options besides loudness (tests/it/loudness.rs): trims,
//! channels and variable bit rates, read back by ffprobe and ffmpeg; and every option
//! refused with a 400 whose code names it, over multipart and tus.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use crate::common::{self, TestApp, tus_create, tus_patch, tus_try_create};

/// Converts `video` with `fields` and returns the finished job.
async fn convert(
    app: &TestApp,
    token: &str,
    video: &std::path::Path,
    fields: &[(&str, &str)],
) -> Value {
    let id = app.submit_with(token, video, fields).await;
    app.wait_until_finished(token, &id).await
}

#[tokio::test]
async fn a_trim_cuts_the_output_to_the_asked_span_within_fifty_milliseconds() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "talk.mp4", 10);
    // Fields, and the length the output must have.
    let cases: [(&[(&str, &str)], f64); 4] = [
        (
            &[("format", "wav"), ("start", "0:02.5"), ("end", "7.25")],
            4.75,
        ),
        (&[("format", "mp3"), ("start", "3")], 7.0),
        (&[("format", "opus"), ("end", "00:00:04.000")], 4.0),
        // An end past the input's end is the input's end.
        (
            &[("format", "flac"), ("start", "8.5"), ("end", "1:00")],
            1.5,
        ),
    ];
    for (fields, length) in cases {
        let job = convert(&app, &token, &video, fields).await;
        let seconds = common::decoded_seconds(&app.save_output(&token, &job).await);
        assert!(
            (seconds - length).abs() <= 0.05,
            "{fields:?}: {seconds} s, not {length} s"
        );
        assert!(
            (job["output"]["duration_seconds"].as_f64().unwrap() - length).abs() <= 0.05,
            "{job}"
        );
    }
    let job = convert(&app, &token, &video, &[("start", "1:30.5")]).await;
    assert_eq!(job["start"], 90.5);
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("`start` (90.5 s)"), "{error}");
}

#[tokio::test]
async fn channels_downmix_and_a_higher_vbr_level_makes_a_smaller_file() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "talk.mp4", 6);
    let mono = convert(
        &app,
        &token,
        &video,
        &[("format", "aac"), ("channels", "1")],
    )
    .await;
    assert_eq!(
        common::probe(&app.save_output(&token, &mono).await).channels,
        1
    );
    let stereo = convert(
        &app,
        &token,
        &video,
        &[("format", "opus"), ("channels", "2")],
    )
    .await;
    assert_eq!(
        common::probe(&app.save_output(&token, &stereo).await).channels,
        2
    );
    for format in ["mp3", "aac", "opus"] {
        let mut sizes = Vec::new();
        for level in ["0", "9"] {
            let job = convert(&app, &token, &video, &[("format", format), ("vbr", level)]).await;
            assert_eq!(job["vbr"], level.parse::<u64>().unwrap(), "{job}");
            let probed = common::probe(&app.save_output(&token, &job).await);
            assert!((probed.duration - 6.0).abs() < 0.3, "{job}");
            sizes.push(job["output"]["bytes"].as_u64().unwrap());
        }
        assert!(
            sizes[1] < sizes[0],
            "{format}: vbr 9 gave {} bytes, vbr 0 {}",
            sizes[1],
            sizes[0]
        );
    }
}

#[tokio::test]
async fn every_bad_option_is_a_400_naming_it_over_multipart_and_tus() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    // Fields, the error code, and words the message must contain.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 17] = [
        (&[("loudness", "loud")], "invalid_loudness", "podcast"),
        (
            &[("loudness", r#"{"integrated": -60}"#)],
            "invalid_loudness",
            "-40 to -5",
        ),
        (
            &[("loudness", r#"{"integrated": -16, "true_peak": 3}"#)],
            "invalid_loudness",
            "true_peak",
        ),
        (
            &[("loudness", r#"{"integrated": -16, "gain": 3}"#)],
            "invalid_loudness",
            "gain",
        ),
        (&[("channels", "3")], "invalid_channels", "1 (mono) or 2"),
        (&[("channels", "stereo")], "invalid_channels", "1 or 2"),
        (&[("start", "abc")], "invalid_start", "seconds"),
        (&[("end", "1:75")], "invalid_end", "clock"),
        (
            &[("start", "5"), ("end", "5")],
            "invalid_end",
            "after `start`",
        ),
        (&[("vbr", "10")], "invalid_vbr", "0 (best) to 9"),
        (
            &[("format", "flac"), ("vbr", "2")],
            "invalid_vbr",
            "lossless",
        ),
        (
            &[("bitrate", "128"), ("vbr", "2")],
            "invalid_vbr",
            "not both",
        ),
        (&[("track", "third")], "invalid_track", "3/12"),
        (&[("cover", "banana")], "invalid_cover", "`frame`"),
        (&[("cover_at", "3")], "invalid_cover_at", "`cover=frame`"),
        (&[("split", "pages")], "invalid_split", "`chapters`"),
        (
            &[("title", "a\u{7}b")],
            "invalid_title",
            "control characters",
        ),
    ];
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    for (fields, code, words) in cases {
        let response = app.upload_with(&token, &video, fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{fields:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{fields:?}: {message}");

        let metadata: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("{key} {}", encode(value)))
            .collect();
        let created = tus_try_create(&app.api, &token, 100, &metadata.join(",")).await;
        assert_eq!(created.status(), 400, "tus {fields:?}");
        let body: Value = created.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "tus {fields:?}: {body}");
    }
    assert!(app.listed_ids(&token).await.is_empty(), "no job was made");

    // The same options, valid, through tus metadata.
    let bytes = Bytes::from(std::fs::read(&video).unwrap());
    let metadata = format!(
        "filename {},loudness {},channels {},end {},title {}",
        encode("clip.mp4"),
        encode("streaming"),
        encode("1"),
        encode("0.5"),
        encode("Über")
    );
    let url = tus_create(&app.api, &token, bytes.len() as u64, &metadata).await;
    let done = tus_patch(&app.api, &token, &url, 0, bytes).await;
    assert_eq!(done.status(), 204);
    let id = done.headers()["mediajet-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["loudness"], "streaming", "{job}");
    assert_eq!(job["channels"], 1);
    assert_eq!(job["title"], "Über", "{job}");
    let listed = app.list_jobs(&token).await;
    assert_eq!(
        listed[0]["title"], "Über",
        "the history keeps the tags: {listed}"
    );
    let audio = app.save_output(&token, &job).await;
    assert_eq!(common::probe(&audio).channels, 1, "{job}");
    let seconds = common::decoded_seconds(&audio);
    assert!((seconds - 0.5).abs() <= 0.05, "{seconds} s: {job}");
}
