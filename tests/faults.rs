//! Faults injected into a running service: each test pushes jobs, breaks
//! one dependency, heals it, lets the system settle, and then counts every
//! job it was told was accepted as completed, failed with a reason, lost or
//! duplicated, with outputs and emails. Lost and duplicated must be zero.

mod common;

use std::time::{Duration, Instant};

#[tokio::test]
async fn mail_held_up_by_an_smtp_outage_goes_out_once_after_recovery() {
    let maildir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    // The SMTP server is down from the start.
    let app =
        common::spawn_app_with(|config| config.smtp_url = Some(format!("smtp://127.0.0.1:{port}")))
            .await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let ids = app.submit_many(&token, &video, 4).await;
    for id in &ids {
        let job = app.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "{job}");
    }
    // Give the mailer time to fail a few times.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let _smtp = common::SmtpServer::start(port, maildir.path());
    let started = Instant::now();
    while common::SmtpServer::mails(maildir.path()).len() < ids.len() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "mail did not go out after the SMTP server came back: {} of {}",
            common::SmtpServer::mails(maildir.path()).len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Settle: nothing more arrives.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mails = common::SmtpServer::mails(maildir.path());
    assert_eq!(mails.len(), ids.len(), "duplicated mail");
    for id in &ids {
        assert_eq!(common::mails_about(&mails, id), 1, "job {id}");
    }
}

#[tokio::test]
async fn a_nats_crash_during_an_upload_burst_loses_no_accepted_job() {
    let mut app = common::spawn_app_with(|config| config.max_unfinished_jobs = 100).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);

    // Twenty uploads in flight, and NATS killed in the middle of them.
    let mut uploads = Vec::new();
    for i in 0..20 {
        if i == 10 {
            app.kill_test_nats().await;
        }
        let api = common::Api::new(&app.base);
        let (token, video) = (token.clone(), video.clone());
        uploads.push(tokio::spawn(async move {
            let response = api.upload(&token, &video, None).await;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body)
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for upload in uploads {
        let (status, body) = upload.await.unwrap();
        match status {
            202 => accepted.push(body["id"].as_str().unwrap().to_string()),
            // While NATS is down: a clear 503, never a 202.
            503 => {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                refused += 1;
            }
            other => panic!("upload answered {other}: {body}"),
        }
    }
    // Uploads made while it is down are refused, not accepted.
    let down = app.upload(&token, &video, None).await;
    assert_eq!(down.status(), 503);

    app.restart_test_nats().await;
    let mut completed = 0;
    for id in &accepted {
        let job = app.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "accepted job {id}: {job}");
        completed += 1;
    }
    let listed = app.listed_ids(&token).await;
    for id in &accepted {
        assert_eq!(
            listed.iter().filter(|l| *l == id).count(),
            1,
            "job {id} listed once"
        );
    }
    let mails = app.outbox(accepted.len()).await;
    for id in &accepted {
        assert_eq!(common::mails_about(&mails, id), 1, "one email for {id}");
    }
    println!(
        "{} accepted and completed, {refused} refused with 503, lost 0",
        completed
    );
}

#[tokio::test]
async fn a_job_that_keeps_failing_for_transient_reasons_is_dead_lettered_failed_and_mailed() {
    let app = common::spawn_app().await;
    // The transcoder's work dir cannot be created (a file is in its way): a
    // fault of the machine, not of the upload, so it is retried.
    std::fs::write(app.data_dir().join("transcode"), b"in the way").unwrap();
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;

    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    let reason = job["error"].as_str().unwrap();
    assert!(reason.contains("after 5 attempts"), "{reason}");
    assert_eq!(job["attempts"], 5, "{job}");

    // A copy of the work item waits in the dead-letter stream, with why.
    let client = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let dead = js.get_stream("MEDIAJET_DEAD").await.unwrap();
    let copy = dead
        .get_last_raw_message_by_subject("mediajet.dead.transcode")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&copy.payload).contains(&id));
    let headers = copy.headers;
    assert!(
        headers.get("Mediajet-Dead-Reason").is_some(),
        "no reason on the dead letter"
    );
    // Its owner hears about it once.
    let mails = app.outbox(1).await;
    assert_eq!(common::mails_about(&mails, &id), 1);
}

/// A small tmpfs mounted for the test and unmounted when it ends.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// `None` where this process may not mount (not root, no privileges).
    fn mount(at: &std::path::Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_full_work_disk_is_a_transient_error_and_the_job_completes_once_space_frees() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), 4 * 1024 * 1024) else {
        println!("skipped: mounting a tmpfs is not permitted here");
        return;
    };
    // Nearly full: a little room, not enough for the upload.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 4 * 1024 * 1024 - 64 * 1024]).ok();
    let app = common::spawn_app().await;
    std::os::unix::fs::symlink(&disk.0, app.data_dir().join("transcode")).unwrap();
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 8);
    assert!(std::fs::metadata(&video).unwrap().len() > 64 * 1024);
    let id = app.submit(&token, &video).await;

    // The job is retried, saying why, and serves no partial audio.
    let started = Instant::now();
    loop {
        let job: serde_json::Value = app.job(&token, &id).await.json().await.unwrap();
        let error = job["error"].as_str().unwrap_or_default();
        if error.contains("No space left") {
            assert!(error.starts_with("retrying"), "{job}");
            assert_ne!(job["state"], "failed", "{job}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no disk error seen: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(output.status(), 409);

    // Space frees: the next attempt succeeds, with all of the audio.
    std::fs::remove_file(&filler).unwrap();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert!(job["attempts"].as_u64().unwrap() >= 2, "{job}");
    let duration = job["output"]["duration_seconds"].as_f64().unwrap();
    assert!((duration - 8.0).abs() < 0.3, "{duration}");
    assert_eq!(common::mails_about(&app.outbox(1).await, &id), 1);
}

/// A `mediajet run --actors transcoder` process, as a separate node would
/// run it; `kill_on_drop` ends it with the test.
async fn transcoder_process(
    nats_url: &str,
    ffmpeg: &std::path::Path,
    data_dir: &std::path::Path,
) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mediajet"))
        .args(["run", "--actors", "transcoder", "--transcoders", "1"])
        .args(["--http", "127.0.0.1:0", "--nats-url", nats_url])
        .arg("--ffmpeg")
        .arg(ffmpeg)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run mediajet");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let up = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the transcoder did not start")
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(up.starts_with("mediajet is up"), "{up}");
    child
}

#[tokio::test]
async fn a_transcoder_killed_mid_encode_leaves_its_job_to_be_done_once_elsewhere() {
    use mediajet::config::ActorKind;
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let front = common::spawn_app_with(|config| {
        config.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let token = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "clip.mp4", 6);

    let mut first = transcoder_process(&front.ready.nats_url, &slow, &tools.path().join("a")).await;
    let id = front.submit(&token, &video).await;
    front.wait_until_running(&token, &id).await;
    first.kill().await.unwrap();

    // Another node takes the job once its ack wait has run out.
    let _second = transcoder_process(&front.ready.nats_url, &slow, &tools.path().join("b")).await;
    let job = front.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    let duration = job["output"]["duration_seconds"].as_f64().unwrap();
    assert!((duration - 6.0).abs() < 0.3, "{duration}");
    let mails = front.outbox(1).await;
    assert_eq!(common::mails_about(&mails, &id), 1, "one email");
    // Settle, then nothing more: no second completion, no second email.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(common::mails_about(&front.outbox(1).await, &id), 1);
    let job: serde_json::Value = front.job(&token, &id).await.json().await.unwrap();
    assert_eq!(job["attempts"], 2, "{job}");
}
