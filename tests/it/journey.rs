//! The user's journey end to end: log in, upload, watch, download, get mail.

use crate::common;

use std::time::Duration;

use crate::common::{probe, spawn_app, spawn_app_with};
use futures::StreamExt;
use serde_json::Value;

#[tokio::test]
async fn a_user_uploads_a_video_and_downloads_an_mp3_of_the_same_length() {
    let app = spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "holiday.mp4", 4);
    let input = probe(&video);

    // Follow the job's events as an outside NATS client would.
    let nats = async_nats::connect(app.ready.nats_url.as_str())
        .await
        .unwrap();
    let mut events = nats.subscribe("mediajet.events.job.>").await.unwrap();

    let response = app.upload(&token, &video, Some("mp3")).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["state"], "queued");
    assert_eq!(job["progress"], 0.0);
    assert_eq!(job["filename"], "holiday.mp4");
    let id = job["id"].as_str().unwrap().to_string();

    let done = app.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "completed", "job: {done}");
    assert_eq!(done["progress"], 100.0);
    assert!(done["created_at"].is_string());
    assert!(done["finished_at"].is_string());
    assert_eq!(done["output"]["filename"], "holiday.mp3");

    let mut states = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(2), events.next()).await
    {
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(event["id"], id.as_str());
        states.push(event["state"].as_str().unwrap().to_string());
        if states.last().is_some_and(|s| s == "completed") {
            break;
        }
    }
    assert_eq!(states, ["queued", "running", "completed"]);

    let download = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "audio/mpeg");
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"holiday.mp3\""
    );
    let bytes = download.bytes().await.unwrap();
    assert_eq!(
        bytes.len() as u64,
        done["output"]["bytes"].as_u64().unwrap()
    );
    let mp3 = app.dir.path().join("downloaded.mp3");
    std::fs::write(&mp3, &bytes).unwrap();
    let audio = probe(&mp3);
    assert_eq!(audio.format, "mp3");
    assert_eq!(audio.codec, "mp3");
    assert_eq!(audio.sample_rate, 44_100);
    assert!(
        (185_000..=200_000).contains(&audio.bit_rate),
        "bit rate {}",
        audio.bit_rate
    );
    assert!(
        (audio.duration - input.duration).abs() < 0.2,
        "mp3 lasts {}s, the video {}s",
        audio.duration,
        input.duration
    );

    let mails = app.outbox(1).await;
    assert_eq!(mails.len(), 1, "exactly one email per job");
    let mail = mails[0].replace("=\r\n", "").replace("=\n", "");
    assert!(mail.contains("To: ann@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Your audio is ready: holiday.mp4"),
        "{mail}"
    );
    assert!(mail.contains(&id), "the email names the job: {mail}");
    // The email's link downloads the audio without a token.
    let parsed = common::read_outbox_parsed(&app.data_dir(), 1).await;
    let link = parsed[0]["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .find(|l| l.starts_with(&format!("{}/d/{id}/0?exp=", app.base)))
        .unwrap_or_else(|| panic!("no download link: {}", parsed[0]))
        .to_string();
    let linked = app.http.get(&link).send().await.unwrap();
    assert_eq!(linked.status(), 200);
    assert_eq!(linked.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn the_seed_projects_clients_log_in_upload_and_download_with_the_old_routes() {
    let app = spawn_app().await;
    app.new_user("bob@example.com").await;

    let token = app
        .http
        .post(app.url("/login"))
        .basic_auth("bob@example.com", Some("user-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token = token.text().await.unwrap();
    assert_eq!(token.split('.').count(), 3, "a bare JWT: {token}");

    let video = common::make_video(app.dir.path(), "talk.mp4", 2);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(&video).unwrap()).file_name("talk.mp4"),
    );
    let upload = app
        .http
        .post(app.url("/upload"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    let fid = upload.text().await.unwrap();
    assert!(uuid::Uuid::parse_str(&fid).is_ok(), "the job id: {fid}");

    let done = app.wait_until_finished(&token, &fid).await;
    assert_eq!(done["state"], "completed");
    let download = app.get(&token, &format!("/download?fid={fid}")).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "audio/mpeg");
    let mp3 = app.dir.path().join("talk.mp3");
    std::fs::write(&mp3, download.bytes().await.unwrap()).unwrap();
    assert_eq!(probe(&mp3).codec, "mp3");

    let missing = app.get(&token, "/download").await;
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn a_file_that_is_not_a_video_fails_with_a_reason_and_an_email() {
    let app = spawn_app().await;
    let token = app.new_user("cat@example.com").await;
    let notes = app.dir.path().join("notes.mp4");
    std::fs::write(&notes, "these are my notes, not a video\n".repeat(100)).unwrap();

    let id = app.submit(&token, &notes).await;
    let done = app.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "failed");
    let reason = done["error"].as_str().unwrap();
    assert!(
        reason.contains("not a readable video or audio file"),
        "reason: {reason}"
    );
    assert_eq!(done["attempts"], 1, "a bad upload is not retried");

    let output = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(output.status(), 409);
    let body: Value = output.json().await.unwrap();
    assert_eq!(body["error"]["code"], "job_failed");

    let mails = app.outbox(1).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Subject: Conversion failed: notes.mp4"),
        "{}",
        mails[0]
    );
}

#[tokio::test]
async fn a_video_without_sound_fails_with_a_reason() {
    let app = spawn_app().await;
    let token = app.new_user("dan@example.com").await;
    let silent = app.dir.path().join("silent.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1:size=160x120:rate=10",
            "-c:v",
            "mpeg4",
        ])
        .arg(&silent)
        .status()
        .unwrap();
    assert!(status.success());
    let id = app.submit(&token, &silent).await;
    let done = app.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "failed");
    assert_eq!(done["error"], "the upload has no audio track");
}

