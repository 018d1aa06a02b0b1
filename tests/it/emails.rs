//! The notification email as Python's `email` package reads it: text and
//! HTML, signed download links, a `Message-ID` made from the job, and a
//! one-click unsubscribe (RFC 8058) that the user's setting follows.

use serde_json::{Value, json};

use crate::common::{self, TestApp};

/// Waits until Mailer has dealt with every job event so far, then reads the
/// outbox: what was sent is all there is.
async fn mails_now(app: &TestApp, expected: usize) -> Vec<Value> {
    app.wait_until_mail_settled().await;
    common::read_outbox_parsed(&app.data_dir(), expected).await
}

#[tokio::test]
async fn the_email_has_text_and_html_signed_links_a_stable_id_and_a_one_click_unsubscribe() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let me: Value = app.get(&token, "/v1/me").await.json().await.unwrap();
    assert_eq!(me["notify"], "all", "{me}");
    let user = me["id"].as_str().unwrap().to_string();
    let video = common::make_video(app.dir.path(), "a <b> & c.mp4", 1);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;

    let mails = mails_now(&app, 1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail["content_type"], "multipart/alternative", "{mail}");
    let headers = &mail["headers"];
    assert_eq!(
        headers["Message-ID"],
        format!("<{id}.completed@127.0.0.1>"),
        "{mail}"
    );
    assert!(headers["Date"].is_string(), "{mail}");
    assert_eq!(
        headers["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    let unsubscribe = headers["List-Unsubscribe"].as_str().unwrap();
    let unsubscribe = unsubscribe
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    assert!(
        unsubscribe.starts_with(&format!("{}/u/{user}?sig=", app.base)),
        "{unsubscribe}"
    );
    // The text's link and the HTML's button are the job's signed link; the
    // file name cannot break the HTML.
    let share = job["share_url"].as_str().unwrap();
    assert!(
        mail["links"].as_array().unwrap().contains(&share.into()),
        "{mail}"
    );
    let html = mail["html"].as_str().unwrap();
    assert!(
        html.contains(&format!("href=\"{}\"", share.replace('&', "&amp;"))),
        "{html}"
    );
    assert!(html.contains("a &lt;b&gt; &amp; c.mp4"), "{html}");
    assert!(!html.contains("<b>"), "{html}");

    // The unsubscribe page changes nothing; the one-click POST turns the
    // emails off. A forged link does neither.
    let page = app.http.get(&unsubscribe).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    let me: Value = app.get(&token, "/v1/me").await.json().await.unwrap();
    assert_eq!(me["notify"], "all");
    let forged = format!("{}/u/{user}?sig=AAAA", app.base);
    let refused = app.http.post(&forged).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let clicked = app
        .http
        .post(&unsubscribe)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    let me: Value = app.get(&token, "/v1/me").await.json().await.unwrap();
    assert_eq!(me["notify"], "none", "{me}");
    let id = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &id).await;
    assert_eq!(
        mails_now(&app, 1).await.len(),
        1,
        "mailed after unsubscribing"
    );
}

#[tokio::test]
async fn a_user_who_wants_failures_only_gets_no_email_of_a_completed_job() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let set = app
        .http
        .put(app.url("/v1/me/notifications"))
        .bearer_auth(&token)
        .json(&json!({"notify": "failures"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let bad = app
        .http
        .put(app.url("/v1/me/notifications"))
        .bearer_auth(&token)
        .json(&json!({"notify": "sometimes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    let id = app.submit(&token, &video).await;
    assert_eq!(
        app.wait_until_finished(&token, &id).await["state"],
        "completed"
    );
    assert_eq!(
        mails_now(&app, 0).await.len(),
        0,
        "a completed job was mailed"
    );
    let notes = app.dir.path().join("notes.mp4");
    std::fs::write(&notes, "not a video at all").unwrap();
    let id = app.submit(&token, &notes).await;
    assert_eq!(
        app.wait_until_finished(&token, &id).await["state"],
        "failed"
    );
    let mails = mails_now(&app, 1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0]["headers"]["Message-ID"],
        format!("<{id}.failed@127.0.0.1>")
    );
    assert!(
        mails[0]["text"]
            .as_str()
            .unwrap()
            .contains("could not be converted")
    );
}
