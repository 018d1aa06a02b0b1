//! `mediajet login` and `mediajet submit`, run as the real binary against a
//! running service: the audio lands on disk and the exit code tells how the
//! job ended.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mediajet");

/// `mediajet <args>` with its own config dir (for the saved token).
fn mediajet(config_home: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("MEDIAJET_TOKEN")
        .env_remove("MEDIAJET_SERVER");
    command
}

/// `mediajet login` as ann, with her password.
fn log_in(config_home: &Path, server: &str) -> Command {
    let mut login = mediajet(config_home);
    login
        .args(["login", "--server", server, "--email", "ann@example.com"])
        .env("MEDIAJET_PASSWORD", common::USER_PASSWORD);
    login
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run mediajet"))
        .await
        .unwrap()
}

#[tokio::test]
async fn login_then_submit_saves_the_audio_and_exits_zero() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let home = tempfile::tempdir().unwrap();

    let mut login = mediajet(home.path());
    login
        .args(["login", "--server", &app.base, "--email", "ann@example.com"])
        .env("MEDIAJET_PASSWORD", "wrong password");
    let refused = run(login).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");

    let logged_in = run(log_in(home.path(), &app.base)).await;
    assert!(logged_in.status.success(), "{logged_in:?}");
    let saved = home.path().join("mediajet/credentials.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the token file is readable by others");

    let video = common::make_video(app.dir.path(), "holiday.mp4", 2);
    let out = tempfile::tempdir().unwrap();
    let mut submit = mediajet(home.path());
    submit
        .arg("submit")
        .arg(&video)
        .args([
            "--format",
            "opus",
            "--loudness",
            "podcast-mono",
            "--end",
            "1.5",
        ])
        .args(["--tag", "title=Sea trip"])
        .arg("--output")
        .arg(out.path());
    let submitted = run(submit).await;
    let stdout = String::from_utf8_lossy(&submitted.stdout);
    assert!(submitted.status.success(), "{submitted:?}");
    assert!(stdout.contains("queued"), "{stdout}");
    let audio = out.path().join("holiday.opus");
    assert!(stdout.contains(&audio.display().to_string()), "{stdout}");
    let probed = common::probe(&audio);
    assert_eq!(probed.codec, "opus");
    assert!((probed.duration - 1.5).abs() < 0.1, "{}", probed.duration);
    let jobs = app.list_jobs(&token).await;
    let job = &jobs[0];
    assert_eq!(job["loudness"], "podcast-mono", "{jobs}");
    assert_eq!(job["end"], 1.5, "{jobs}");
    assert_eq!(job["title"], "Sea trip", "{jobs}");
    assert_eq!(job["output"]["loudness"]["target"]["integrated"], -19.0);

    // The file is there now: not replaced without --force.
    let mut again = mediajet(home.path());
    again
        .arg("submit")
        .arg(&video)
        .args(["--format", "opus", "--output"])
        .arg(out.path());
    let again = run(again).await;
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[tokio::test]
async fn submit_exit_codes_tell_failed_refused_canceled_and_unavailable() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| config.transcoder.ffmpeg = slow).await;
    let token = app.new_user("ann@example.com").await;
    let home = tempfile::tempdir().unwrap();
    let submit = |file: &Path, extra: &[&str]| {
        let mut command = mediajet(home.path());
        command
            .arg("submit")
            .arg(file)
            .args(["--server", &app.base, "--token", &token])
            .args(extra)
            .current_dir(home.path());
        command
    };

    // Not a video: the job fails (1), with the reason.
    let text = app.dir.path().join("notes.mp4");
    std::fs::write(&text, "this is not a video").unwrap();
    let failed = run(submit(&text, &[])).await;
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("the job failed"));

    // Options the format cannot take: refused (2) before anything runs.
    let video = common::make_video(app.dir.path(), "clip.mp4", 30);
    let refused = run(submit(&video, &["--format", "flac", "--bitrate", "128"])).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("lossless"));
    let missing = run(submit(Path::new("/nonexistent/clip.mp4"), &[])).await;
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    // A destination that does not exist: refused (2) before the upload,
    // so the service has no job of it.
    for output in ["no-such-dir/", "no-such-dir/clip.mp3"] {
        let nowhere = run(submit(&video, &["--output", output])).await;
        assert_eq!(nowhere.status.code(), Some(2), "{nowhere:?}");
        let stderr = String::from_utf8_lossy(&nowhere.stderr);
        assert!(stderr.contains("not a directory"), "{stderr}");
    }
    assert_eq!(app.listed_ids(&token).await.len(), 1, "only the failed job");

    // Canceled by its owner while the client follows it: 3.
    let mut following = submit(&video, &[]);
    following.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = following.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let id = first_line
        .strip_prefix("job ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in {first_line:?}"))
        .to_string();
    app.wait_until_running(&token, &id).await;
    assert_eq!(
        app.delete(&token, &format!("/v1/jobs/{id}")).await.status(),
        202
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(3));

    // Nobody listening: unavailable (4).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut command = mediajet(home.path());
    command
        .arg("submit")
        .arg(&video)
        .args(["--server", &nowhere, "--token", &token]);
    let unavailable = run(command).await;
    assert_eq!(unavailable.status.code(), Some(4), "{unavailable:?}");
}

