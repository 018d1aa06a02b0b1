//! Loudness normalization, checked by readers written elsewhere: pyloudnorm
//! (ITU-R BS.1770-4) for the integrated loudness of the audio downloaded,
//! ffmpeg's `ebur128` for its true peak (`tests/audio/loudness.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{self, TestApp};

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
    measure(&app.save_output(token, job).await)
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
