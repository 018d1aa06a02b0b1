//! Signed download links: a completed job's `share_url` (and the links of
//! its email) download without a token, in byte ranges, until they expire,
//! the owner revokes them, or the job is deleted.

use std::time::Duration;

use serde_json::Value;

use crate::common::{self, TestApp};

/// `link` fetched without a token, with `range` if given.
async fn fetch(app: &TestApp, link: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(link);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    request.send().await.unwrap()
}

async fn refused(app: &TestApp, link: &str) -> (u16, String) {
    let response = fetch(app, link, None).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_share_url_downloads_without_a_token_in_ranges_until_its_links_are_revoked() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "talk.mp4", 2);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    let share = job["share_url"].as_str().unwrap().to_string();
    assert!(
        share.starts_with(&format!("{}/d/{id}/0?exp=", app.base)),
        "{job}"
    );
    assert_eq!(job["output"]["share_url"], share.as_str());
    let owned = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    let bytes = owned.bytes().await.unwrap();

    let whole = fetch(&app, &share, None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "audio/mpeg");
    assert_eq!(whole.bytes().await.unwrap(), bytes);
    let part = fetch(&app, &share, Some("bytes=100-199")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), bytes[100..200]);

    // An altered link opens nothing: another signature, a later expiry,
    // another output, or no signature at all.
    let (base, signature) = share.rsplit_once("sig=").unwrap();
    let mut altered = signature.to_string();
    let last = if altered.ends_with('A') { "B" } else { "A" };
    altered.replace_range(altered.len() - 1.., last);
    let forged = format!("{base}sig={altered}");
    assert_eq!(refused(&app, &forged).await, (403, "invalid_link".into()));
    let expiry: u64 = share
        .split("exp=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .parse()
        .unwrap();
    let later = share.replace(&format!("exp={expiry}"), &format!("exp={}", expiry + 1));
    assert_eq!(refused(&app, &later).await, (403, "invalid_link".into()));
    let other = share.replace(&format!("/d/{id}/0?"), &format!("/d/{id}/1?"));
    assert_eq!(refused(&app, &other).await, (403, "invalid_link".into()));
    let unsigned = format!("{}/d/{id}/0", app.base);
    assert_eq!(refused(&app, &unsigned).await, (400, "bad_query".into()));

    // The email's link is the same one.
    let mails = common::read_outbox_parsed(&app.data_dir(), 1).await;
    assert!(
        mails[0]["links"]
            .as_array()
            .unwrap()
            .contains(&share.as_str().into()),
        "{}",
        mails[0]
    );

    // Someone else cannot revoke them; the owner can, at once, and the job
    // then carries new links that work.
    let bob = app.new_user("bob@example.com").await;
    let links = format!("/v1/jobs/{id}/links");
    let response = app
        .http
        .delete(app.url(&links))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app.delete(&token, &links).await;
    assert_eq!(response.status(), 204);
    assert_eq!(refused(&app, &share).await, (403, "invalid_link".into()));
    let job: Value = app.job(&token, &id).await.json().await.unwrap();
    let renewed = job["share_url"].as_str().unwrap().to_string();
    assert_ne!(renewed, share);
    assert_eq!(fetch(&app, &renewed, None).await.status(), 200);

    // Deleting the job ends them too.
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        204
    );
    assert_eq!(refused(&app, &renewed).await, (404, "not_found".into()));
}

#[tokio::test]
async fn a_link_stops_working_when_it_expires() {
    let app =
        common::spawn_app_with(|config| config.shared.link_ttl = Duration::from_secs(1)).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    let share = job["share_url"].as_str().unwrap().to_string();
    // The link lasts a second from the job's end: watch it expire.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = fetch(&app, &share, None).await;
        if response.status() == 410 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "link_expired");
            break;
        }
        assert_eq!(response.status(), 200);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The audio is still there for its owner.
    let owned = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(owned.status(), 200);
}