#[tokio::test]
async fn submit_renews_an_expired_saved_token_with_the_refresh_token() {
    let app = common::spawn_app_with(|config| {
        config.shared.token_ttl = std::time::Duration::from_secs(1);
        // A spent token counts as a replay at once, not as a retry.
        config.auth.refresh_grace = std::time::Duration::ZERO;
    })
    .await;
    app.new_user("ann@example.com").await;
    let home = tempfile::tempdir().unwrap();
    let mut login = mediajet(home.path());
    login
        .args(["login", "--server", &app.base, "--email", "ann@example.com"])
        .env("MEDIAJET_PASSWORD", common::USER_PASSWORD);
    assert!(run(login).await.status.success());
    let saved = home.path().join("mediajet/credentials.json");
    let read = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap()
    };
    let before = read();
    // Wait until the saved access token is past its life and the
    // verifiers' leeway, and refused.
    let started = std::time::Instant::now();
    while app
        .get(before["token"].as_str().unwrap(), "/v1/jobs")
        .await
        .status()
        != 401
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the saved access token never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let video = common::make_video(app.dir.path(), "late.mp4", 1);
    let out = tempfile::tempdir().unwrap();
    let mut submit = mediajet(home.path());
    submit
        .arg("submit")
        .arg(&video)
        .arg("--output")
        .arg(out.path());
    let submitted = run(submit).await;
    assert!(submitted.status.success(), "{submitted:?}");
    assert!(out.path().join("late.mp3").exists());

    let after = read();
    assert_ne!(
        after["refresh_token"], before["refresh_token"],
        "not renewed"
    );
    let replay = app.refresh(&before["refresh_token"]).await;
    assert_eq!(replay.status(), 401, "the spent refresh token still works");
}

#[tokio::test]
async fn submit_goes_on_with_the_upload_a_stopped_run_left_unfinished() {
    let app = common::spawn_app().await;
    app.new_user("ann@example.com").await;
    let home = tempfile::tempdir().unwrap();
    let logged_in = run(log_in(home.path(), &app.base)).await;
    assert!(logged_in.status.success(), "{logged_in:?}");
    let video = common::make_raw_video(app.dir.path(), "lecture.avi", 6);
    let size = std::fs::metadata(&video).unwrap().len();
    let out = tempfile::tempdir().unwrap();
    let submit = |extra: &[&str]| {
        let mut submit = mediajet(home.path());
        submit
            .arg("submit")
            .arg(&video)
            .args(["--format", "mp3", "--output"])
            .arg(out.path())
            .args(extra);
        submit
    };

    // A first run on a slow uplink, stopped once part of the upload is in.
    let mut first = submit(&["--limit-rate", "2M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let unfinished = home.path().join("mediajet/uploads.json");
    let token = app.login("ann@example.com", common::USER_PASSWORD).await;
    let started = std::time::Instant::now();
    let stored = loop {
        let url = std::fs::read_to_string(&unfinished)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|saved| {
                let uploads = saved["uploads"].as_object()?.clone();
                uploads.values().next()?[0].as_str().map(str::to_string)
            });
        if let Some(url) = url {
            let head = app
                .http
                .head(&url)
                .bearer_auth(&token)
                .header("Tus-Resumable", "1.0.0")
                .send()
                .await
                .unwrap();
            let offset: u64 = head.headers()["upload-offset"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            if offset >= 4 << 20 {
                break offset;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the first run stored too little"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    first.kill().unwrap();
    first.wait().unwrap();

    let second = run(submit(&[])).await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{second:?}");
    let resumed: u64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("resuming the upload at byte "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|offset| offset.parse().ok())
        .unwrap_or_else(|| panic!("the second run did not resume: {stderr}"));
    assert!(
        resumed >= stored && resumed < size,
        "{resumed} of {size}, {stored} stored"
    );
    let probed = common::probe(&out.path().join("lecture.mp3"));
    assert!((probed.duration - 6.0).abs() < 0.5, "{}", probed.duration);
    assert_eq!(
        app.listed_ids(&token).await.len(),
        1,
        "a second job was made"
    );
    let left = std::fs::read_to_string(&unfinished).unwrap();
    assert!(
        !left.contains("/v1/uploads/"),
        "the finished upload is still listed: {left}"
    );
}
