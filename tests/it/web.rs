//! The web page, driven in a real headless browser (Debian's Chromium via
//! playwright-core, see `tests/web/journey.mjs`): log in, drop a video, see
//! the job complete live, download and decode the audio, cancel a running
//! job, renew a refused access token, log out. The screenshot of the
//! finished page is kept under the target dir.

use crate::common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `tests/web/<script>` in Node with `vars` in its environment;
/// returns the JSON summary it prints.
async fn run_script(script: &str, vars: &[(&str, &std::ffi::OsStr)]) -> Value {
    let mut command = Command::new("node");
    command.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/web")
            .join(script),
    );
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node must be installed for the tests");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("Cannot find package"),
        "playwright-core is missing: run scripts/test.sh, which installs it"
    );
    assert!(output.status.success(), "{script} failed:\n{stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no summary ({e})"))
}

#[tokio::test]
async fn the_web_page_converts_a_dropped_video_and_cancels_a_running_one() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| config.transcoder.ffmpeg = slow).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "holiday.mp4", 3);
    let long = common::make_video(app.dir.path(), "lecture.mp4", 60);
    let out = tempfile::tempdir().unwrap();

    // The page and its assets come from the binary, under a strict policy.
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let seen = run_script(
        "journey.mjs",
        &[
            ("BASE_URL", app.base.as_ref()),
            ("EMAIL", "ann@example.com".as_ref()),
            ("PASSWORD", common::USER_PASSWORD.as_ref()),
            ("VIDEO", video.as_os_str()),
            ("LONG_VIDEO", long.as_os_str()),
            ("OUT_DIR", out.path().as_os_str()),
        ],
    )
    .await;

    assert_eq!(seen["external_requests"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    // The failing requests are the wrong password, the token the test made
    // the server refuse, and the check after logging out.
    assert_eq!(
        seen["failed_requests"],
        serde_json::json!([
            "401 POST /v1/login",
            "401 GET /v1/jobs?limit=50",
            "401 GET /v1/jobs"
        ]),
        "{seen}"
    );
    assert_eq!(seen["still_logged_in"], true, "renewal failed: {seen}");
    assert_eq!(seen["after_logout"], 401, "logout left the token working");
    assert!(
        seen["login_error"].as_str().unwrap().contains("wrong"),
        "{seen}"
    );

    // The list changed live from queued or running to completed.
    let states: Vec<&str> = seen["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert!(!states[0].starts_with("completed"), "{states:?}");
    assert!(
        states.last().unwrap().starts_with("completed"),
        "{states:?}"
    );
    assert!(
        states
            .iter()
            .any(|s| s.starts_with("running") && s.contains('%')),
        "no live progress was shown: {states:?}"
    );
    assert!(
        seen["running_detail"].as_str().unwrap().contains("s left"),
        "{seen}"
    );

    // The downloaded file is the MP3 of the video.
    let downloaded = Path::new(seen["downloaded"].as_str().unwrap());
    assert_eq!(downloaded.file_name().unwrap(), "holiday.mp3");
    let probed = common::probe(downloaded);
    assert_eq!(probed.codec, "mp3");
    assert!((probed.duration - 3.0).abs() < 0.3, "{}", probed.duration);

    // The service agrees with what the page showed.
    let first = app.job(&token, seen["first_job"].as_str().unwrap()).await;
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["state"], "completed");
    // The options panel asked for loudness, a title and a FLAC too; the
    // page shows the waveform, the figures, both downloads and a player.
    assert_eq!(first["loudness"], "podcast", "{first}");
    assert_eq!(first["title"], "Holiday, day 1", "{first}");
    assert_eq!(first["outputs"][1]["format"], "flac", "{first}");
    assert_eq!(seen["waveform_width"], 1800, "{seen}");
    assert_eq!(
        seen["download_buttons"],
        serde_json::json!(["Download mp3", "flac"]),
        "{seen}"
    );
    let loudness = seen["loudness"].as_str().unwrap();
    assert!(loudness.contains("LUFS (target -16.0)"), "{loudness}");
    let played = seen["player_seconds"].as_f64().unwrap();
    assert!((played - 3.0).abs() < 0.3, "{seen}");
    // The player streams the signed link (no token) in byte ranges.
    let source = seen["player_source"].as_str().unwrap();
    assert!(
        source.starts_with(&format!("/d/{}/0", first["id"].as_str().unwrap())),
        "{seen}"
    );
    let ranges = seen["player_ranges"].as_array().unwrap();
    assert!(
        ranges
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("206 bytes=")),
        "the player asked for no byte range: {seen}"
    );
    let second = app.job(&token, seen["second_job"].as_str().unwrap()).await;
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["state"], "canceled");
    assert_eq!(second["format"], "opus");

    let screenshot = std::fs::read(seen["screenshot"].as_str().unwrap()).unwrap();
    assert!(
        screenshot.starts_with(b"\x89PNG"),
        "the screenshot is not a PNG"
    );
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-finished-page.png");
    std::fs::write(&kept, &screenshot).unwrap();
    println!("screenshot of the finished page: {}", kept.display());
}

