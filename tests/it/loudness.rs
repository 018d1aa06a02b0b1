//! Loudness normalization, checked by readers written elsewhere: pyloudnorm
//! (ITU-R BS.1770-4) for the integrated loudness of the audio downloaded,
//! ffmpeg's `ebur128` for its true peak (`tests/audio/loudness.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use crate::common::{self, TestApp};
use crate::common::{tus_create, tus_patch, tus_try_create};

fn loudness_tool(args: &[&str]) -> Vec<u8> {
    let output = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/audio/loudness.py"
        ))
        .args(args)
        .output()
        .expect("python3 must be installed for the tests");
    assert!(
        output.status.success(),
        "loudness.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A video whose 12 s of sound (`kind`, see loudness.py) is at `lufs`.
fn video_at(dir: &Path, kind: &str, lufs: f64, container: &str) -> PathBuf {
    let sound = dir.join(format!("{kind}{lufs}.wav"));
    loudness_tool(&["make", kind, &lufs.to_string(), sound.to_str().unwrap()]);
    let video = dir.join(format!("{kind}{lufs}.{container}"));
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=size=64x48:rate=5",
        ])
        .arg("-i")
        .arg(&sound)
        .args(["-shortest", "-c:v", "mpeg4", "-c:a", "aac", "-b:a", "256k"])
        .arg(&video)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "ffmpeg could not make {}",
        video.display()
    );
    video
}

/// What loudness.py measures in a file.
fn measure(path: &Path) -> Value {
    serde_json::from_slice(&loudness_tool(&["measure", path.to_str().unwrap()])).unwrap()
}

/// Downloads a completed job's audio and measures it.
async fn measured_output(app: &TestApp, token: &str, job: &Value) -> Value {
    assert_eq!(job["state"], "completed", "{job}");
    let id = job["id"].as_str().unwrap();
    let audio = app.get(token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(audio.status(), 200);
    let path = app
        .dir
        .path()
        .join(job["output"]["filename"].as_str().unwrap());
    std::fs::write(&path, audio.bytes().await.unwrap()).unwrap();
    measure(&path)
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

#[tokio::test]
async fn every_loudness_preset_brings_too_quiet_and_too_loud_inputs_within_one_lu_of_its_target() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    // Preset, format, target LUFS, true-peak ceiling: each format once.
    let presets = [
        ("podcast", "mp3", -16.0, -1.0),
        ("podcast-mono", "mp3", -19.0, -1.0),
        ("streaming", "aac", -14.0, -1.0),
        ("ebu-r128", "opus", -23.0, -1.0),
        ("atsc-a85", "flac", -24.0, -2.0),
    ];
    let mut jobs = Vec::new();
    for (preset, format, target, ceiling) in presets {
        for offset in [-10.0, 6.0] {
            // The Matroska input is read as it arrives: its first pass is
            // fed through a pipe while the upload is still coming.
            let container = if preset == "ebu-r128" { "mkv" } else { "mp4" };
            let video = video_at(app.dir.path(), "tones", target + offset, container);
            let fields = [("format", format), ("loudness", preset)];
            let id = app.submit_with(&token, &video, &fields).await;
            jobs.push((id, preset, target, ceiling, target + offset));
        }
    }
    for (id, preset, target, ceiling, input) in jobs {
        let job = app.wait_until_finished(&token, &id).await;
        let case = format!("{preset} from {input} LUFS: {job}");
        let measured = measured_output(&app, &token, &job).await;
        let integrated = number(&measured["integrated"]);
        assert!(
            (integrated - target).abs() <= 1.0,
            "pyloudnorm reads {integrated} LUFS; {case}"
        );
        let peak = number(&measured["true_peak"]);
        assert!(peak <= ceiling, "true peak {peak} dBTP; {case}");
        assert_eq!(job["loudness"], preset, "{case}");
        let report = &job["output"]["loudness"];
        assert!(
            (number(&report["input"]["integrated"]) - input).abs() <= 1.0,
            "{case}"
        );
        assert!(
            (number(&report["output"]["integrated"]) - target).abs() <= 1.0,
            "{case}"
        );
        assert_eq!(number(&report["target"]["integrated"]), target, "{case}");
        assert_eq!(report["normalization"], "linear", "{case}");
        let channels = if preset == "podcast-mono" { 1 } else { 2 };
        assert_eq!(measured["channels"], channels, "{case}");
        if preset == "ebu-r128" {
            assert_eq!(job["streamed"], true, "{case}");
        }
        if preset == "atsc-a85" {
            // The input's rate, not the 192 kHz loudnorm works at.
            assert_eq!(measured["sample_rate"], 48000, "{case}");
        }
    }
}

#[tokio::test]
async fn peaks_no_gain_can_fit_are_limited_to_the_ceiling_and_reported_as_dynamic() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    // Clicks 20 dB over the tones: raising the tones 10 dB to -16 LUFS
    // would put the clicks at about +4 dBTP.
    let video = video_at(app.dir.path(), "clicks", -26.0, "mp4");
    let target = r#"{"integrated": -16, "true_peak": -1.5}"#;
    let id = app
        .submit_with(&token, &video, &[("format", "flac"), ("loudness", target)])
        .await;
    let job = app.wait_until_finished(&token, &id).await;
    let measured = measured_output(&app, &token, &job).await;
    let report = &job["output"]["loudness"];
    assert_eq!(report["normalization"], "dynamic", "{job}");
    assert!(number(&report["input"]["true_peak"]) > -7.0, "{job}");
    let peak = number(&measured["true_peak"]);
    assert!(peak <= -1.5, "true peak {peak} dBTP: {job}");
    let integrated = number(&measured["integrated"]);
    assert!(
        (integrated + 16.0).abs() <= 1.0,
        "pyloudnorm reads {integrated} LUFS: {job}"
    );
    assert_eq!(job["loudness"]["integrated"], -16.0, "{job}");
    assert_eq!(job["loudness"]["true_peak"], -1.5, "{job}");
}

