//! Live progress: the job JSON and its Server-Sent Events tell the place in
//! the queue, then percent, encode speed and ETA, and end with the outcome.

use crate::common;

use std::time::Duration;

use serde_json::Value;

#[tokio::test]
async fn a_waiting_job_streams_its_queue_place_then_its_progress_then_its_outcome() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| {
        config.transcoder.ffmpeg = slow;
        config.transcoder.transcoders = Some(1);
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 4);

    let first = app.submit(&token, &video).await;
    app.wait_until_running(&token, &first).await;
    let second = app.submit(&token, &video).await;
    let third = app.submit(&token, &video).await;

    // The job JSON carries the same fields as the events.
    let running: Value = app.job(&token, &first).await.json().await.unwrap();
    assert!(running["speed"].as_f64().unwrap() > 0.0, "{running}");
    assert!(running["eta_seconds"].as_f64().is_some(), "{running}");
    assert!(running.get("queue_position").is_none(), "{running}");
    let waiting: Value = app.job(&token, &third).await.json().await.unwrap();
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert_eq!(waiting["queue_position"], 2, "{waiting}");
    assert!(waiting.get("speed").is_none(), "{waiting}");
    let listed = app.list_jobs(&token).await;
    let listed_second = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["id"] == second.as_str())
        .unwrap();
    assert_eq!(listed_second["queue_position"], 1, "{listed}");

    let mut events = app.events(&token, &third).await;
    let mut seen = Vec::new();
    while let Some(event) = events.next(Duration::from_secs(30)).await {
        seen.push(event);
    }
    let summary: Vec<String> = seen
        .iter()
        .map(|e| format!("{} {} {}", e.name, e.data["state"], e.data["progress"]))
        .collect();

    // Queued: place 2, then 1 when the second job starts.
    assert_eq!(seen[0].name, "state", "{summary:?}");
    assert_eq!(seen[0].data["state"], "queued");
    assert_eq!(seen[0].data["queue_position"], 2);
    let places: Vec<u64> = seen
        .iter()
        .filter(|e| e.data["state"] == "queued")
        .filter_map(|e| e.data["queue_position"].as_u64())
        .collect();
    assert_eq!(places, [2, 1], "{summary:?}");

    // Running: a state event, then progress events whose percent only grows
    // and which carry speed and ETA.
    let running: Vec<&common::SseEvent> = seen
        .iter()
        .filter(|e| e.data["state"] == "running")
        .collect();
    assert_eq!(running[0].name, "state", "{summary:?}");
    assert!(running.len() >= 3, "too few progress events: {summary:?}");
    let percents: Vec<f64> = running
        .iter()
        .map(|e| e.data["progress"].as_f64().unwrap())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    let measured: Vec<&&common::SseEvent> = running
        .iter()
        .filter(|e| e.data["progress"].as_f64().unwrap() > 0.0)
        .collect();
    assert!(!measured.is_empty(), "{summary:?}");
    for event in measured {
        let speed = event.data["speed"].as_f64().unwrap();
        assert!(speed > 0.2 && speed < 5.0, "a real-time encode at {speed}x");
        let eta = event.data["eta_seconds"].as_f64().unwrap();
        assert!((0.0..=5.0).contains(&eta), "ETA {eta} s for a 4 s clip");
        assert!(event.name == "progress" || event.name == "state");
    }

    // The last event is the outcome, and nothing follows it.
    let last = seen.last().unwrap();
    assert_eq!(last.name, "state", "{summary:?}");
    assert_eq!(last.data["state"], "completed", "{summary:?}");
    assert_eq!(last.data["progress"], 100.0);
    assert!(last.data.get("speed").is_none(), "{}", last.data);
    assert!(last.data["output"]["url"].is_string(), "{}", last.data);
}

#[tokio::test]
async fn a_finished_job_streams_its_outcome_once_and_strangers_get_404() {
    let app = common::spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&ann, &video).await;
    app.wait_until_finished(&ann, &id).await;

    let mut events = app.events(&ann, &id).await;
    let event = events.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event.name, "state");
    assert_eq!(event.data["state"], "completed");
    assert!(events.next(Duration::from_secs(10)).await.is_none());

    for (token, path) in [
        (&bob, format!("/v1/jobs/{id}/events")),
        (
            &ann,
            "/v1/jobs/0190f5a8-0000-7000-8000-000000000000/events".to_string(),
        ),
        (&ann, "/v1/jobs/not-a-job/events".to_string()),
    ] {
        let response = app.get(token, &path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    let anonymous = app
        .http
        .get(app.url(&format!("/v1/jobs/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_canceled_job_ends_its_event_stream() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| config.transcoder.ffmpeg = slow).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "long.mp4", 30);
    let id = app.submit(&token, &video).await;
    let mut events = app.events(&token, &id).await;
    app.wait_until_running(&token, &id).await;
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        202
    );
    let mut last = None;
    while let Some(event) = events.next(Duration::from_secs(10)).await {
        last = Some(event);
    }
    let last = last.unwrap();
    assert_eq!(last.name, "state");
    assert_eq!(last.data["state"], "canceled", "{}", last.data);
}
