//! The same binary running different actors in different processes.

mod common;

use common::{spawn_app_on, spawn_app_with};
use mediajet::config::ActorKind;

#[tokio::test]
async fn actors_split_over_processes_share_the_work_through_nats() {
    let front = spawn_app_with(|config| {
        config.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let mut transcoders = Vec::new();
    for _ in 0..2 {
        transcoders.push(
            spawn_app_on(&front.ready.nats_url, |config| {
                config.actors = vec![ActorKind::Transcoder];
                config.transcoders = Some(1);
            })
            .await,
        );
    }

    // A transcoder process serves only health, readiness and metrics, and
    // never opens a database.
    let worker = &transcoders[0];
    let ready = worker.readiness().await;
    assert_eq!(
        ready["checks"],
        serde_json::json!({"nats": true, "jetstream": true})
    );
    let jobs = worker
        .http
        .get(worker.url("/v1/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.status(), 404);
    assert!(
        !worker.data_dir().join("surreal").exists(),
        "a transcoder opened SurrealDB"
    );

    let token = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "clip.mp4", 2);
    let ids = front.submit_many(&token, &video, 4).await;
    for id in &ids {
        let job = front.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "{job}");
        assert_eq!(job["attempts"], 1);
    }
    let mails = front.outbox(4).await;
    assert_eq!(mails.len(), 4, "one email per job");
    for id in &ids {
        let matching = common::mails_about(&mails, id);
        assert_eq!(matching, 1, "job {id} has {matching} emails");
    }
}

#[tokio::test]
async fn a_redelivered_job_whose_audio_is_already_stored_is_not_encoded_again() {
    // No transcoder yet: the job waits in the queue.
    let front = spawn_app_with(|config| {
        config.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let token = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "clip.mp4", 2);
    let id = front.submit(&token, &video).await;

    // What an earlier attempt that died before recording its result would
    // have left: the whole audio, stored with its duration. It is a
    // different tone from the video's, so an encode would show.
    let earlier = front.dir.path().join("earlier.mp3");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:duration=2",
        ])
        .arg(&earlier)
        .status()
        .unwrap();
    assert!(status.success());
    let earlier_bytes = std::fs::read(&earlier).unwrap();
    let client = async_nats::connect(&front.ready.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let outputs = mediajet::storage::objects::outputs_bucket(
        &js,
        1,
        std::time::Duration::from_secs(7 * 24 * 3600),
        0,
    )
    .await
    .unwrap();
    let metadata = [(
        mediajet::actors::transcoder::OUTPUT_DURATION.to_string(),
        "2.0".to_string(),
    )]
    .into();
    mediajet::storage::objects::put_object(
        &outputs,
        &format!("{id}.mp3"),
        &earlier_bytes[..],
        128 * 1024,
        metadata,
    )
    .await
    .unwrap();

    let _transcoder = spawn_app_on(&front.ready.nats_url, |config| {
        config.actors = vec![ActorKind::Transcoder];
    })
    .await;
    let job = front.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["output"]["duration_seconds"], 2.0);
    let download = front.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(download.status(), 200);
    assert!(
        download.bytes().await.unwrap()[..] == earlier_bytes[..],
        "the job was encoded again instead of using the stored audio"
    );
    assert_eq!(front.outbox(1).await.len(), 1, "one email");
}
