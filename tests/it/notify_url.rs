//! A job's own `notify_url`: its end POSTed there, signed with its owner's
//! job secret and verified by the official `standardwebhooks` and `svix`
//! libraries; refused without a secret or to a private address; a 410
//! ends that job's deliveries and nothing else.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, Receiver};

#[tokio::test]
async fn a_job_s_notify_url_is_told_of_its_end_signed_with_its_owner_s_job_secret() {
    let app = common::spawn_app_with(|config| config.shared.allow_private_targets = true).await;
    let token = app.new_user("ann@example.com").await;
    let receiver = Receiver::start(app.dir.path(), "job", "410,200");
    let video = common::make_video(app.dir.path(), "talk.mp4", 1);

    // Without a job secret to sign with, the job is refused.
    let refused = app
        .upload_with(&token, &video, &[("notify_url", &receiver.url)])
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_job_secret", "{body}");
    let bad = app
        .upload_with(&token, &video, &[("notify_url", "file:///etc/passwd")])
        .await;
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_notify_url", "{body}");

    let made = app.post(&token, "/v1/webhooks/job-secret", None).await;
    assert_eq!(made.status(), 200);
    let made: Value = made.json().await.unwrap();
    let first_secret = made["secret"].as_str().unwrap().to_string();
    assert!(first_secret.starts_with("whsec_"), "{made}");
    // It is no webhook of theirs.
    let listed: Value = app.get(&token, "/v1/webhooks").await.json().await.unwrap();
    assert_eq!(listed, json!([]));

    // The first job's receiver answers 410: that delivery ends, unretried.
    let first = app
        .submit_with(&token, &video, &[("notify_url", &receiver.url)])
        .await;
    let job = app.wait_until_finished(&token, &first).await;
    assert_eq!(job["notify_url"], receiver.url.as_str(), "{job}");
    let got = receiver
        .received(&first_secret, 1, Duration::from_secs(15))
        .await;
    assert_eq!(got[0]["id"], format!("msg_{first}_completed"));
    assert_eq!(
        (&got[0]["standardwebhooks"], &got[0]["svix"]),
        (&json!(true), &json!(true)),
        "{got:?}"
    );
    assert_eq!(got[0]["payload"]["type"], "job.completed");
    assert_eq!(got[0]["payload"]["data"]["id"], first.as_str());
    let log = wait_for_attempt(&app, &token, &first).await;
    assert_eq!(log[0]["state"], "failed", "{log}");
    assert_eq!(log[0]["attempts"][0]["status"], 410, "{log}");

    // A new secret signs the next job's delivery, which the old one does
    // not verify: the 410 disabled nothing.
    let renewed: Value = app
        .post(&token, "/v1/webhooks/job-secret", None)
        .await
        .json()
        .await
        .unwrap();
    let secret = renewed["secret"].as_str().unwrap();
    assert_ne!(secret, first_secret);
    let second = app
        .submit_with(&token, &video, &[("notify_url", &receiver.url)])
        .await;
    app.wait_until_finished(&token, &second).await;
    let got = receiver.received(secret, 2, Duration::from_secs(15)).await;
    assert_eq!(got[1]["id"], format!("msg_{second}_completed"));
    assert_eq!(
        (&got[1]["standardwebhooks"], &got[1]["svix"]),
        (&json!(true), &json!(true)),
        "{got:?}"
    );
    assert_eq!(
        got[0]["standardwebhooks"], false,
        "the new secret verifies the old"
    );
    let log = wait_for_attempt(&app, &token, &second).await;
    assert_eq!(log[0]["state"], "delivered", "{log}");
    assert_eq!(receiver.requests(), 2, "a 410 or a 200 is not retried");
    // Counted: the metrics of the tests' one process count every test's.
    for outcome in ["gone", "delivered"] {
        let series = format!(r#"mediajet_webhook_attempts_total{{outcome="{outcome}"}}"#);
        let counted = app.metric(&series).await.unwrap_or(0.0);
        assert!(counted >= 1.0, "{series} is {counted}");
    }
    let given_up = r#"mediajet_webhook_deliveries_total{outcome="given_up"}"#;
    assert!(app.metric(given_up).await.unwrap_or(0.0) >= 1.0);
}

#[tokio::test]
async fn a_notify_url_at_a_private_address_is_refused_unless_the_operator_allows_it() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    app.post(&token, "/v1/webhooks/job-secret", None).await;
    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    for url in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest"] {
        let refused = app
            .upload_with(&token, &video, &[("notify_url", url)])
            .await;
        assert_eq!(refused.status(), 400, "{url}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_notify_url", "{body}");
    }
}

/// The deliveries to `job`'s `notify_url`, once one was attempted.
async fn wait_for_attempt(app: &common::TestApp, token: &str, job: &str) -> Value {
    let path = format!("/v1/jobs/{job}/deliveries");
    let started = Instant::now();
    loop {
        let log: Value = app.get(token, &path).await.json().await.unwrap();
        if log[0]["state"] != "pending" && !log[0]["attempts"].as_array().is_none_or(Vec::is_empty)
        {
            return log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no attempt: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
