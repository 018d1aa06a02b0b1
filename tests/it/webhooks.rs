//! Webhooks, received by a real HTTP server (`tests/webhooks/receiver.py`)
//! and verified by the official `standardwebhooks` and `svix` libraries
//! (`tests/webhooks/verify.py`): signed deliveries, retried while the
//! receiver fails, logged and replayed; a receiver that hangs holds up
//! nothing else; a 410 disables; private addresses refused unless allowed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, Receiver, TestApp};

async fn add_webhook(app: &TestApp, token: &str, url: &str, events: &[&str]) -> reqwest::Response {
    app.http
        .post(app.url("/v1/webhooks"))
        .bearer_auth(token)
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .unwrap()
}

async fn api_key(app: &TestApp, token: &str, scopes: Value) -> String {
    let made: Value = app
        .http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "scopes": scopes }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    made["key"].as_str().unwrap().to_string()
}

async fn deliveries(app: &TestApp, token: &str, id: &str) -> Value {
    let path = format!("/v1/webhooks/{id}/deliveries");
    app.get(token, &path).await.json().await.unwrap()
}

#[tokio::test]
async fn deliveries_are_signed_retried_logged_and_replayed_and_a_hanging_receiver_holds_up_nothing()
{
    let app = common::spawn_app_with(|config| config.shared.allow_private_targets = true).await;
    let token = app.new_user("ann@example.com").await;
    let flaky = Receiver::start(app.dir.path(), "flaky", "500,200");
    let hanging = Receiver::start(app.dir.path(), "hanging", "hang");
    let made = add_webhook(&app, &token, &flaky.url, &["job.completed", "job.failed"]).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let (id, secret) = (
        made["id"].as_str().unwrap(),
        made["secret"].as_str().unwrap(),
    );
    assert!(secret.starts_with("whsec_"), "{made}");
    let slow = add_webhook(&app, &token, &hanging.url, &["job.completed"]).await;
    assert_eq!(slow.status(), 201);
    let listed: Value = app.get(&token, "/v1/webhooks").await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("whsec_"), "{listed}");

    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    let job = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &job).await;
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    // Refused once with a 500, taken on the retry 5 s later; both signed
    // as the specification says, with the same id.
    let got = flaky.received(secret, 2, Duration::from_secs(30)).await;
    for request in &got {
        assert_eq!(request["standardwebhooks"], true, "{request}");
        assert_eq!(request["svix"], true, "{request}");
    }
    assert_eq!(got[0]["id"], got[1]["id"]);
    assert_eq!(got[0]["id"], format!("msg_{job}_completed"));
    let payload = &got[1]["payload"];
    assert_eq!(payload["type"], "job.completed", "{payload}");
    assert_eq!(payload["data"]["id"], job.as_str());
    assert!(payload["data"]["share_url"].is_string(), "{payload}");
    // The hanging receiver delayed neither this delivery nor the email.
    let first = got[0]["at"].as_f64().unwrap();
    assert!(
        first - ended < 5.0,
        "the first attempt came {:.1} s late",
        first - ended
    );
    assert_eq!(common::read_outbox(&app.data_dir(), 1).await.len(), 1);

    let log = deliveries(&app, &token, id).await;
    let delivery = &log[0];
    assert_eq!(delivery["state"], "delivered", "{log}");
    let statuses: Vec<&Value> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(200)], "{log}");
    assert!(delivery["attempts"][0]["latency_ms"].is_u64(), "{log}");

    // A replay sends it again, signed anew; after a rotation, with the new
    // secret, which the old one does not verify.
    let replay = format!("/v1/webhooks/{id}/deliveries/msg_{job}_completed/replay");
    let replayed = app.post(&token, &replay, None).await;
    assert_eq!(replayed.status(), 202);
    let got = flaky.received(secret, 3, Duration::from_secs(10)).await;
    assert_eq!(got[2]["id"], got[0]["id"]);
    assert_eq!(got[2]["standardwebhooks"], true);
    let rotate = format!("/v1/webhooks/{id}/rotate");
    let rotated: Value = app.post(&token, &rotate, None).await.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let replayed = app.post(&token, &replay, None).await;
    assert_eq!(replayed.status(), 202);
    let got = flaky.received(new_secret, 4, Duration::from_secs(10)).await;
    assert_eq!(
        (&got[3]["standardwebhooks"], &got[3]["svix"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(
        got[0]["standardwebhooks"], false,
        "the old secret still verifies"
    );

    // A key with `webhooks:manage` manages them; one without may not.
    let manager = api_key(&app, &token, json!(["webhooks:manage"])).await;
    let reader = api_key(&app, &token, json!(["jobs:read"])).await;
    assert_eq!(app.get(&manager, "/v1/webhooks").await.status(), 200);
    assert_eq!(app.get(&reader, "/v1/webhooks").await.status(), 403);
    let deleted = app.delete(&manager, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.get(&token, &format!("/v1/webhooks/{id}/deliveries"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_410_disables_the_webhook_and_redirects_are_followed() {
    let app = common::spawn_app_with(|config| config.shared.allow_private_targets = true).await;
    let token = app.new_user("ann@example.com").await;
    let gone = Receiver::start(app.dir.path(), "gone", "410");
    let target = Receiver::start(app.dir.path(), "target", "200");
    let redirecting = Receiver::start(
        app.dir.path(),
        "redirecting",
        &format!("redirect={}", target.url),
    );
    let made: Value = add_webhook(&app, &token, &gone.url, &["job.completed"])
        .await
        .json()
        .await
        .unwrap();
    let moved: Value = add_webhook(&app, &token, &redirecting.url, &["job.completed"])
        .await
        .json()
        .await
        .unwrap();
    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    let job = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &job).await;

    let got = target
        .received(
            moved["secret"].as_str().unwrap(),
            1,
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(got[0]["standardwebhooks"], true, "{got:?}");
    assert_eq!(got[0]["path"], "/hook/target");
    gone.received(made["secret"].as_str().unwrap(), 1, Duration::from_secs(15))
        .await;
    let started = Instant::now();
    loop {
        let listed: Value = app.get(&token, "/v1/webhooks").await.json().await.unwrap();
        let webhook = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == made["id"])
            .unwrap()
            .clone();
        if webhook["disabled"] == true {
            assert!(
                webhook["disabled_reason"].as_str().unwrap().contains("410"),
                "{webhook}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never disabled: {webhook}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Enabled again by its owner, it is on.
    let path = format!("/v1/webhooks/{}", made["id"].as_str().unwrap());
    let on: Value = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({"disabled": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&on["disabled"], &on["disabled_reason"]),
        (&json!(false), &Value::Null),
        "{on}"
    );
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:secret@example.com/",
    ] {
        let refused = add_webhook(&app, &token, url, &["job.completed"]).await;
        assert_eq!(refused.status(), 400, "{url}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_url", "{url}: {body}");
    }
    let bad_events = add_webhook(&app, &token, "https://example.com/", &[]).await;
    assert_eq!(bad_events.status(), 400);

    // A name is checked when it is resolved: `localhost` is taken, and every
    // delivery to it is refused before a connection is made.
    let receiver = Receiver::start(app.dir.path(), "local", "200");
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let made: Value = add_webhook(&app, &token, &by_name, &["job.completed"])
        .await
        .json()
        .await
        .unwrap();
    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    let job = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &job).await;
    let id = made["id"].as_str().unwrap();
    let started = Instant::now();
    let error = loop {
        let log = deliveries(&app, &token, id).await;
        if let Some(error) = log[0]["attempts"][0]["error"].as_str() {
            break error.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no attempt: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(error.contains("not a public address"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&receiver.record).unwrap_or_default(),
        ""
    );
}
