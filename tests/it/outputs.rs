//! Several outputs from one upload (`outputs`): each decodes, has its own
//! download, is listed in the email, counts against the quota and goes
//! when the job is deleted; over multipart and tus (NATS submissions are in
//! nats_submit.rs). And every way `outputs` can be wrong.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use crate::common::{self, TestApp, spawn_app_with, tus_create, tus_patch, tus_try_create};

/// mp3 128k mono normalized for podcasts, opus 64k stereo (from a mono
/// input), and FLAC.
const THREE: &str = r#"[{"format":"mp3","bitrate":128,"channels":1,"loudness":"podcast"},
    {"format":"opus","bitrate":64,"channels":2},{"format":"flac"}]"#;

/// Saves the audio of the job's output `n` under `name`.
async fn save(app: &TestApp, token: &str, job: &Value, n: usize, name: &str) -> std::path::PathBuf {
    let url = job["outputs"][n]["audio"]["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("/v1/jobs/{}/outputs/{n}", job["id"].as_str().unwrap())
    );
    let response = app.get(token, url).await;
    assert_eq!(response.status(), 200, "{url}");
    let path = app.dir.path().join(name);
    std::fs::write(&path, response.bytes().await.unwrap()).unwrap();
    path
}

#[tokio::test]
async fn one_upload_makes_every_output_it_lists_each_with_its_own_download_and_email_line() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "talk.mp4", 4);
    // The form's other fields are every output's defaults.
    let fields = [("title", "Episode 7"), ("outputs", THREE)];
    let id = app.submit_with(&token, &video, &fields).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let outputs = job["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 3, "{job}");
    // The short form's fields describe the first output.
    assert_eq!(
        (&job["format"], &job["channels"]),
        (&"mp3".into(), &1.into())
    );

    let expected = [("mp3", "mp3", 1), ("opus", "opus", 2), ("flac", "flac", 1)];
    for (n, (ext, codec, channels)) in expected.into_iter().enumerate() {
        let entry = &outputs[n];
        assert_eq!(entry["format"], ext, "{entry}");
        assert_eq!(entry["title"], "Episode 7", "{entry}");
        assert_eq!(entry["audio"]["filename"], format!("talk.{ext}"), "{entry}");
        let path = save(&app, &token, &job, n, &format!("out-{n}.{ext}")).await;
        let probed = common::probe(&path);
        assert_eq!(
            (probed.codec.as_str(), probed.channels),
            (codec, channels),
            "output {n}"
        );
        let seconds = common::decoded_seconds(&path);
        assert!((seconds - 4.0).abs() < 0.1, "output {n}: {seconds} s");
        assert_eq!(
            crate::tags::mutagen(&path)["tags"]["title"],
            "Episode 7",
            "output {n}"
        );
    }
    // Only the first asked for loudness; it reports it.
    assert!(outputs[0]["audio"]["loudness"]["output"]["integrated"].is_number());
    assert!(outputs[1]["audio"].get("loudness").is_none(), "{job}");
    // The first output keeps its old address too.
    assert_eq!(job["output"]["url"], format!("/v1/jobs/{id}/output"));
    assert_eq!(job["output"]["bytes"], outputs[0]["audio"]["bytes"]);

    for missing in ["3", "99", "x", "007"] {
        let response = app
            .get(&token, &format!("/v1/jobs/{id}/outputs/{missing}"))
            .await;
        assert_eq!(response.status(), 404, "{missing}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "no_such_output", "{missing}");
    }
    let bob = app.new_user("bob@example.com").await;
    let response = app.get(&bob, &format!("/v1/jobs/{id}/outputs/1")).await;
    assert_eq!(response.status(), 404, "someone else's output");

    // The email lists every output with its address.
    let mails = app.outbox(1).await;
    let mail = mails[0].replace("=\r\n", "").replace("=\n", "");
    assert!(mail.contains("converted to mp3, opus and flac"), "{mail}");
    for (n, name) in ["talk.mp3", "talk.opus", "talk.flac"].iter().enumerate() {
        let line = format!("{name} (");
        assert!(mail.contains(&line), "{mail}");
        let line = mail.lines().find(|l| l.contains(name)).unwrap();
        let link = format!("{}/d/{id}/{n}?exp", app.base);
        assert!(line.contains(&link), "{name}: {line}");
    }

    // The history lists the job with its outputs; deleting it removes all
    // their audio.
    let listed = app.list_jobs(&token).await;
    assert_eq!(
        listed[0]["outputs"].as_array().unwrap().len(),
        3,
        "{listed}"
    );
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        204
    );
    let audio = [
        format!("{id}.mp3"),
        format!("{id}.1.opus"),
        format!("{id}.2.flac"),
    ];
    let waveform = mediajet::wire::waveform_objects(&id);
    app.assert_no_outputs(audio.into_iter().chain(waveform))
        .await;
}

