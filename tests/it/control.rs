//! Job control: owners cancel queued and running jobs and delete finished
//! ones with their audio; nobody else can.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::Value;

#[tokio::test]
async fn a_running_encode_stops_within_a_second_when_its_owner_cancels_it() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| config.transcoder.ffmpeg = slow).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "long.mp4", 30);
    let id = app.submit(&token, &video).await;
    app.wait_until_running(&token, &id).await;
    assert!(common::process_mentions(&id), "no ffmpeg runs for the job");

    let response = app.delete(&token, &format!("/v1/jobs/{id}")).await;
    assert_eq!(response.status(), 202);
    let canceled = Instant::now();
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["state"], "canceled", "{job}");
    while common::process_mentions(&id) {
        assert!(
            canceled.elapsed() < Duration::from_secs(1),
            "ffmpeg still runs a second after the cancel"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Once the transcoder has settled its work item, it stays canceled, has
    // no output, is listed as canceled, and its owner gets no email.
    app.wait_until_work_settled().await;
    let job: Value = app.job(&token, &id).await.json().await.unwrap();
    assert_eq!(job["state"], "canceled", "{job}");
    let output = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(output.status(), 409);
    let body: Value = output.json().await.unwrap();
    assert_eq!(body["error"]["code"], "job_canceled");
    let started = Instant::now();
    loop {
        let list: Value = app
            .get(&token, "/v1/jobs?state=canceled")
            .await
            .json()
            .await
            .unwrap();
        if list.as_array().is_some_and(|l| l.len() == 1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once the mailer has settled every event, no email can still come.
    app.wait_until_mail_settled().await;
    assert!(app.outbox(0).await.is_empty(), "a canceled job was mailed");
}

#[tokio::test]
async fn a_queued_job_that_is_canceled_never_runs() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| {
        config.transcoder.ffmpeg = slow;
        config.transcoder.transcoders = Some(1);
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let long = common::make_video(app.dir.path(), "long.mp4", 30);
    let short = common::make_video(app.dir.path(), "short.mp4", 1);
    let running = app.submit(&token, &long).await;
    app.wait_until_running(&token, &running).await;
    let waiting = app.submit(&token, &short).await;

    let response = app.delete(&token, &format!("/v1/jobs/{waiting}")).await;
    assert_eq!(response.status(), 202);
    // Free the one slot: the canceled job is picked up next and settled
    // without an encode.
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{running}"))
            .await
            .status(),
        202
    );
    app.wait_until_work_settled().await;
    let job: Value = app.job(&token, &waiting).await.json().await.unwrap();
    assert_eq!(job["state"], "canceled", "{job}");
    assert_eq!(job["attempts"], 0, "{job}");
    // Once the mailer has settled every event, no email can still come.
    app.wait_until_mail_settled().await;
    assert!(app.outbox(0).await.is_empty(), "a canceled job was mailed");
}

#[tokio::test]
async fn deleting_a_finished_job_removes_it_and_its_audio() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    let object = job["output"]["filename"].as_str().unwrap().to_string();
    assert!(!object.is_empty());

    let response = app.delete(&token, &format!("/v1/jobs/{id}")).await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.job(&token, &id).await.status(), 404);
    let output = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(output.status(), 404);
    assert_eq!(app.list_jobs(&token).await, serde_json::json!([]));
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        404
    );

    // The audio is gone from the object store too.
    app.assert_no_outputs([format!("{id}.mp3")]).await;
}

#[tokio::test]
async fn nobody_cancels_or_deletes_another_users_job() {
    let app = common::spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&ann, &video).await;

    let response = app.delete(&bob, &format!("/v1/jobs/{id}")).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let job = app.wait_until_finished(&ann, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(
        app.delete(&bob, &format!("/v1/jobs/{id}")).await.status(),
        404
    );
    assert_eq!(app.job(&ann, &id).await.status(), 200);
}

#[tokio::test]
async fn audio_past_the_retention_period_answers_410_and_the_job_stays_listed() {
    let app =
        common::spawn_app_with(|config| config.shared.retention = Duration::from_secs(3)).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let output = format!("/v1/jobs/{id}/output");
    assert_eq!(app.get(&token, &output).await.status(), 200);

    let started = Instant::now();
    let gone = loop {
        let response = app.get(&token, &output).await;
        if response.status() != 200 {
            break response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the audio outlived its retention"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(gone.status(), 410);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error"]["code"], "output_expired", "{body}");
    let seed = app.get(&token, &format!("/download?fid={id}")).await;
    assert_eq!(seed.status(), 410);

    // The job itself is still there, and its owner can delete it.
    let job: Value = app.job(&token, &id).await.json().await.unwrap();
    assert_eq!(job["state"], "completed");
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        204
    );
    assert_eq!(app.job(&token, &id).await.status(), 404);
    assert_eq!(app.get(&token, &output).await.status(), 404);
}

#[tokio::test]
async fn a_deleted_job_stays_deleted_when_its_end_is_announced_again() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    let done = app.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "completed");
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let events = js.get_stream("MEDIAJET_EVENTS").await.unwrap();
    let subject = format!("mediajet.events.job.{id}.completed");
    let announced = events
        .get_last_raw_message_by_subject(&subject)
        .await
        .unwrap()
        .payload;
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        204
    );

    // A transcoder's redelivery after the deduplication window announces
    // the end again; the history projector sees it after the delete.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("{id}.completed.again").as_str());
    js.publish_with_headers(subject, headers, announced)
        .await
        .unwrap()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let mut history = events
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("history")
            .await
            .unwrap();
        let info = history.info().await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{info:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.job(&token, &id).await.status(), 404);
    assert!(
        !app.listed_ids(&token).await.contains(&id),
        "the deleted job came back"
    );
}