#[tokio::test]
async fn bad_loudness_and_channels_are_a_400_naming_the_option_on_every_way_in() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let cases: [(&str, &str, &str, &str); 6] = [
        ("loudness", "loud", "invalid_loudness", "podcast"),
        (
            "loudness",
            r#"{"integrated": -60}"#,
            "invalid_loudness",
            "-40 to -5",
        ),
        (
            "loudness",
            r#"{"integrated": -16, "true_peak": 3}"#,
            "invalid_loudness",
            "true_peak",
        ),
        (
            "loudness",
            r#"{"integrated": -16, "gain": 3}"#,
            "invalid_loudness",
            "gain",
        ),
        ("channels", "3", "invalid_channels", "1 (mono) or 2"),
        ("channels", "stereo", "invalid_channels", "1 or 2"),
    ];
    for (field, value, code, words) in cases {
        let response = app.upload_with(&token, &video, &[(field, value)]).await;
        assert_eq!(response.status(), 400, "{field}={value}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{field}={value}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{field}={value}: {message}");

        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        let created = tus_try_create(&app.api, &token, 100, &format!("{field} {encoded}")).await;
        assert_eq!(created.status(), 400, "tus {field}={value}");
        let body: Value = created.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "tus {field}={value}: {body}");
    }
    assert!(app.listed_ids(&token).await.is_empty(), "no job was made");

    // The same options, valid, through tus metadata.
    let bytes = Bytes::from(std::fs::read(&video).unwrap());
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let metadata = format!(
        "filename {},loudness {},channels {}",
        encode("clip.mp4"),
        encode("streaming"),
        encode("1")
    );
    let url = tus_create(&app.api, &token, bytes.len() as u64, &metadata).await;
    let done = tus_patch(&app.api, &token, &url, 0, bytes).await;
    assert_eq!(done.status(), 204);
    let id = done.headers()["mediajet-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["loudness"], "streaming");
    assert_eq!(job["channels"], 1);
    let measured = measured_output(&app, &token, &job).await;
    assert_eq!(measured["channels"], 1, "{job}");
}
