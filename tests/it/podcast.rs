//! The podcast feed, read by feedparser and podcastparser (`tests/feed/
//! read.py`): an RSS 2.0 feed of the user's completed audio, newest first,
//! whose every enclosure downloads without a token and decodes, and whose
//! episodes show the cover picture of the jobs that have one.

use serde_json::Value;

use crate::common::{self, TestApp};

/// The feed at `url` as both parsers read it.
async fn read_feed(app: &TestApp, url: &str) -> Value {
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(
        response.headers()["content-type"],
        "application/rss+xml; charset=utf-8"
    );
    let path = app.dir.path().join("feed.xml");
    std::fs::write(&path, response.bytes().await.unwrap()).unwrap();
    common::python_json("feed/read.py", &[path.as_os_str(), url.as_ref()])
}

#[tokio::test]
async fn a_private_feed_lists_the_users_audio_for_podcast_apps_until_it_is_turned_off() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let lecture = common::make_video(app.dir.path(), "lecture.mp4", 2);
    let talk = common::make_video(app.dir.path(), "talk & tea.mp4", 1);
    let first = app
        .submit_with(&token, &lecture, &[("title", "Lecture <1>")])
        .await;
    app.wait_until_finished(&token, &first).await;
    let second = app
        .submit_with(&token, &talk, &[("format", "opus"), ("cover", "frame")])
        .await;
    app.wait_until_finished(&token, &second).await;
    // A failed job is no episode.
    let notes = app.dir.path().join("notes.mp4");
    std::fs::write(&notes, "not a video").unwrap();
    let failed = app.submit(&token, &notes).await;
    app.wait_until_finished(&token, &failed).await;

    assert_eq!(app.get(&token, "/v1/feed").await.status(), 404);
    let made = app.post(&token, "/v1/feed", None).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let url = made["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/feeds/", app.base)), "{made}");
    assert_eq!(app.get(&token, "/v1/feed").await.status(), 200);

    let read = read_feed(&app, &url).await;
    let feed = &read["feedparser"];
    assert_eq!(feed["bozo"], false, "{read}");
    assert_eq!(feed["version"], "rss20", "{read}");
    let titles: Vec<&str> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["talk & tea", "Lecture <1>"],
        "newest first: {read}"
    );
    let episodes = read["podcastparser"]["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 2, "{read}");

    // The episode with a cover shows it, to both parsers, at the job's
    // signed `cover_url`: a JPEG, fetched without a token. The other has
    // none.
    let job: Value = app.job(&token, &second).await.json().await.unwrap();
    let cover_url = job["cover_url"].as_str().unwrap();
    assert_eq!(episodes[0]["image"], cover_url, "{read}");
    assert_eq!(feed["entries"][0]["image"], cover_url, "{read}");
    assert_eq!(episodes[1]["image"], Value::Null, "{read}");
    let picture = app.http.get(cover_url).send().await.unwrap();
    assert_eq!(picture.status(), 200);
    assert_eq!(picture.headers()["content-type"], "image/jpeg");
    let bytes = picture.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xff, 0xd8, 0xff]), "not a JPEG");
    let path = app.dir.path().join("cover.jpg");
    std::fs::write(&path, &bytes).unwrap();
    // ffprobe reads it as a picture.
    assert_eq!(common::probe(&path).format, "image2");
    let forged = cover_url.replace("sig=", "sig=A");
    assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 403);
    let cover_url = cover_url.to_string();
    for (episode, (seconds, kind)) in episodes.iter().zip([(1, "audio/ogg"), (2, "audio/mpeg")]) {
        assert_eq!(episode["total_time"], seconds, "{episode}");
        let enclosure = &episode["enclosures"][0];
        assert_eq!(enclosure["mime_type"], kind, "{episode}");
        // The enclosure downloads without a token, and decodes.
        let audio = app
            .http
            .get(enclosure["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(audio.status(), 200, "{episode}");
        let bytes = audio.bytes().await.unwrap();
        assert_eq!(enclosure["file_size"], bytes.len(), "{episode}");
        let path = app.dir.path().join(format!("episode-{seconds}"));
        std::fs::write(&path, &bytes).unwrap();
        let decoded = common::decoded_seconds(&path);
        assert!(
            (decoded - seconds as f64).abs() < 0.2,
            "{decoded} s: {episode}"
        );
    }

    // A new address ends the old; turning the feed off ends it too.
    let again: Value = app
        .post(&token, "/v1/feed", None)
        .await
        .json()
        .await
        .unwrap();
    let renewed = again["url"].as_str().unwrap().to_string();
    assert_ne!(renewed, url);
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(app.http.get(&renewed).send().await.unwrap().status(), 200);
    assert_eq!(app.delete(&token, "/v1/feed").await.status(), 204);
    assert_eq!(app.http.get(&renewed).send().await.unwrap().status(), 404);
    assert_eq!(app.get(&token, "/v1/feed").await.status(), 404);
    for made_up in ["/feeds/x.xml", "/feeds/..%2F..%2Fetc.xml"] {
        let status = app
            .http
            .get(app.url(made_up))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{made_up}");
    }
    let guess = format!("/feeds/{}.xml", "A".repeat(43));
    assert_eq!(
        app.http.get(app.url(&guess)).send().await.unwrap().status(),
        404
    );

    // Deleting the job deletes its cover picture, and its link ends.
    let path = format!("/v1/jobs/{second}");
    assert_eq!(app.delete(&token, &path).await.status(), 204);
    app.assert_no_outputs([format!("{second}.cover.jpg")]).await;
    let gone = app.http.get(&cover_url).send().await.unwrap();
    assert_eq!(gone.status(), 404);
}
