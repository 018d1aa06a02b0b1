//! URL imports against a real HTTP server (`tests/import/server.py`,
//! Python's `http.server` with byte ranges): a transfer that breaks off is
//! resumed with a `Range` request; one the server will not resume, a 404,
//! a name that does not resolve and a file over the limit each fail their
//! job with the reason; private addresses are refused unless allowed; a
//! canceled job's fetch stops; a repeated `Idempotency-Key` makes one job.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{self, FileServer, Receiver};

#[tokio::test]
async fn a_job_imports_its_video_from_a_url_resuming_a_transfer_that_broke_off() {
    let app = common::spawn_app_with(|config| config.shared.allow_private_targets = true).await;
    let token = app.new_user("ann@example.com").await;
    let root = app.dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let video = common::make_video(&root, "talk.mp4", 2);
    let size = std::fs::metadata(&video).unwrap().len();
    let server = FileServer::start(&root);
    let receiver = Receiver::start(app.dir.path(), "import", "200");
    let secret: Value = app
        .post(&token, "/v1/webhooks/job-secret", None)
        .await
        .json()
        .await
        .unwrap();

    // A JSON body: the URL, the options and where to say it is done.
    let asked = json!({
        "source_url": format!("{}/drop/talk.mp4", server.base),
        "format": "opus",
        "bitrate": 64,
        "notify_url": receiver.url,
    });
    let made = app.post(&token, "/v1/jobs", Some(&asked)).await;
    assert_eq!(made.status(), 202);
    let made: Value = made.json().await.unwrap();
    assert_eq!(made["source_url"], asked["source_url"], "{made}");
    assert_eq!(made["filename"], "talk.mp4", "{made}");
    assert_eq!(made["input_bytes"], 0, "{made}");
    let id = made["id"].as_str().unwrap();
    let job = app.wait_until_finished(&token, id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["input_bytes"], size, "{job}");
    let audio = app.save_output(&token, &job).await;
    let probed = common::probe(&audio);
    assert_eq!(probed.codec, "opus");
    assert!((probed.duration - 2.0).abs() < 0.3, "{}", probed.duration);

    // The first transfer broke off half-way; the second asked for the
    // rest, naming the file it had begun.
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0]["range"], Value::Null);
    let range = requests[1]["range"].as_str().unwrap();
    let from: u64 = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(from > 0 && from < size, "{range} of {size}");
    assert!(requests[1]["if_range"].is_string(), "{requests:?}");

    let got = receiver
        .received(
            secret["secret"].as_str().unwrap(),
            1,
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(got[0]["standardwebhooks"], true, "{got:?}");
    assert_eq!(got[0]["payload"]["data"]["id"], id);
}

