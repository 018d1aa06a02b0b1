//! The same binary running different actors in different processes.

use crate::common;

use crate::common::{spawn_app_on, spawn_app_with};
use mediajet::config::ActorKind;
use std::time::Duration;

#[tokio::test]
async fn actors_split_over_processes_share_the_work_through_nats() {
    let front = spawn_app_with(|config| {
        config.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let mut transcoders = Vec::new();
    for _ in 0..2 {
        transcoders.push(
            spawn_app_on(&front.ready.nats_url, |config| {
                config.shared.actors = vec![ActorKind::Transcoder];
                config.transcoder.transcoders = Some(1);
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
        serde_json::json!({"nats": true, "jetstream": true, "actors": {"transcoder": true}})
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
        config.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
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
        config.shared.actors = vec![ActorKind::Transcoder];
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

#[tokio::test]
async fn one_trace_id_follows_a_job_from_its_upload_to_its_email_across_processes() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let front = spawn_app_with(|config| {
        config.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest];
    })
    .await;
    // The transcoder and the mailer in a process of their own, whose log
    // is kept.
    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_mediajet"))
        .args([
            "run",
            "--actors",
            "transcoder,mailer",
            "--http",
            "127.0.0.1:0",
        ])
        .args(["--nats-url", &front.ready.nats_url])
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("run mediajet");

    let token = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "clip.mp4", 1);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(&video).unwrap()).file_name("clip.mp4"),
    );
    let response = front
        .http
        .post(front.url("/v1/jobs"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job: serde_json::Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let done = front.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    let mails = common::read_outbox(data.path(), 1).await;
    assert_eq!(common::mails_about(&mails, &id), 1, "one email");

    // The other process's log names the client's trace on the attempt and
    // on the email, which reached it only through NATS headers. The attempt
    // logs its end after its ack, which may come after the email went out,
    // so the test waits for both lines.
    let attempt_traced =
        |l: &str| l.contains("attempt{") && l.contains(&id) && l.contains("job finished");
    let mail_traced = |l: &str| l.contains("mail{") && l.contains("notification sent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        let traced: Vec<&str> = log.lines().filter(|l| l.contains(TRACE_ID)).collect();
        let attempt = traced.iter().any(|l| attempt_traced(l));
        let mail = traced.iter().any(|l| mail_traced(l));
        if attempt && mail {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "traced attempt: {attempt}, traced email: {mail}, in:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
