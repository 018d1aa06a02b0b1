//! Starting, stopping and restarting, health endpoints, and mail over SMTP.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{spawn_app, spawn_app_with, spawn_app_with_own_nats};
use serde_json::Value;

#[tokio::test]
async fn users_jobs_and_outputs_survive_a_restart() {
    let mut app = spawn_app_with_own_nats().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "keep.mp4", 2);
    let id = app.submit(&token, &video).await;
    assert_eq!(
        app.wait_until_finished(&token, &id).await["state"],
        "completed"
    );

    app.restart().await;

    let token = app.login("ann@example.com", "user-password-1").await;
    let job: Value = app.job(&token, &id).await.json().await.unwrap();
    assert_eq!(job["state"], "completed");
    let list = app.list_jobs(&token).await;
    assert_eq!(list[0]["id"], id.as_str());
    let download = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(download.status(), 200);
    let mp3 = app.dir.path().join("after-restart.mp3");
    std::fs::write(&mp3, download.bytes().await.unwrap()).unwrap();
    assert_eq!(common::probe(&mp3).codec, "mp3");
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let app = spawn_app().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(
        ready["checks"],
        serde_json::json!({
            "nats": true,
            "jetstream": true,
            "surrealdb": true,
            "actors": {"auth": true, "ingest": true, "mailer": true, "transcoder": true},
        })
    );

    app.admin_token().await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("mediajet_http_requests_total{route=\"/v1/login\",status=\"2xx\"}"),
        "{text}"
    );
    assert!(
        text.contains("mediajet_logins_total{outcome=\"success\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn readiness_fails_with_the_reason_when_nats_is_gone() {
    let mut app = spawn_app().await;
    app.stop_test_nats().await;
    let started = Instant::now();
    loop {
        let response = app.http.get(app.url("/readyz")).send().await.unwrap();
        if response.status() == 503 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["checks"]["nats"], false);
            assert!(body["error"]["message"].as_str().unwrap().contains("nats"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still ready without NATS"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn notifications_are_delivered_to_a_real_smtp_server() {
    let maildir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _smtp = common::SmtpServer::start(port, maildir.path());

    let app =
        spawn_app_with(|config| config.mailer.smtp_url = Some(format!("smtp://127.0.0.1:{port}")))
            .await;
    let token = app.new_user("liz@example.com").await;
    let video = common::make_video(app.dir.path(), "song.mp4", 1);
    let id = app.submit(&token, &video).await;
    assert_eq!(
        app.wait_until_finished(&token, &id).await["state"],
        "completed"
    );

    let started = Instant::now();
    let mail = loop {
        let found = common::SmtpServer::mails(maildir.path());
        if let Some(mail) = found.into_iter().next() {
            break mail;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no mail arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mail = mail.replace("=\r\n", "").replace("=\n", "");
    assert!(mail.contains("liz@example.com"), "{mail}");
    assert!(mail.contains(&id), "{mail}");
    assert!(
        app.outbox(0).await.is_empty(),
        "no outbox files when SMTP is used"
    );
}

/// Runs the real binary, as a user of `mediajet up` would.
fn mediajet_up(data_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mediajet"));
    command
        .args([
            "up",
            "--http",
            "127.0.0.1:0",
            "--nats-port",
            "0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("MEDIAJET_ADMIN_EMAIL")
        .env_remove("MEDIAJET_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    command.spawn().expect("run mediajet")
}

#[tokio::test]
async fn mediajet_up_creates_a_first_admin_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = mediajet_up(dir.path(), &[]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = stdout.next().unwrap().unwrap();
    let url = up.strip_prefix("mediajet is up: ").expect(&up).to_string();
    let admin = stdout.next().unwrap().unwrap();
    assert!(
        admin.starts_with("created admin@localhost with password "),
        "{admin}"
    );
    let password = admin.split(' ').nth(4).unwrap().to_string();

    let http = reqwest::Client::new();
    let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let login = http
        .post(format!("{url}/v1/login"))
        .basic_auth("admin@localhost", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    let nats_pid = local_nats_pid(dir.path());

    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    // The nats-server child is gone too.
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(nats_pid, 0) } == 0;
    assert!(!alive, "nats-server {nats_pid} outlived mediajet");

    // A second start finds the admin and prints no new password.
    let mut again = mediajet_up(dir.path(), &[]);
    let mut stdout = BufReader::new(again.stdout.take().unwrap()).lines();
    assert!(
        stdout
            .next()
            .unwrap()
            .unwrap()
            .starts_with("mediajet is up")
    );
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(again.id() as i32, libc::SIGTERM);
    }
    assert!(stdout.next().is_none(), "no second password is printed");
    assert!(again.wait().unwrap().success());
}

/// The pid of the nats-server `mediajet up` started, from its ports file.
fn local_nats_pid(data_dir: &std::path::Path) -> i32 {
    std::fs::read_dir(data_dir.join("nats/ports"))
        .unwrap()
        .filter_map(Result::ok)
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".ports")?
                .rsplit('_')
                .next()?
                .parse::<i32>()
                .ok()
        })
        .expect("the nats-server ports file")
}

#[test]
fn the_local_nats_server_does_not_outlive_a_killed_mediajet() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = mediajet_up(dir.path(), &[]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        stdout
            .next()
            .unwrap()
            .unwrap()
            .starts_with("mediajet is up")
    );
    let nats_pid = local_nats_pid(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    // SAFETY: signal 0 only asks whether the process exists.
    while unsafe { libc::kill(nats_pid, 0) } == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nats-server {nats_pid} outlived a killed mediajet"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_missing_tool_or_a_wrong_command_line_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = mediajet_up(dir.path(), &[("MEDIAJET_FFMPEG", "/nonexistent/ffmpeg")])
        .wait_with_output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`ffmpeg` was not found"), "{stderr}");
    assert!(stderr.contains("apt-get install ffmpeg"), "{stderr}");

    let output = mediajet_up(
        dir.path(),
        &[("MEDIAJET_NATS_SERVER_BIN", "/nonexistent/nats-server")],
    )
    .wait_with_output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nats-server-bin"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_mediajet"))
        .args(["run", "--actors", "transcoder"])
        .env_remove("MEDIAJET_NATS_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`run` needs --nats-url"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_mediajet"))
        .args([
            "run",
            "--actors",
            "encoder",
            "--nats-url",
            "nats://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'encoder'"), "{stderr}");
}

#[tokio::test]
async fn stopping_mid_encode_hands_the_job_back_and_it_completes_after_restart() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let mut app = common::spawn_app_with_own_nats_and(|config| {
        config.transcoder.ffmpeg = slow.clone();
        config.transcoder.drain_timeout = Duration::from_secs(1);
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "long.mp4", 20);
    let id = app.submit(&token, &video).await;
    app.wait_until_running(&token, &id).await;

    let stopping = Instant::now();
    app.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "stop took {:?}",
        stopping.elapsed()
    );

    app.config.transcoder.ffmpeg = "ffmpeg".into();
    app.restart().await;
    let token = app.login("ann@example.com", "user-password-1").await;
    let done = app.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        done["attempts"], 2,
        "the interrupted attempt and the finished one"
    );
    assert_eq!(app.outbox(1).await.len(), 1, "one email for the job");
}

#[tokio::test]
async fn stopping_lets_an_encode_that_fits_the_drain_timeout_finish() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let mut app = common::spawn_app_with(|config| {
        config.transcoder.ffmpeg = slow.clone();
        config.transcoder.drain_timeout = Duration::from_secs(30);
    })
    .await;
    let token = app.new_user("bob@example.com").await;
    let video = common::make_video(app.dir.path(), "short.mp4", 4);
    let id = app.submit(&token, &video).await;
    app.wait_until_running(&token, &id).await;
    app.stop().await;

    // The service is down; ask the jobs bucket directly.
    let nats = async_nats::connect(app.ready.nats_url.as_str())
        .await
        .unwrap();
    let jobs = async_nats::jetstream::new(nats)
        .get_key_value("mediajet_jobs")
        .await
        .unwrap();
    let job: Value =
        serde_json::from_slice(&jobs.get(id.as_str()).await.unwrap().unwrap()).unwrap();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["attempts"], 1);
}

#[tokio::test]
async fn the_local_nats_server_takes_only_the_password_kept_in_the_data_dir() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app_with_own_nats().await;
    let path = app.data_dir().join("nats/password");
    let password = std::fs::read_to_string(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the password file is readable by others"
    );
    let anonymous = async_nats::ConnectOptions::new()
        .max_reconnects(1)
        .connect(app.ready.nats_url.as_str())
        .await;
    assert!(anonymous.is_err(), "an anonymous client got in");
    let guessed =
        async_nats::ConnectOptions::with_user_and_password("mediajet".into(), "guess".into())
            .connect(app.ready.nats_url.as_str())
            .await;
    assert!(guessed.is_err(), "a wrong password got in");
    let operator = async_nats::ConnectOptions::with_user_and_password("mediajet".into(), password)
        .connect(app.ready.nats_url.as_str())
        .await
        .expect("the kept password works");
    let js = async_nats::jetstream::new(operator);
    js.get_key_value("mediajet_jobs")
        .await
        .expect("and reaches JetStream");
}