#[tokio::test]
async fn the_web_page_pauses_resumes_and_goes_on_with_an_upload_cut_off_by_a_reload() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    // About 9 MB: some seconds on the slow uplink the browser is given.
    let video = common::make_raw_video(app.dir.path(), "lecture.avi", 3);

    let seen = run_script(
        "resume.mjs",
        &[
            ("BASE_URL", app.base.as_ref()),
            ("EMAIL", "ann@example.com".as_ref()),
            ("PASSWORD", common::USER_PASSWORD.as_ref()),
            ("VIDEO", video.as_os_str()),
        ],
    )
    .await;
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    // One upload, created once: after the reload it went on, from an
    // offset past the start.
    println!("the resumed upload: {seen}");
    assert_eq!(seen["creations"], 1, "{seen}");
    let last_part: u64 = seen["resumed_parts"][0]
        .as_str()
        .and_then(|offset| offset.parse().ok())
        .expect("a part after the reload");
    assert!(last_part > 0, "the upload started again from 0: {seen}");
    let job = app.job(&token, seen["job"].as_str().unwrap()).await;
    let job: Value = job.json().await.unwrap();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["filename"], "lecture.avi", "{job}");
}

#[test]
fn the_embedded_tus_client_is_the_one_npm_installs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let embedded = std::fs::read_to_string(root.join("src/actors/ingest/web/tus.min.js")).unwrap();
    let installed = root.join("tests/web/node_modules/tus-js-client/dist/tus.min.js");
    let installed = std::fs::read_to_string(&installed)
        .expect("tus-js-client is missing: run scripts/test.sh, which installs it");
    // The embedded copy adds one line: the licence and where it came from.
    let (banner, rest) = embedded.split_once('\n').unwrap();
    assert!(
        banner.contains("tus-js-client 4.3.1") && banner.contains("MIT"),
        "{banner}"
    );
    assert_eq!(rest, installed, "the embedded tus.min.js is not npm's");
    let lock = std::fs::read(root.join("tests/web/package-lock.json")).unwrap();
    let lock: Value = serde_json::from_slice(&lock).unwrap();
    assert_eq!(
        lock["packages"]["node_modules/tus-js-client"]["version"], "4.3.1",
        "the lock file pins another version"
    );
}

#[tokio::test]
async fn a_web_app_on_an_allowed_origin_uploads_with_tus_and_others_are_refused_by_the_browser() {
    // The app: one page, served on its own port, that loads the tus client
    // from mediajet. Under `localhost` it is another origin than under
    // `127.0.0.1`, though the same server serves it.
    let port = common::free_port();
    let allowed = format!("http://127.0.0.1:{port}");
    let app = common::spawn_app_with(|config| {
        config.ingest.cors_origins = vec![allowed.clone()];
    })
    .await;
    let site = tempfile::tempdir().unwrap();
    let page = format!(
        "<!doctype html><title>an app</title><script src=\"{}/tus.min.js\"></script>",
        app.base
    );
    std::fs::write(site.path().join("index.html"), page).unwrap();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(site.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 must be installed for the tests");
    common::wait_for_port(port);
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);

    let other = format!("http://localhost:{port}");
    let seen = run_script(
        "cross_origin.mjs",
        &[
            ("BASE_URL", app.base.as_ref()),
            ("TOKEN", token.as_ref()),
            ("VIDEO", video.as_os_str()),
            ("ALLOWED_ORIGIN", allowed.as_ref()),
            ("OTHER_ORIGIN", other.as_ref()),
        ],
    )
    .await;
    let _ = server.kill();
    let _ = server.wait();
    // The allowed app read the job from the answer's exposed headers.
    let job = seen["allowed"]["job"]
        .as_str()
        .unwrap_or_else(|| panic!("{seen}"));
    let job = app.wait_until_finished(&token, job).await;
    assert_eq!(job["state"], "completed", "{job}");
    // The other origin's script never saw an answer.
    assert!(seen["other"]["error"].is_string(), "{seen}");
    assert_eq!(app.listed_ids(&token).await.len(), 1, "{seen}");
}