#[tokio::test]
async fn outputs_of_one_format_are_told_apart_by_number_and_tus_metadata_takes_outputs() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "lecture.mp4", 3);
    let bytes = Bytes::from(std::fs::read(&video).unwrap());
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let outputs = r#"[{"bitrate":64},{"bitrate":192},{"format":"opus","end":"1.5"}]"#;
    let metadata = format!("filename {},outputs {}", b64("lecture.mp4"), b64(outputs));
    let url = tus_create(&app.api, &token, bytes.len() as u64, &metadata).await;
    let patched = tus_patch(&app.api, &token, &url, 0, bytes).await;
    assert_eq!(patched.status(), 204);
    let id = patched.headers()["mediajet-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let names: Vec<&str> = job["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["audio"]["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lecture.mp3", "lecture-1.mp3", "lecture.opus"]);
    let small = save(&app, &token, &job, 0, "small.mp3").await;
    let large = save(&app, &token, &job, 1, "large.mp3").await;
    let (small, large) = (common::probe(&small), common::probe(&large));
    assert!(
        small.bit_rate < large.bit_rate,
        "{} ≥ {}",
        small.bit_rate,
        large.bit_rate
    );
    let trimmed = save(&app, &token, &job, 2, "trimmed.opus").await;
    let seconds = common::decoded_seconds(&trimmed);
    assert!((seconds - 1.5).abs() <= 0.05, "{seconds} s");

    // A bad list is refused at creation, before a byte is sent.
    let created = tus_try_create(&app.api, &token, 10, &format!("outputs {}", b64("[]"))).await;
    assert_eq!(created.status(), 400);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_outputs", "{body}");
}

#[tokio::test]
async fn every_way_outputs_can_be_wrong_is_refused_with_a_code_naming_it() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let fifty = serde_json::to_string(&vec![serde_json::json!({"format": "mp3"}); 50]).unwrap();
    let cases = [
        (fifty.as_str(), "invalid_outputs", "1 to 8"),
        ("[]", "invalid_outputs", "1 to 8"),
        ("mp3, flac", "invalid_outputs", "JSON list"),
        (r#"{"format":"mp3"}"#, "invalid_outputs", "JSON list"),
        (r#"["mp3"]"#, "invalid_outputs", "outputs[0]"),
        (
            r#"[{"format":"mp3"},{"format":"flac","bitrate":128}]"#,
            "invalid_options",
            "outputs[1]",
        ),
        (r#"[{"loudness":"loud"}]"#, "invalid_loudness", "outputs[0]"),
        (r#"[{"start":"5","end":"2"}]"#, "invalid_end", "outputs[0]"),
        (r#"[{"format":"midi"}]"#, "unsupported_format", "outputs[0]"),
        (r#"[{"speed":2}]"#, "unknown_option", "outputs[0]"),
        (r#"[{"outputs":[]}]"#, "invalid_outputs", "outputs[0]"),
    ];
    for (outputs, code, said) in cases {
        let form = common::upload_form(&video, &[("outputs", outputs)]);
        let response = app.post_form(&token, form).await.unwrap();
        assert_eq!(response.status(), 400, "{outputs:.60}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{outputs:.60}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(said), "{outputs:.60}: {message}");
    }
    let long = format!("[{}]", vec![r#"{"comment":"x"}"#; 400].join(","));
    let form = common::upload_form(&video, &[("outputs", long.as_str())]);
    let response = app.post_form(&token, form).await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "field_too_long", "{body}");
    assert!(
        app.list_jobs(&token).await.as_array().unwrap().is_empty(),
        "nothing kept"
    );
    // A preset holds one output's options.
    let put = app
        .api
        .http
        .put(app.api.url("/v1/presets/all"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"outputs": [{"format": "mp3"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 400);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_outputs", "{body}");
}

#[tokio::test]
async fn a_job_s_outputs_share_its_owner_s_quota() {
    // 2 MiB: the upload and one 12-second WAV (about 1.06 MB) fit, so do
    // a WAV and a FLAC; two WAVs do not.
    let app = spawn_app_with(|config| config.ingest.max_user_bytes = 2 * 1024 * 1024).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "twelve.mp4", 12);
    let wavs = r#"[{"format":"wav"},{"format":"wav"}]"#;
    let id = app.submit_with(&token, &video, &[("outputs", wavs)]).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("larger than the limit"),
        "{job}"
    );
    // The first WAV, stored before the second ran out of room, is gone.
    app.assert_no_outputs([format!("{id}.wav")]).await;
    let two = r#"[{"format":"wav"},{"format":"flac"}]"#;
    let id = app.submit_with(&token, &video, &[("outputs", two)]).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let stored: u64 = job["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["audio"]["bytes"].as_u64().unwrap())
        .sum();
    // What the job stored counts, all its outputs: an upload larger than
    // what is left is refused as it is read.
    let left = 2 * 1024 * 1024 - stored;
    let blob = app.dir.path().join("blob.mp4");
    std::fs::write(&blob, vec![0u8; left as usize + 1]).unwrap();
    let response = app
        .post_form(&token, common::upload_form(&blob, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "{stored} bytes stored");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
}