#[tokio::test]
async fn an_import_that_cannot_be_fetched_fails_its_job_with_the_reason() {
    let app = common::spawn_app_with(|config| {
        config.shared.allow_private_targets = true;
        config.ingest.max_upload_bytes = 20_000;
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let root = app.dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let big = common::make_video(&root, "big.mp4", 6);
    assert!(std::fs::metadata(&big).unwrap().len() > 20_000);
    std::fs::write(root.join("small.bin"), vec![7u8; 15_000]).unwrap();
    let server = FileServer::start(&root);
    let base = &server.base;

    let cases = [
        (format!("{base}/missing.mp4"), "the server answered 404"),
        (
            format!("{base}/big.mp4"),
            "larger than the limit of 20000 bytes",
        ),
        (
            format!("{base}/norange/drop/small.bin"),
            "broke off after 7500 bytes",
        ),
        (
            "http://no-such-host.invalid/talk.mp4".to_string(),
            "does not resolve",
        ),
    ];
    for (url, reason) in cases {
        // As a multipart form, in place of the file.
        let form = reqwest::multipart::Form::new().text("source_url", url.clone());
        let made = app.post_form(&token, form).await.unwrap();
        assert_eq!(made.status(), 202, "{url}");
        let made: Value = made.json().await.unwrap();
        let job = app
            .wait_until_finished(&token, made["id"].as_str().unwrap())
            .await;
        assert_eq!(job["state"], "failed", "{job}");
        let error = job["error"].as_str().unwrap();
        assert!(
            error.starts_with("cannot import the source URL") && error.contains(reason),
            "{url}: {error}"
        );
    }
    let failed = app
        .metric(r#"mediajet_imports_total{outcome="failed"}"#)
        .await
        .unwrap_or(0.0);
    assert!(failed >= 4.0, "{failed}");

    // Refused at once: not http(s), a file and a URL together, no input.
    let refusals = [
        json!({"source_url": "file:///etc/passwd"}),
        json!({"source_url": "https://user:pw@example.com/a.mp4"}),
        json!({"format": "mp3"}),
    ];
    for body in refusals {
        let refused = app.post(&token, "/v1/jobs", Some(&body)).await;
        assert_eq!(refused.status(), 400, "{body}");
        let answer: Value = refused.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "invalid_source_url", "{answer}");
    }
    let small = root.join("small.bin");
    let both = common::upload_form(&small, &[("source_url", &format!("{base}/small.bin"))]);
    let refused = app.post_form(&token, both).await.unwrap();
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn an_import_from_a_private_address_is_refused_unless_the_operator_allows_it() {
    // Only 127.0.0.2 is allowed besides public addresses.
    let app = common::spawn_app_with(|config| {
        config.shared.allow_target_networks =
            vec![mediajet::domain::parse_network("127.0.0.2").unwrap()];
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    for url in [
        "http://127.0.0.1:9/talk.mp4",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/talk.mp4",
        "http://10.0.0.1/talk.mp4",
    ] {
        let refused = app
            .post(&token, "/v1/jobs", Some(&json!({"source_url": url})))
            .await;
        assert_eq!(refused.status(), 400, "{url}");
        let answer: Value = refused.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "invalid_source_url", "{answer}");
    }
    let root = app.dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    common::make_video(&root, "talk.mp4", 1);
    let private = FileServer::start(&root);
    let allowed = FileServer::start_on(&root, "127.0.0.2");
    let import = |url: String| {
        let (app, token) = (&app, &token);
        async move {
            let made: Value = app
                .post(token, "/v1/jobs", Some(&json!({ "source_url": url })))
                .await
                .json()
                .await
                .unwrap();
            app.wait_until_finished(token, made["id"].as_str().unwrap())
                .await
        }
    };

    // The allowed network is reached.
    let job = import(format!("{}/talk.mp4", allowed.base)).await;
    assert_eq!(job["state"], "completed", "{job}");
    // A redirect from there to a private address is refused before any
    // connection is made to it.
    let redirect = format!("{}/redirect/{}/talk.mp4", allowed.base, private.base);
    let job = import(redirect).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("127.0.0.1 is not a public address"),
        "{error}"
    );
    // So is a name that resolves to one, when it is resolved.
    let by_name = format!(
        "{}/talk.mp4",
        private.base.replace("127.0.0.1", "localhost")
    );
    let job = import(by_name).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("not a public address"),
        "{job}"
    );
    assert!(private.requests().is_empty(), "{:?}", private.requests());
    assert_eq!(allowed.requests().len(), 2);
}

#[tokio::test]
async fn canceling_an_import_stops_its_fetch_and_a_repeated_key_makes_one_job() {
    let app = common::spawn_app_with(|config| config.shared.allow_private_targets = true).await;
    let token = app.new_user("ann@example.com").await;
    let root = app.dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    // About 300 KB at 5 KB/s: a minute, unless it is stopped.
    common::make_raw_video(&root, "long.avi", 1);
    let server = FileServer::start(&root);
    let asked = json!({ "source_url": format!("{}/slow/long.avi", server.base) });
    let submit = || {
        app.http
            .post(app.url("/v1/jobs"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "import-1")
            .json(&asked)
            .send()
    };
    let first = submit().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = submit().await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    let id = first["id"].as_str().unwrap();
    common::wait_for(Duration::from_secs(10), || !server.requests().is_empty()).await;
    let canceled = app.delete(&token, &format!("/v1/jobs/{id}")).await;
    assert_eq!(canceled.status(), 202);
    common::wait_for(Duration::from_secs(15), || {
        server.requests().iter().any(|r| r["aborted"] == true)
    })
    .await;
    let job: Value = app.job(&token, id).await.json().await.unwrap();
    assert_eq!(job["state"], "canceled", "{job}");
    assert_eq!(server.requests().len(), 2, "one fetch, then its end");
}

#[tokio::test]
async fn an_import_larger_than_what_is_left_of_the_quota_once_it_is_in_fails() {
    let root = tempfile::tempdir().unwrap();
    let video = common::make_video(root.path(), "clip.mp4", 2);
    let size = std::fs::metadata(&video).unwrap().len();
    // Room for one copy of the clip, not two.
    let app = common::spawn_app_with(|config| {
        config.shared.allow_private_targets = true;
        config.ingest.max_user_bytes = size + size / 2;
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let server = FileServer::start(root.path());
    // The import is fetched slowly; meanwhile a resumable upload is begun,
    // which holds its whole length of the quota.
    let asked = json!({ "source_url": format!("{}/slow/clip.mp4", server.base) });
    let made: Value = app
        .post(&token, "/v1/jobs", Some(&asked))
        .await
        .json()
        .await
        .unwrap();
    common::wait_for(Duration::from_secs(10), || !server.requests().is_empty()).await;
    let reserved = app
        .http
        .post(app.url("/v1/uploads"))
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", size.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reserved.status(), 201);
    let job = app
        .wait_until_finished(&token, made["id"].as_str().unwrap())
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("left of your storage quota"), "{error}");
}
