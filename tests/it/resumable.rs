//! Resumable uploads (tus 1.0.0) at `/v1/uploads`, driven by the official
//! tus clients (tus-js-client in Node, tuspy in Python) where a client's
//! behaviour is the point, and by plain HTTP where the server's answers to
//! misbehaving clients are.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::common::MediajetProcess;
use crate::common::{
    self, ADMIN_EMAIL, ADMIN_PASSWORD, Api, header_number, spawn_app_with, stream_messages,
    tus_create, tus_head, tus_patch, tus_request, tus_try_create,
};

/// `mediajet run` with every actor, on `nats_url`, its data in `data_dir`.
async fn start_service(nats_url: &str, data_dir: &Path) -> MediajetProcess {
    start_actors(nats_url, data_dir, "auth,ingest,transcoder,mailer").await
}

/// `mediajet run` with `actors`, on `nats_url`, its data in `data_dir`.
async fn start_actors(nats_url: &str, data_dir: &Path, actors: &str) -> MediajetProcess {
    let mut command = MediajetProcess::command();
    command
        .args([
            "run",
            "--actors",
            actors,
            "--http",
            "127.0.0.1:0",
            "--nats-url",
            nats_url,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("MEDIAJET_TRANSCODERS", "1")
        .env("MEDIAJET_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("MEDIAJET_ADMIN_PASSWORD", ADMIN_PASSWORD);
    MediajetProcess::start(command, data_dir, "mediajet").await
}

/// A process's peak and current resident memory, in bytes.
fn memory_of(process: &MediajetProcess) -> (u64, u64) {
    let pid = process.child.id().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .expect("a memory figure")
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Runs a tus client script and reads the JSON it prints.
fn run_client(mut command: Command, what: &str) -> Value {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("Cannot find package") && !stderr.contains("No module named"),
        "{what} is missing: run scripts/test.sh, which installs it\n{stderr}"
    );
    assert!(output.status.success(), "{what} failed:\n{stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{what} printed no JSON ({e}): {stderr}"))
}

fn tuspy(script: &str, args: &[&str]) -> Value {
    let mut command = Command::new("python3");
    command
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tus/").to_string() + script)
        .args(args);
    run_client(command, "tuspy")
}

/// The audio of a completed job decodes to about `seconds` of sound.
async fn assert_decodes(api: &Api, token: &str, job: &str, seconds: f64, dir: &Path) {
    let finished = api.wait_until_finished(token, job).await;
    assert_eq!(finished["state"], "completed", "{finished}");
    let audio = api
        .get(token, &format!("/v1/jobs/{job}/output"))
        .await
        .bytes()
        .await
        .unwrap();
    let path = dir.join(format!("{job}.audio"));
    std::fs::write(&path, &audio).unwrap();
    let probed = common::probe(&path);
    assert!(
        (probed.duration - seconds).abs() < 1.0,
        "{} s of audio, not {seconds}",
        probed.duration
    );
}

#[tokio::test]
async fn tus_js_client_resumes_an_aborted_upload_from_a_new_instance_holding_few_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let nats = common::start_nats(dir.path()).await;
    // The front door alone, so that its memory is the upload's: the
    // conversion runs in a process of its own.
    let service = start_actors(nats.url(), &dir.path().join("front"), "auth,ingest").await;
    let _back = start_actors(nats.url(), &dir.path().join("back"), "transcoder,mailer").await;
    let token = service.api.new_user("ann@example.com").await;
    let video = common::make_raw_video(dir.path(), "lecture.avi", 23);
    let size = std::fs::metadata(&video).unwrap().len();
    assert!(size >= 64 << 20, "the video has only {size} bytes");
    let (peak_before, _) = memory_of(&service);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web/tus_resume.mjs");
    let mut node = Command::new("node");
    node.arg(script)
        .env("BASE_URL", service.api.url(""))
        .env("TOKEN", &token)
        .env("VIDEO", &video);
    let outcome = tokio::task::spawn_blocking(move || run_client(node, "tus-js-client"))
        .await
        .unwrap();
    let resumed_from = outcome["resumedFrom"].as_u64().expect("a resumed offset");
    let aborted_at = outcome["abortedAt"].as_u64().unwrap();
    // The second instance went on from what the server had kept of the
    // first one's bytes, not from the start.
    assert!(
        resumed_from > 0 && resumed_from <= aborted_at && aborted_at < size,
        "{outcome}"
    );
    let (peak_after, _) = memory_of(&service);
    let job = outcome["jobId"].as_str().expect("the job of the upload");
    assert_decodes(&service.api, &token, job, 23.0, dir.path()).await;

    let growth = peak_after.saturating_sub(peak_before);
    println!(
        "a {} MiB tus upload grew the service's peak memory by {:.1} MiB",
        size >> 20,
        growth as f64 / (1 << 20) as f64
    );
    assert!(
        growth < 24 << 20,
        "the service's peak memory grew by {growth} bytes for a {size}-byte upload"
    );
}

#[tokio::test]
async fn tuspy_checksums_every_part_and_a_corrupted_part_is_refused_with_460_and_sent_again() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_raw_video(app.dir.path(), "talk.avi", 2);
    let base = app.url("");
    let path = video.to_str().unwrap().to_string();
    let outcome =
        tokio::task::spawn_blocking(move || tuspy("checksum.py", &[&base, &token, &path]))
            .await
            .unwrap();
    assert_eq!(outcome["refused"], 460, "{outcome}");
    // The refused part was discarded: the server kept only the first one.
    assert_eq!(outcome["kept"], outcome["first"], "{outcome}");
    let token = app.login("ann@example.com", common::USER_PASSWORD).await;
    let job = outcome["job"].as_str().expect("a job");
    assert_decodes(&app.api, &token, job, 2.0, app.dir.path()).await;
    let finished = app.job(&token, job).await.json::<Value>().await.unwrap();
    assert_eq!(finished["filename"], "talk.avi", "{finished}");
    assert_eq!(finished["format"], "opus", "{finished}");
}

