//! Every completed job's waveform: the peaks, read by the `waveform-data`
//! npm package (tests/web/waveform.mjs), follow the audio's shape; the
//! picture is a PNG of the documented size; both are the owner's only and
//! go with the job.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common;

/// What waveform-data makes of the peaks in `path`.
fn read_peaks(path: &Path) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web/waveform.mjs");
    let output = Command::new("node")
        .arg(script)
        .arg(path)
        .output()
        .expect("node must be installed for the tests (scripts/test.sh)");
    assert!(
        output.status.success(),
        "waveform-data could not read the peaks: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The codec and size of the picture in `path`, as ffprobe reads them.
fn picture(path: &Path) -> (String, u64, u64) {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    let probed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &probed["streams"][0];
    (
        stream["codec_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        stream["width"].as_u64().unwrap_or(0),
        stream["height"].as_u64().unwrap_or(0),
    )
}

#[tokio::test]
async fn a_completed_job_has_a_waveform_whose_peaks_follow_its_audio() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    // Four seconds: a tone, silent from the second second on.
    let codecs = [
        "-c:v",
        "mpeg4",
        "-af",
        "volume=enable='gte(t,2)':volume=0",
        "-c:a",
        "aac",
    ];
    let video = common::lavfi_video(
        app.dir.path(),
        "half.mp4",
        4,
        "size=160x120:rate=10",
        &codecs,
    );
    let id = app.submit_with(&token, &video, &[("format", "opus")]).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(
        job["waveform"]["peaks"],
        format!("/v1/jobs/{id}/waveform.json")
    );
    assert_eq!(
        job["waveform"]["picture"],
        format!("/v1/jobs/{id}/waveform.png")
    );

    let peaks = app
        .get(&token, &format!("/v1/jobs/{id}/waveform.json"))
        .await;
    assert_eq!(peaks.status(), 200);
    assert_eq!(peaks.headers()["content-type"], "application/json");
    let peaks = peaks.bytes().await.unwrap();
    assert!(
        peaks.len() < 16 * 1024,
        "a few kB, not {} bytes",
        peaks.len()
    );
    let path = app.dir.path().join("peaks.json");
    std::fs::write(&path, &peaks).unwrap();
    let read = read_peaks(&path);
    assert_eq!(
        (&read["channels"], &read["bits"]),
        (&1.into(), &8.into()),
        "{read}"
    );
    let duration = read["duration"].as_f64().unwrap();
    assert!((duration - 4.0).abs() < 0.1, "{read}");
    let points = read["length"].as_u64().unwrap();
    assert!((900..=1100).contains(&points), "{read}");
    // The tone (ffmpeg's sine is at 1/8 of full scale: 16 of 128) in the
    // first 40 %, silence in the last.
    let (loud, quiet) = (
        read["first_part"].as_i64().unwrap(),
        read["last_part"].as_i64().unwrap(),
    );
    assert!(loud >= 12, "{read}");
    assert!(quiet <= 1, "{read}");

    let png = app
        .get(&token, &format!("/v1/jobs/{id}/waveform.png"))
        .await;
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let path = app.dir.path().join("waveform.png");
    std::fs::write(&path, png.bytes().await.unwrap()).unwrap();
    assert_eq!(picture(&path), ("png".to_string(), 1800, 280));

    // Someone else's job has no waveform to them; a deleted job none at all.
    let bob = app.new_user("bob@example.com").await;
    for route in ["waveform.json", "waveform.png"] {
        let response = app.get(&bob, &format!("/v1/jobs/{id}/{route}")).await;
        assert_eq!(response.status(), 404, "{route}");
    }
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        204
    );
    app.assert_no_outputs(mediajet::wire::waveform_objects(&id))
        .await;
}

#[tokio::test]
async fn a_failed_job_has_no_waveform() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let text = app.dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video at all").unwrap();
    let id = app.submit(&token, &text).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job.get("waveform").is_none(), "{job}");
    let response = app
        .get(&token, &format!("/v1/jobs/{id}/waveform.png"))
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "job_failed", "{body}");
}