#[tokio::test]
async fn the_account_panel_makes_and_revokes_keys_and_admins_manage_users_on_theirs() {
    let app = common::spawn_app().await;
    app.new_user("ann@example.com").await;
    let out = tempfile::tempdir().unwrap();
    let seen = run_script(
        "account.mjs",
        &[
            ("BASE_URL", app.base.as_ref()),
            ("EMAIL", "ann@example.com".as_ref()),
            ("PASSWORD", common::USER_PASSWORD.as_ref()),
            ("NEW_PASSWORD", "changed-password-9".as_ref()),
            ("ADMIN_EMAIL", common::ADMIN_EMAIL.as_ref()),
            ("ADMIN_PASSWORD", common::ADMIN_PASSWORD.as_ref()),
            ("OUT_DIR", out.path().as_os_str()),
        ],
    )
    .await;
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["users_button_for_user"], false, "{seen}");
    assert_eq!(seen["who"], "ann@example.com · user", "{seen}");
    assert_eq!(seen["notify_shown"], "all", "{seen}");
    assert_eq!(seen["notify_saved"], "failures", "{seen}");
    // The key was shown once, listed by name and scope, worked, and
    // stopped working when revoked on the page.
    assert_eq!(seen["key_prefix"], "mjk_", "{seen}");
    let listed = seen["listed_keys"][0].as_str().unwrap();
    assert!(listed.starts_with("nightly · jobs:read"), "{seen}");
    assert_eq!(seen["key_status_before"], 200, "{seen}");
    assert_eq!(seen["key_status_after"], 401, "{seen}");
    assert!(
        seen["hook_refused"]
            .as_str()
            .unwrap()
            .contains("not a public address"),
        "{seen}"
    );
    assert_eq!(seen["hook_secret_prefix"], "whsec_", "{seen}");
    assert_eq!(
        seen["listed_hooks"],
        serde_json::json!(["https://example.com/hooks/mediajet · job.completed, job.failed"]),
        "{seen}"
    );
    assert_eq!(seen["feed_status"], 200, "{seen}");
    assert!(
        seen["feed_state"].as_str().unwrap().starts_with("On since"),
        "{seen}"
    );
    assert_eq!(seen["feed_status_off"], 404, "{seen}");
    assert!(
        seen["wrong_password"].as_str().unwrap().contains("wrong"),
        "{seen}"
    );
    let old = app
        .try_login("ann@example.com", common::USER_PASSWORD)
        .await;
    assert_eq!(old.status(), 401, "the old password still works");
    // The admin saw the user, and their disabling counted at once.
    assert!(
        seen["listed_users"]
            .to_string()
            .contains("ann@example.com · user"),
        "{seen}"
    );
    assert_eq!(seen["user_token_when_disabled"], 401, "{seen}");
    assert_eq!(seen["user_token_when_enabled"], 401, "{seen}");
    assert_eq!(seen["login_when_enabled"], 200, "{seen}");
    assert!(
        !seen["listed_after_removal"].to_string().contains("ann@"),
        "{seen}"
    );
    let removed = app.try_login("ann@example.com", "changed-password-9").await;
    assert_eq!(removed.status(), 401, "the removed user still logs in");
    for (shot, kept) in [
        ("account_screenshot", "web-account-page.png"),
        ("users_screenshot", "web-users-page.png"),
    ] {
        let screenshot = std::fs::read(seen[shot].as_str().unwrap()).unwrap();
        assert!(screenshot.starts_with(b"\x89PNG"), "{shot} is not a PNG");
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(kept);
        std::fs::write(&kept, &screenshot).unwrap();
        println!("screenshot: {}", kept.display());
    }
}

#[tokio::test]
async fn the_web_page_imports_a_video_from_its_address() {
    let app = common::spawn_app_with(|config| config.shared.allow_private_targets = true).await;
    let token = app.new_user("ann@example.com").await;
    let root = app.dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    common::make_video(&root, "talk.mp4", 1);
    let server = common::FileServer::start(&root);
    let source = format!("{}/talk.mp4", server.base);

    let seen = run_script(
        "import.mjs",
        &[
            ("BASE_URL", app.base.as_ref()),
            ("EMAIL", "ann@example.com".as_ref()),
            ("PASSWORD", common::USER_PASSWORD.as_ref()),
            ("SOURCE_URL", source.as_ref()),
        ],
    )
    .await;
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    assert!(
        seen["refusal"].as_str().unwrap().contains("http or https"),
        "{seen}"
    );
    assert_eq!(seen["status"], 202, "{seen}");
    assert_eq!(seen["row"], "talk.mp4 → opus", "{seen}");
    assert_eq!(
        (&seen["field_cleared"], &seen["error_cleared"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{seen}"
    );
    let job: Value = app
        .job(&token, seen["job"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["source_url"], source.as_str(), "{job}");
    assert_eq!(job["format"], "opus", "{job}");
}