#[tokio::test]
async fn an_upload_resumes_on_a_new_process_after_the_first_was_killed_mid_part() {
    let dir = tempfile::tempdir().unwrap();
    let nats = common::start_nats(dir.path()).await;
    let data_dir = dir.path().join("service");
    let mut service = start_service(nats.url(), &data_dir).await;
    let token = service.api.new_user("ann@example.com").await;
    let video = common::make_raw_video(dir.path(), "lecture.avi", 4);
    let bytes = Bytes::from(std::fs::read(&video).unwrap());
    let url = tus_create(
        &service.api,
        &token,
        bytes.len() as u64,
        "filename bGVjdHVyZS5hdmk=",
    )
    .await;
    let path = url.trim_start_matches(&service.api.url(""));

    // A part that stops half-way, as a connection that hangs.
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let held = bytes.slice(..bytes.len() / 2);
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(receiver, |mut r| async {
        r.recv().await.map(|piece| (piece, r))
    }));
    let request = tus_request(&service.api.http, reqwest::Method::PATCH, &url, &token)
        .header("Upload-Offset", 0)
        .header("Content-Type", "application/offset+octet-stream")
        .body(body)
        .send();
    let request = tokio::spawn(request);
    for piece in held.chunks(256 * 1024) {
        sender
            .send(Ok(Bytes::copy_from_slice(piece)))
            .await
            .unwrap();
    }
    // What the server has counted is durable: wait until most of it is.
    let started = Instant::now();
    let durable = loop {
        let offset = header_number(&tus_head(&service.api, &token, &url).await, "upload-offset");
        if offset >= held.len() as u64 / 2 {
            break offset;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {offset} bytes came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    service.signal(libc::SIGKILL);
    let _ = service.child.wait().await;
    drop(sender);
    let _ = request.await;

    let service = start_service(nats.url(), &data_dir).await;
    let token = service
        .api
        .login("ann@example.com", common::USER_PASSWORD)
        .await;
    let url = service.api.url(path);
    let head = tus_head(&service.api, &token, &url).await;
    assert_eq!(head.status(), 200);
    let kept = header_number(&head, "upload-offset");
    assert!(
        kept >= durable && kept <= held.len() as u64,
        "kept {kept} of {durable}"
    );
    assert_eq!(header_number(&head, "upload-length"), bytes.len() as u64);

    let file = video.to_str().unwrap().to_string();
    let (finish_url, finish_token) = (url.clone(), token.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        tuspy("finish.py", &[&finish_url, &finish_token, &file])
    })
    .await
    .unwrap();
    assert_eq!(outcome["resumed"], kept, "{outcome}");
    let job = outcome["job"].as_str().expect("a job");
    assert_decodes(&service.api, &token, job, 4.0, dir.path()).await;
}