#[tokio::test]
async fn uploads_without_a_file_or_with_an_unknown_format_are_refused() {
    let app = spawn_app().await;
    let token = app.new_user("eve@example.com").await;

    let form = reqwest::multipart::Form::new().text("format", "mp3");
    let response = app
        .http
        .post(app.url("/v1/jobs"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_file");

    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let response = app.upload(&token, &video, Some("exe")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_format");

    let list = app.list_jobs(&token).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "refused uploads leave no job"
    );
}

#[tokio::test]
async fn an_upload_over_the_size_limit_is_refused_with_413() {
    let app = spawn_app_with(|config| config.ingest.max_upload_bytes = 10_000).await;
    let token = app.new_user("fay@example.com").await;
    let big = app.dir.path().join("big.mp4");
    std::fs::write(&big, vec![0u8; 200_000]).unwrap();
    let response = app.upload(&token, &big, None).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large");
}

#[tokio::test]
async fn jobs_are_listed_newest_first() {
    let app = spawn_app().await;
    let token = app.new_user("gus@example.com").await;
    let video = common::make_video(app.dir.path(), "a.mp4", 1);
    let first = app.submit(&token, &video).await;
    let second = app.submit(&token, &video).await;
    assert_eq!(app.listed_ids(&token).await, [second, first]);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let app = spawn_app().await;
    let token = app.new_user("hugo@example.com").await;

    let not_multipart = app
        .http
        .post(app.url("/v1/jobs"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("file=x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), 400);
    let body: Value = not_multipart.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_multipart");
    // A JSON body names a URL to import; a file goes in a form.
    let json_file = app
        .post(&token, "/v1/jobs", Some(&serde_json::json!({"file": "x"})))
        .await;
    assert_eq!(json_file.status(), 400);
    let body: Value = json_file.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_source_url");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("multipart/form-data"),
        "{body}"
    );

    let bad_query = app.get(&token, "/v1/jobs?limit=lots").await;
    assert_eq!(bad_query.status(), 400);
    let body: Value = bad_query.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_query");

    let unknown = app.http.get(app.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let wrong_method = app.http.delete(app.url("/v1/login")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    let not_a_job = app.job(&token, "not-a-uuid").await;
    assert_eq!(not_a_job.status(), 404);
    let body: Value = not_a_job.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_malformed_work_item_is_kept_in_the_dead_letter_stream_not_retried() {
    let app = spawn_app().await;
    let nats = async_nats::connect(app.ready.nats_url.as_str())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(nats);
    js.publish(
        "mediajet.work.transcode",
        r#"{"v":1,"job_id":"../../etc/passwd"}"#.into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    js.publish("mediajet.work.transcode", "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let mut dead = js.get_stream("MEDIAJET_DEAD").await.unwrap();
    let started = std::time::Instant::now();
    while dead.info().await.unwrap().state.messages < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "nothing was dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = dead.get_raw_message(1).await.unwrap();
    assert!(first.payload.starts_with(b"{\"v\":1"));
    let reason = first
        .headers
        .get("Mediajet-Dead-Reason")
        .unwrap()
        .to_string();
    assert!(reason.contains("not a job id"), "{reason}");

    // Term removed them from the work queue: nothing is redelivered.
    let mut work = js.get_stream("MEDIAJET_WORK").await.unwrap();
    let started = std::time::Instant::now();
    while work.info().await.unwrap().state.messages > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "work items linger"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn downloads_honour_a_byte_range_so_players_can_seek() {
    let app = spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 2);
    let id = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &id).await;
    let path = format!("/v1/jobs/{id}/output");

    let whole = app.get(&token, &path).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    let size = whole.len();

    let ranged = |range: String| {
        let request = app
            .http
            .get(app.url(&path))
            .bearer_auth(&token)
            .header("Range", range);
        async move { request.send().await.unwrap() }
    };
    let part = ranged("bytes=100-1099".into()).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-1099/{size}").as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(100..1100));

    let tail = ranged("bytes=-500".into()).await;
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap(), whole.slice(size - 500..));

    let past = ranged(format!("bytes={size}-")).await;
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );
    let body: Value = past.json().await.unwrap();
    assert_eq!(body["error"]["code"], "range_not_satisfiable");

    // The seed project's download route seeks the same way.
    let seed = app
        .http
        .get(app.url(&format!("/download?fid={id}")))
        .bearer_auth(&token)
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), 206);
    assert_eq!(seed.bytes().await.unwrap(), whole.slice(0..10));
}

#[tokio::test]
async fn jobs_are_listed_a_page_at_a_time_and_by_state() {
    let app = spawn_app().await;
    let token = app.new_user("hal@example.com").await;
    let video = common::make_video(app.dir.path(), "a.mp4", 1);
    let notes = app.dir.path().join("notes.mp4");
    std::fs::write(&notes, "not a video\n".repeat(100)).unwrap();
    let mut ids = app.submit_many(&token, &video, 3).await;
    ids.extend(app.submit_many(&token, &notes, 2).await);
    for id in &ids {
        app.wait_until_finished(&token, id).await;
    }
    ids.reverse();

    // Pages of two, following the Link header, give every job once, newest first.
    let mut seen = Vec::new();
    let mut next = Some("/v1/jobs?limit=2".to_string());
    while let Some(path) = next.take() {
        let page = app.get(&token, &path).await;
        assert_eq!(page.status(), 200);
        next = page
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once('>'))
            .map(|(target, _)| target.to_string());
        let jobs: Value = page.json().await.unwrap();
        let jobs = jobs.as_array().unwrap();
        assert!(jobs.len() <= 2);
        seen.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()));
        assert!(seen.len() <= 6, "paging does not end");
    }
    assert_eq!(seen, ids);

    let by_state = async |state: &str| {
        let list: Value = app
            .get(&token, &format!("/v1/jobs?state={state}"))
            .await
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|j| j["state"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(by_state("failed").await, ["failed", "failed"]);
    assert_eq!(by_state("completed").await, ["completed"; 3]);
    assert!(by_state("queued").await.is_empty());

    for bad in ["/v1/jobs?state=lost", "/v1/jobs?before=yesterday"] {
        let response = app.get(&token, bad).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_query", "{bad}");
    }
}
