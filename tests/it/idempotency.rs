//! `Idempotency-Key` on `POST /v1/jobs`: an upload sent again (after a lost
//! answer, or by a client that retries on its own) gets the job the first
//! one made, for the same user, instead of a second job.

use std::path::Path;

use serde_json::Value;

use crate::common::{self, TestApp, spawn_app, stream_messages, upload_form};

/// Uploads `path` with `fields` before it and `key`. An answer sent before
/// the upload was read closes the connection, which the client may see as
/// a broken write: then the same request goes again.
async fn keyed(
    app: &TestApp,
    token: &str,
    path: &Path,
    fields: &[(&str, &str)],
    key: &str,
) -> reqwest::Response {
    for _ in 0..3 {
        if let Ok(response) = app.post_keyed(token, upload_form(path, fields), key).await {
            return response;
        }
    }
    panic!("no answer to an upload with key {key:?}");
}

#[tokio::test]
async fn an_upload_sent_again_with_its_idempotency_key_gets_the_first_job() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let clip = common::make_video(app.dir.path(), "clip.mp4", 1);
    let fields = [("format", "mp3")];

    let first = keyed(&app, &ann, &clip, &fields, "clip-1").await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = keyed(&app, &ann, &clip, &fields, "clip-1").await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    // Answered before the repeated upload was read.
    assert_eq!(again.headers()["connection"], "close");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"], "{again}");
    assert_eq!(app.listed_ids(&ann).await.len(), 1, "a second job was made");

    // The key is the user's own: another user's upload with it is a job of
    // its own, and so is the first user's with another key.
    let bobs = keyed(&app, &bob, &clip, &fields, "clip-1").await;
    assert_eq!(bobs.status(), 202);
    let bobs: Value = bobs.json().await.unwrap();
    assert_ne!(bobs["id"], first["id"]);
    let other = keyed(&app, &ann, &clip, &fields, "clip-2").await;
    assert_eq!(other.status(), 202);

    // The repeated upload was not even read: once the three jobs are
    // converted, each deleting its own upload, the uploads stream holds
    // just their three delete markers (a repeat stored and then discarded
    // would have left chunks, or a marker of its own).
    for (token, job) in [(&ann, &first), (&bob, &bobs)] {
        let id = job["id"].as_str().unwrap();
        assert_eq!(
            app.wait_until_finished(token, id).await["state"],
            "completed"
        );
    }
    let other: Value = other.json().await.unwrap();
    let id = other["id"].as_str().unwrap();
    assert_eq!(
        app.wait_until_finished(&ann, id).await["state"],
        "completed"
    );
    app.wait_until_work_settled().await;
    let left = stream_messages(&app.ready.nats_url, "OBJ_mediajet_uploads").await;
    assert_eq!(
        left, 3,
        "the repeated upload left something in the uploads stream"
    );
    // After the job has finished, the key still names it.
    let late = keyed(&app, &ann, &clip, &fields, "clip-1").await;
    assert_eq!(late.status(), 200);
    assert_eq!(late.json::<Value>().await.unwrap()["state"], "completed");
}

#[tokio::test]
async fn a_refused_upload_does_not_use_its_idempotency_key_up() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let clip = common::make_video(app.dir.path(), "clip.mp4", 1);
    let refused = keyed(&app, &ann, &clip, &[("format", "nope")], "retry-me").await;
    assert_eq!(refused.status(), 400);
    let fixed = keyed(&app, &ann, &clip, &[("format", "mp3")], "retry-me").await;
    assert_eq!(fixed.status(), 202, "the refused request used the key up");
}

#[tokio::test]
async fn a_streamed_upload_sent_again_gets_the_job_the_first_one_queued() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let clip = common::make_video(app.dir.path(), "clip.mkv", 1);
    let fields = [("format", "opus")];
    let first = keyed(&app, &ann, &clip, &fields, "live-1").await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["streamed"], true, "{first}");
    let again = keyed(&app, &ann, &clip, &fields, "live-1").await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(app.listed_ids(&ann).await.len(), 1);
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        app.wait_until_finished(&ann, id).await["state"],
        "completed"
    );
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_refused_before_the_upload_is_read() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let clip = common::make_video(app.dir.path(), "clip.mp4", 1);
    for key in ["", &"k".repeat(257)] {
        let response = keyed(&app, &ann, &clip, &[], key).await;
        assert_eq!(response.status(), 400, "{key:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_idempotency_key", "{body}");
    }
    assert!(app.listed_ids(&ann).await.is_empty());
}

#[tokio::test]
async fn a_streamed_upload_refused_at_its_end_gives_its_idempotency_key_back() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let clip = common::make_video(app.dir.path(), "clip.mkv", 1);
    // Queued at its first chunk, which claims the key; the bit rate after
    // the file then refuses it, and the job and the claim go.
    let bytes = std::fs::read(&clip).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("format", "opus")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("clip.mkv"),
        )
        .text("bitrate", "96");
    let refused = app.post_keyed(&ann, form, "late-options").await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "options_after_file", "{body}");
    let fixed = keyed(
        &app,
        &ann,
        &clip,
        &[("format", "opus"), ("bitrate", "96")],
        "late-options",
    )
    .await;
    assert_eq!(fixed.status(), 202, "the refused upload kept the key");
}

#[tokio::test]
async fn the_key_of_a_deleted_job_is_taken_over_once_its_claim_is_a_minute_old() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let clip = common::make_video(app.dir.path(), "clip.mp4", 1);
    let first = keyed(&app, &ann, &clip, &[], "reused").await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let id = first["id"].as_str().unwrap();
    app.wait_until_finished(&ann, id).await;
    let deleted = app.delete(&ann, &format!("/v1/jobs/{id}")).await;
    assert_eq!(deleted.status(), 204);
    // The claim names a job that is gone: refused as in progress while it
    // could still be a request about to make its job, taken over after.
    let started = std::time::Instant::now();
    let renewed = loop {
        let again = keyed(&app, &ann, &clip, &[], "reused").await;
        if again.status() != 409 {
            break again;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "the claim of the deleted job was never taken over"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    assert!(
        started.elapsed() > std::time::Duration::from_secs(30),
        "taken over at once"
    );
    assert_eq!(renewed.status(), 202);
    let renewed: Value = renewed.json().await.unwrap();
    assert_ne!(renewed["id"], first["id"]);
}
