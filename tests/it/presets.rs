//! Presets: saved, listed, read and deleted by their owner only, and
//! submitted with over multipart, tus and NATS, the submission's own
//! fields laid over the preset's.

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::common::{self, TestApp, submit_over_nats, tus_create, tus_patch, tus_try_create};

async fn put(app: &TestApp, token: &str, name: &str, body: &Value) -> reqwest::Response {
    app.http
        .put(app.url(&format!("/v1/presets/{name}")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn code_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn presets_are_saved_listed_read_and_deleted_by_their_owner_only() {
    let app = common::spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let show = json!({"format": "mp3", "bitrate": 128, "channels": 1, "loudness": "podcast",
                      "title": "The Show", "start": "0:05"});
    let created = put(&app, &ann, "The-Show", &show).await;
    assert_eq!(created.status(), 201);
    let preset: Value = created.json().await.unwrap();
    assert_eq!(preset["name"], "the-show");
    assert_eq!(preset["bitrate"], 128);
    assert_eq!(preset["start"], 5.0);
    let replaced = put(&app, &ann, "the-show", &json!({"format": "opus"})).await;
    assert_eq!(replaced.status(), 200, "saving over a preset replaces it");
    assert_eq!(
        put(&app, &ann, "lecture", &json!({"vbr": 2}))
            .await
            .status(),
        201
    );

    let listed: Value = app.get(&ann, "/v1/presets").await.json().await.unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lecture", "the-show"]);
    let one: Value = app
        .get(&ann, "/v1/presets/the-show")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["format"], "opus");
    assert!(one.get("bitrate").is_none(), "replaced whole: {one}");

    let theirs = app.get(&bob, "/v1/presets/the-show").await;
    assert_eq!(theirs.status(), 404);
    assert_eq!(code_of(theirs).await, "no_such_preset");
    let listed: Value = app.get(&bob, "/v1/presets").await.json().await.unwrap();
    assert_eq!(listed, json!([]));
    assert_eq!(app.delete(&bob, "/v1/presets/the-show").await.status(), 404);

    assert_eq!(app.delete(&ann, "/v1/presets/the-show").await.status(), 204);
    assert_eq!(app.get(&ann, "/v1/presets/the-show").await.status(), 404);
    assert_eq!(app.delete(&ann, "/v1/presets/the-show").await.status(), 404);

    // Refused: each with its code, and nothing saved.
    let refusals = [
        ("Bad Name!", json!({}), "invalid_preset"),
        ("x", json!({"loudness": "loud"}), "invalid_loudness"),
        ("x", json!({"fromat": "mp3"}), "unknown_option"),
        ("x", json!({"format": "flac", "vbr": 3}), "invalid_vbr"),
        ("x", json!(["mp3"]), "bad_json"),
    ];
    for (name, body, code) in refusals {
        let response = put(&app, &ann, name, &body).await;
        assert_eq!(response.status(), 400, "{name} {body}");
        assert_eq!(code_of(response).await, code, "{name} {body}");
    }
    assert_eq!(app.get(&ann, "/v1/presets/x").await.status(), 404);
}

#[tokio::test]
async fn a_submission_takes_its_preset_s_options_and_its_own_fields_win() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let preset = json!({"format": "opus", "channels": 1, "title": "Preset title",
                        "artist": "Preset artist"});
    assert_eq!(put(&app, &token, "show", &preset).await.status(), 201);
    let video = common::make_video(app.dir.path(), "clip.mp4", 2);

    // Multipart: the preset first, then a field of the upload's own.
    let fields = [("preset", "show"), ("title", "Episode 3")];
    let id = app.submit_with(&token, &video, &fields).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["format"], "opus", "{job}");
    assert_eq!(job["channels"], 1);
    assert_eq!(job["title"], "Episode 3");
    assert_eq!(job["artist"], "Preset artist");
    let audio = app.save_output(&token, &job).await;
    assert_eq!(common::probe(&audio).codec, "opus");
    assert_eq!(common::probe(&audio).channels, 1);

    // tus: the pairs' order does not matter.
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let bytes = Bytes::from(std::fs::read(&video).unwrap());
    let metadata = format!("format {},preset {}", encode("flac"), encode("show"));
    let url = tus_create(&app.api, &token, bytes.len() as u64, &metadata).await;
    let done = tus_patch(&app.api, &token, &url, 0, bytes).await;
    let id = done.headers()["mediajet-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(
        (&job["format"], &job["title"]),
        (&json!("flac"), &json!("Preset title"))
    );

    // NATS: the upload put into the bucket by the stock client.
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let uploads = async_nats::jetstream::new(nats.clone())
        .get_object_store("mediajet_uploads")
        .await
        .unwrap();
    let mut file = tokio::fs::File::open(&video).await.unwrap();
    uploads
        .put("ann@example.com/clip.mp4", &mut file)
        .await
        .unwrap();
    let request = json!({"v": 1, "object": "ann@example.com/clip.mp4", "preset": "show",
                         "channels": 2});
    let reply = submit_over_nats(&nats, &token, &request).await;
    let id = reply["job"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"));
    let job = app.wait_until_finished(&token, id).await;
    assert_eq!(
        (&job["format"], &job["channels"]),
        (&json!("opus"), &json!(2))
    );

    // An unknown preset, and one that comes after the options.
    let response = app.upload_with(&token, &video, &[("preset", "nope")]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(code_of(response).await, "invalid_preset");
    let late = [("format", "mp3"), ("preset", "show")];
    let response = app.upload_with(&token, &video, &late).await;
    assert_eq!(code_of(response).await, "invalid_preset");
    let metadata = format!("preset {}", encode("nope"));
    let created = tus_try_create(&app.api, &token, 100, &metadata).await;
    assert_eq!(created.status(), 400);
    assert_eq!(code_of(created).await, "invalid_preset");
    let request = json!({"v": 1, "object": "ann@example.com/clip.mp4", "preset": "nope"});
    let reply = submit_over_nats(&nats, &token, &request).await;
    assert_eq!(reply["error"]["code"], "invalid_preset", "{reply}");
}
