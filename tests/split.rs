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