#[tokio::test]
async fn expired_and_terminated_uploads_leave_no_bytes_behind() {
    let app = spawn_app_with(|config| {
        config.ingest.upload_expiry = Duration::from_secs(2);
        config.ingest.orphan_sweep = Duration::from_millis(500);
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let part = Bytes::from(vec![7u8; 3 << 20]);

    let terminated = tus_create(&app.api, &token, 8 << 20, "").await;
    assert_eq!(
        tus_patch(&app.api, &token, &terminated, 0, part.clone())
            .await
            .status(),
        204
    );
    let expiring = tus_create(&app.api, &token, 8 << 20, "").await;
    let answer = tus_patch(&app.api, &token, &expiring, 0, part.clone()).await;
    assert_eq!(answer.status(), 204);
    assert!(answer.headers().contains_key("upload-expires"));
    assert!(stream_messages(&app.ready.nats_url, "OBJ_mediajet_uploads").await >= 6);

    let ended = tus_request(&app.http, reqwest::Method::DELETE, &terminated, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    assert_eq!(tus_head(&app.api, &token, &terminated).await.status(), 404);

    // The sweep ends the expired one without anyone asking for it.
    let started = Instant::now();
    while stream_messages(&app.ready.nats_url, "OBJ_mediajet_uploads").await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "an expired upload's bytes are still stored"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gone = tus_head(&app.api, &token, &expiring).await.status();
    assert!(gone == 404 || gone == 410, "{gone}");
    assert_eq!(
        stream_messages(&app.ready.nats_url, "KV_mediajet_tus").await,
        0
    );
}

#[tokio::test]
async fn another_users_upload_is_not_found_and_a_final_part_sent_twice_makes_one_job() {
    let app = common::spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let video =
        Bytes::from(std::fs::read(common::make_video(app.dir.path(), "clip.mp4", 1)).unwrap());
    let length = video.len() as u64;
    let url = tus_create(&app.api, &ann, length, "format b3B1cw==").await;

    for method in [
        reqwest::Method::HEAD,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let answer = tus_request(&app.http, method.clone(), &url, &bob)
            .header("Upload-Offset", 0)
            .header("Content-Type", "application/offset+octet-stream")
            .body(video.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{method}");
    }
    assert_eq!(
        header_number(&tus_head(&app.api, &ann, &url).await, "upload-offset"),
        0
    );

    // The protocol's refusals, each with what the client needs to go on.
    let old = app
        .http
        .head(&url)
        .bearer_auth(&ann)
        .header("Tus-Resumable", "0.2.2")
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 412);
    assert_eq!(old.headers()["tus-version"], "1.0.0");
    let wrong_type = tus_request(&app.http, reqwest::Method::PATCH, &url, &ann)
        .header("Upload-Offset", 0)
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    let ahead = tus_patch(&app.api, &ann, &url, 10, video.slice(10..)).await;
    assert_eq!(ahead.status(), 409);
    let error: Value = ahead.json().await.unwrap();
    assert_eq!(error["error"]["code"], "offset_mismatch");
    let mut too_long = video.to_vec();
    too_long.push(0);
    assert_eq!(
        tus_patch(&app.api, &ann, &url, 0, too_long.into())
            .await
            .status(),
        413
    );
    let options = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 204);
    assert_eq!(options.headers()["tus-version"], "1.0.0");
    assert_eq!(
        options.headers()["tus-max-size"].to_str().unwrap(),
        app.config.ingest.max_upload_bytes.to_string()
    );
    for extension in ["creation", "termination", "expiration", "checksum"] {
        let extensions = options.headers()["tus-extension"].to_str().unwrap();
        assert!(
            extensions.split(',').any(|e| e == extension),
            "{extensions}"
        );
    }

    let first = tus_patch(&app.api, &ann, &url, 0, video.clone()).await;
    assert_eq!(first.status(), 204);
    assert_eq!(header_number(&first, "upload-offset"), length);
    let job = first.headers()["mediajet-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    let again = tus_patch(&app.api, &ann, &url, length, Bytes::new()).await;
    assert_eq!(again.status(), 204);
    assert_eq!(again.headers()["mediajet-job-id"].to_str().unwrap(), job);
    let head = tus_head(&app.api, &ann, &url).await;
    assert_eq!(head.headers()["mediajet-job-id"].to_str().unwrap(), job);
    assert_eq!(app.listed_ids(&ann).await, vec![job.clone()]);
    let finished = app.wait_until_finished(&ann, &job).await;
    assert_eq!(finished["state"], "completed", "{finished}");
    assert_eq!(finished["format"], "opus", "{finished}");
}

#[tokio::test]
async fn uploads_in_progress_count_against_the_quota_and_the_cap_on_unfinished_jobs() {
    let app = spawn_app_with(|config| {
        config.ingest.max_unfinished_jobs = 2;
        config.ingest.max_user_bytes = 10 << 20;
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let too_big = tus_try_create(&app.api, &token, 11 << 20, "").await;
    assert_eq!(too_big.status(), 413);
    tus_create(&app.api, &token, 6 << 20, "").await;
    let past_quota = tus_try_create(&app.api, &token, 5 << 20, "").await;
    assert_eq!(past_quota.status(), 413);
    let error: Value = past_quota.json().await.unwrap();
    assert_eq!(error["error"]["code"], "quota_exceeded");
    tus_create(&app.api, &token, 1 << 20, "").await;
    let third = tus_try_create(&app.api, &token, 1 << 20, "").await;
    assert_eq!(third.status(), 429);
    let bad = tus_try_create(&app.api, &token, 1 << 20, "format bWlkaQ==").await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn an_upload_that_takes_the_whole_quota_still_becomes_its_job() {
    let video = tempfile::tempdir().unwrap();
    let clip = common::make_video(video.path(), "clip.mp4", 1);
    let bytes = Bytes::from(std::fs::read(&clip).unwrap());
    // The upload fills the quota exactly: it holds all of it while it is
    // open, and must not be refused its job for holding it.
    let quota = bytes.len() as u64;
    let app = spawn_app_with(|config| config.ingest.max_user_bytes = quota).await;
    let token = app.new_user("ann@example.com").await;
    let url = tus_create(&app.api, &token, quota, "").await;
    let refused = tus_try_create(&app.api, &token, 1, "").await;
    assert_eq!(refused.status(), 413);
    let whole = tus_patch(&app.api, &token, &url, 0, bytes).await;
    let status = whole.status();
    let job = whole.headers().get("mediajet-job-id").cloned();
    assert_eq!(status, 204, "{:?}", whole.text().await);
    let job = job.unwrap().to_str().unwrap().to_string();
    // Its audio has no room left, as for a multipart upload of that size.
    let finished = app.wait_until_finished(&token, &job).await;
    assert_eq!(finished["state"], "failed", "{finished}");
}
