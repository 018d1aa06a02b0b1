//! Submitting over NATS: the commands of README's "Submitting over NATS",
//! sent by the official Python client (`tests/nats_cli/submit.py`), against
//! a real service. scripts/test.sh installs the client (nats-py, pinned).

use crate::common;

use std::process::Command;

use serde_json::Value;

#[tokio::test]
async fn a_script_submits_follows_and_fetches_a_job_with_the_documented_nats_commands() {
    let app = common::spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 2);
    let out_dir = tempfile::tempdir().unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nats_cli/submit.py");
    let output = Command::new("python3")
        .arg(script)
        .env("NATS_URL", &app.ready.nats_url)
        .env("ANN_TOKEN", &ann)
        .env("BOB_TOKEN", &bob)
        .env("VIDEO", &video)
        .env("OUT_DIR", out_dir.path())
        .output()
        .expect("python3 must be installed for the tests");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'nats'"),
        "the NATS client for Python is missing: run scripts/test.sh, which installs nats-py"
    );
    assert!(output.status.success(), "the NATS script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the script's summary");

    // The audio fetched from the outputs bucket is the Opus file asked for.
    let probed = common::probe(std::path::Path::new(seen["output"].as_str().unwrap()));
    assert_eq!(probed.codec, "opus");
    assert_eq!(probed.format, "ogg");
    assert!((probed.duration - 2.0).abs() < 0.3, "{}", probed.duration);
    assert_eq!(
        seen["kv_states"].as_array().unwrap().last().unwrap(),
        "completed"
    );
    assert_eq!(seen["refusals"].as_object().unwrap().len(), 21, "{seen}");

    // Jobs submitted over NATS are ordinary jobs of their owner: listed and
    // downloadable over HTTP, invisible to anyone else.
    let second = seen["second_job_id"].as_str().unwrap();
    let job = app.wait_until_finished(&ann, second).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["format"], "flac");
    assert_eq!(job["filename"], "second.mp4");
    // Normalized as asked: the report says where it landed.
    let output = &job["output"]["loudness"]["output"]["integrated"];
    assert!((output.as_f64().unwrap() + 20.0).abs() <= 1.0, "{job}");
    // Its second output is an mp3 with the same options but the bit rate.
    let mp3 = &job["outputs"][1];
    assert_eq!(
        (&mp3["format"], &mp3["bitrate"], &mp3["channels"]),
        (&"mp3".into(), &96.into(), &1.into()),
        "{job}"
    );
    let download = app.get(&ann, mp3["audio"]["url"].as_str().unwrap()).await;
    assert_eq!(download.status(), 200);
    let path = out_dir.path().join("second.mp3");
    std::fs::write(&path, download.bytes().await.unwrap()).unwrap();
    let probed = common::probe(&path);
    assert_eq!((probed.codec.as_str(), probed.channels), ("mp3", 1));
    let loudness = &mp3["audio"]["loudness"]["output"]["integrated"];
    assert!((loudness.as_f64().unwrap() + 20.0).abs() <= 1.0, "{job}");
    let first = seen["job_id"].as_str().unwrap();
    let ids = app.listed_ids(&ann).await;
    assert_eq!(ids, [second, first], "exactly the two jobs, newest first");
    let download = app.get(&ann, &format!("/v1/jobs/{first}/output")).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "audio/ogg");
    assert_eq!(
        app.get(&bob, &format!("/v1/jobs/{first}")).await.status(),
        404
    );
    assert_eq!(app.list_jobs(&bob).await, serde_json::json!([]));
}
