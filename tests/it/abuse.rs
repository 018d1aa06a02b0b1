//! What a stranger or one logged-in user can throw at the service without
//! taking it down, filling it or getting past a limit: hostile tokens,
//! oversized form fields, slow and idle connections, malformed NATS
//! requests, odd job ids, parallel uploads and guesses, forged refresh
//! tokens and retired keys.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app, spawn_app_with, submit_over_nats};
use base64::Engine;
use serde_json::Value;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token of any header and claims, with a signature of zeros.
fn unsigned_token(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(&[0; 64])
    )
}

/// The claims inside a token (not checked).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The status of listing jobs with `token`.
async fn listing(app: &common::Api, token: &str) -> u16 {
    app.get(token, "/v1/jobs").await.status().as_u16()
}

async fn status_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_token_with_a_huge_key_id_is_refused_and_leaves_the_nats_connection_alone() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let claims = claims_of(&token);
    let long_kid = "ab".repeat(2500);
    let forged = unsigned_token(
        &serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": long_kid}),
        &claims,
    );
    for path in ["/v1/jobs", "/v1/jobs/0193aa8e-8c1e-7000-8000-000000000000"] {
        let (status, body) = status_of(app.get(&forged, path).await).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let logout = app.post(&forged, "/v1/logout", None).await;
    assert_eq!(logout.status(), 401, "logout with the forged token");
    let oversized = format!("{}.{}", forged, "A".repeat(8000));
    let status = listing(&app, &oversized).await;
    assert_eq!(status, 401, "a token longer than any Auth issues");

    // The connection to NATS survived: the real token still works, and so
    // do logins and NATS requests.
    let status = listing(&app, &token).await;
    assert_eq!(status, 200);
    assert_eq!(app.readiness().await["status"], "ready");
    app.admin_token().await;

    // Object names in NATS submissions are bounded before they are looked up.
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let object = format!("{ADMIN_EMAIL}/{}", "x".repeat(5000));
    let reply = submit_over_nats(
        &nats,
        &token,
        &serde_json::json!({"v": 1, "object": object}),
    )
    .await;
    assert_eq!(reply["error"]["code"], "bad_object_name", "{reply}");
    let status = listing(&app, &token).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_nats_submission_with_control_characters_gets_an_error_reply() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    for request in [
        serde_json::json!({"v": 1, "object": format!("{ADMIN_EMAIL}/clip.mp4"), "format": "mp3\r\nX-Evil: 1"}),
        serde_json::json!({"v": 1, "object": "someone/else\nclip.mp4"}),
        serde_json::json!({"v": 1, "object": format!("{ADMIN_EMAIL}/no\nsuch.mp4")}),
    ] {
        let reply = submit_over_nats(&nats, &token, &request).await;
        let code = reply["error"]["code"].as_str().unwrap_or_default();
        assert!(!code.is_empty(), "{request} got {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.contains('\n'), "{message:?}");
    }
}

#[tokio::test]
async fn an_oversized_form_field_is_refused_while_it_streams() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    for field in ["format", "bitrate", "comment"] {
        let huge = "m".repeat(20 * 1024 * 1024);
        let form = reqwest::multipart::Form::new().text(field, huge).part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(&video).unwrap()).file_name("clip.mp4"),
        );
        let response = app.post_form(&token, form).await;
        // The server may close the connection before the client has sent
        // it all; what it answered, if the client saw it, is a 400.
        if let Ok(response) = response {
            let (status, body) = status_of(response).await;
            assert_eq!(status, 400, "{field}: {body}");
            assert_eq!(body["error"]["code"], "field_too_long");
        }
    }
    assert!(
        app.list_jobs(&token).await.as_array().unwrap().is_empty(),
        "no job was created"
    );
    // A short field is still read.
    let id = app.submit_with(&token, &video, &[("format", "opus")]).await;
    assert_eq!(
        app.wait_until_finished(&token, &id).await["state"],
        "completed"
    );
}

/// Reads from `stream` until the server closes it, for at most `limit`;
/// returns what arrived and whether it was closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), false)
}

/// The start of a raw upload of a body of `length` bytes: the request head
/// and the head of its `file` part, for tests that then send the file as
/// slowly, or as incompletely, as they like.
fn upload_head(token: &str, length: u64) -> String {
    let boundary = "mediajet-raw-upload";
    format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: mediajet\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {length}\r\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"raw.mp4\"\r\n\
         Content-Type: video/mp4\r\n\r\n"
    )
}

/// Sends a health check on `stream` and reads its answer, leaving the
/// connection open.
fn health_check(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: mediajet\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let n = stream.read(&mut buffer).unwrap_or(0);
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[tokio::test]
async fn a_half_sent_header_and_an_idle_connection_are_cut_off_and_connections_are_capped() {
    let app = spawn_app_with(|config| {
        config.shared.http_header_timeout = Duration::from_secs(2);
        config.shared.max_connections = 3;
    })
    .await;
    let addr = app.ready.http_addr;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut half = TcpStream::connect(addr).unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: mediajet\r\nX-Slow: ")
            .unwrap();
        let (_, closed) = read_until_closed(&mut half, Duration::from_secs(20));
        assert!(closed, "a half-sent header block kept its connection");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );

        let mut idle = TcpStream::connect(addr).unwrap();
        assert!(health_check(&mut idle).starts_with("HTTP/1.1 200"));
        let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(20));
        assert!(closed, "an idle keep-alive connection stayed open");

        // Three connections are served; a fourth is closed at once.
        let mut held: Vec<TcpStream> = Vec::new();
        for _ in 0..3 {
            let mut connection = TcpStream::connect(addr).unwrap();
            let answer = health_check(&mut connection);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            held.push(connection);
        }
        let mut extra = TcpStream::connect(addr).unwrap();
        let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: mediajet\r\n\r\n");
        let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(5));
        assert!(
            closed && answer.is_empty(),
            "a fourth connection was served: {answer}"
        );
        // Once one of them ends, a new connection is served.
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut again = TcpStream::connect(addr).unwrap();
            if health_check(&mut again).starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "no connection was served again");
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_upload_slower_than_the_floor_is_cut_off_with_408_and_leaves_no_job() {
    let app = spawn_app_with(|config| config.ingest.upload_min_rate = 64 * 1024).await;
    let token = app.admin_token().await;
    let addr = app.ready.http_addr;
    let auth = token.clone();
    // A multipart upload that sends its first part, then a byte a second.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(upload_head(&auth, 100_000).as_bytes())
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let started = Instant::now();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(90) {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(_) => {
                    if !received.is_empty() {
                        break;
                    }
                    // Nothing back yet: one more byte of the upload.
                    let _ = stream.write_all(b"x");
                }
            }
        }
        (
            String::from_utf8_lossy(&received).into_owned(),
            started.elapsed(),
        )
    })
    .await
    .unwrap();
    let (answer, took) = answer;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {took:?}: {answer}"
    );
    assert!(answer.contains("upload_too_slow"), "{answer}");
    assert!(app.list_jobs(&token).await.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_job_id_spelled_another_way_names_the_same_job_or_none() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    for spelling in [
        format!("urn:uuid:{id}"),
        format!("{{{id}}}"),
        id.to_uppercase(),
        id.replace('-', ""),
    ] {
        let (status, body) = status_of(app.job(&token, &spelling).await).await;
        assert_eq!(status, 200, "{spelling}: {body}");
        assert_eq!(body["id"], id.as_str());
    }
    for unknown in [
        "urn:uuid:0193aa8e-8c1e-7000-8000-000000000000".to_string(),
        "{0193aa8e-8c1e-7000-8000-000000000000}".to_string(),
        "x".repeat(300),
    ] {
        let (status, body) = status_of(app.job(&token, &unknown).await).await;
        assert_eq!(status, 404, "{unknown}: {body}");
    }
    let (status, _) = status_of(
        app.get(
            &token,
            "/v1/jobs?before=urn:uuid:0193aa8e-8c1e-7000-8000-000000000000",
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn parallel_uploads_cannot_pass_the_cap_on_unfinished_jobs() {
    let app = spawn_app_with(|config| {
        config.ingest.max_unfinished_jobs = 2;
        // Nothing converts, so nothing finishes while the uploads arrive.
        config.shared.actors = vec![
            mediajet::config::ActorKind::Auth,
            mediajet::config::ActorKind::Ingest,
        ];
    })
    .await;
    let token = app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 20);
    let uploads = (0..6).map(|_| app.upload(&token, &video, None));
    let statuses: Vec<u16> = futures::future::join_all(uploads)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert!(accepted <= 2, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        app.list_jobs(&token).await.as_array().unwrap().len(),
        accepted
    );
}

#[tokio::test]
async fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let app = spawn_app().await;
    app.new_user("ann@example.com").await;
    let wrong: Vec<String> = (0..30).map(|i| format!("guess-{i}")).collect();
    let guesses = wrong
        .iter()
        .map(|guess| app.try_login("ann@example.com", guess));
    let statuses: Vec<u16> = futures::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        checked <= 5,
        "{checked} of 30 guesses were checked: {statuses:?}"
    );
    assert_eq!(checked + statuses.iter().filter(|s| **s == 429).count(), 30);
}

#[tokio::test]
async fn behind_a_trusted_proxy_guesses_lock_out_their_own_address_only() {
    let app = spawn_app_with(|config| {
        config.ingest.login_failures = 3;
        config.ingest.trusted_proxies =
            vec![mediajet::actors::ingest::peer::parse_network("127.0.0.1").unwrap()];
    })
    .await;
    app.new_user("ann@example.com").await;
    let login_from = |address: &'static str, password: &'static str| {
        app.http
            .post(app.url("/v1/login"))
            .header("x-forwarded-for", address)
            .json(&serde_json::json!({"email": "ann@example.com", "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login_from("203.0.113.7", "wrong").await.unwrap().status(),
            401
        );
    }
    let locked = login_from("203.0.113.7", common::USER_PASSWORD)
        .await
        .unwrap();
    assert_eq!(locked.status(), 429, "the guessing address is locked");
    let owner = login_from("198.51.100.2", common::USER_PASSWORD)
        .await
        .unwrap();
    assert_eq!(owner.status(), 200, "the owner elsewhere is not");
    // A client not behind the proxy cannot pick its address.
    let spoofed = app
        .http
        .post(app.url("/v1/login"))
        .header("x-forwarded-for", "198.51.100.99, 203.0.113.7")
        .json(&serde_json::json!({"email": "ann@example.com", "password": common::USER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        spoofed.status(),
        429,
        "the right-most hop is the one counted"
    );
}

#[tokio::test]
async fn a_session_id_alone_neither_refreshes_nor_ends_a_session() {
    let app = spawn_app().await;
    let tokens = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let sid = claims_of(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    for generation in ["0", "1", "7"] {
        let made_up = Value::from(format!("{sid}.{generation}.bm90LWEtc2VjcmV0"));
        let (status, body) = status_of(app.refresh(&made_up).await).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "invalid_refresh_token");
        let logout = app
            .post_json(
                "/v1/logout",
                &serde_json::json!({ "refresh_token": made_up }),
            )
            .await;
        assert_eq!(logout.status(), 401);
    }
    let status = listing(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the session was ended by a made-up token");
    let (status, _) = status_of(app.refresh(&tokens["refresh_token"]).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_refresh_whose_answer_was_lost_can_be_retried_once_within_the_grace() {
    let app = spawn_app().await;
    let first = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The answer to this refresh never reaches the client ...
    let (status, _lost) = status_of(app.refresh(&first["refresh_token"]).await).await;
    assert_eq!(status, 200);
    // ... which asks again with the same token, and gets a working pair.
    let (status, retried) = status_of(app.refresh(&first["refresh_token"]).await).await;
    assert_eq!(status, 200, "{retried}");
    let status = listing(&app, retried["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let (status, next) = status_of(app.refresh(&retried["refresh_token"]).await).await;
    assert_eq!(status, 200, "{next}");
}

#[tokio::test]
async fn tokens_of_a_retired_key_or_too_long_a_life_or_no_session_are_refused() {
    let mut app = spawn_app().await;
    let key_path = app.data_dir().join("auth/signing-key.pem");
    let key = mediajet::actors::auth::keys::SigningKey::load_or_generate(&key_path).unwrap();
    let good = claims_of(&app.admin_token().await);
    let with = |field: &str, value: Value| {
        let mut raw = good.clone();
        raw[field] = value;
        let claims: mediajet::token::Claims = serde_json::from_value(raw).unwrap();
        key.sign(&claims).unwrap()
    };
    let ten_years = with("exp", (now() + 10 * 365 * 24 * 3600).into());
    let status = listing(&app, &ten_years).await;
    assert_eq!(status, 401, "a token valid for ten years");
    let no_session = with("sid", Value::Null);
    let status = listing(&app, &no_session).await;
    assert_eq!(status, 401, "a token of no session");
    let control = with("exp", (now() + 600).into());
    let status = listing(&app, &control).await;
    assert_eq!(status, 200, "the control");

    // A new signing key retires the old one: its tokens stop passing, and
    // their sessions renew with the new key.
    let tokens = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.stop().await;
    std::fs::remove_file(&key_path).unwrap();
    app.restart().await;
    let old = tokens["access_token"].as_str().unwrap();
    let status = listing(&app, old).await;
    assert_eq!(status, 401, "a token signed with a retired key");
    let status = listing(&app, &control).await;
    assert_eq!(status, 401);
    let (status, renewed) = status_of(app.refresh(&tokens["refresh_token"]).await).await;
    assert_eq!(status, 200, "{renewed}");
    let status = listing(&app, renewed["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_cancel_never_overwrites_a_job_that_ended_at_the_same_moment() {
    use mediajet::actors::ingest::cancel::{Canceled, cancel};
    use mediajet::wire::{Job, JobState};
    let app = spawn_app_with(|config| {
        config.shared.actors = vec![
            mediajet::config::ActorKind::Auth,
            mediajet::config::ActorKind::Ingest,
        ];
    })
    .await;
    let token = app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let jobs = async_nats::jetstream::new(nats)
        .get_key_value(mediajet::wire::names::JOBS_BUCKET)
        .await
        .unwrap();
    let read = |entry: Option<async_nats::jetstream::kv::Entry>| {
        let entry = entry.unwrap();
        (
            serde_json::from_slice::<Job>(&entry.value).unwrap(),
            entry.revision,
        )
    };
    // A transcoder's writes (progress, then the result), each over the
    // revision it knows, racing a cancel, many times over.
    let mut completed_first = 0;
    for _ in 0..100 {
        let (mut job, revision) = read(jobs.entry(id.as_str()).await.unwrap());
        job.state = JobState::Running;
        job.finished_at = None;
        let revision = jobs
            .update(
                id.as_str(),
                serde_json::to_vec(&job).unwrap().into(),
                revision,
            )
            .await
            .unwrap();
        let mut done = job.clone();
        done.state = JobState::Completed;
        let finish = jobs.update(
            id.as_str(),
            serde_json::to_vec(&done).unwrap().into(),
            revision,
        );
        let (finished, canceled) = tokio::join!(finish, cancel(&jobs, &id));
        let (stored, _) = read(jobs.entry(id.as_str()).await.unwrap());
        match canceled.unwrap() {
            Canceled::Now(_) => {
                assert!(finished.is_err(), "a cancel and a result were both written");
                assert_eq!(stored.state, JobState::Canceled);
            }
            Canceled::AlreadyEnded(ended) => {
                assert!(finished.is_ok());
                assert_eq!(ended.state, JobState::Completed);
                assert_eq!(
                    stored.state,
                    JobState::Completed,
                    "the result was overwritten"
                );
                completed_first += 1;
            }
            Canceled::Gone => panic!("the job vanished"),
        }
    }
    eprintln!("the result came first in {completed_first} of 100 races");
    // Over HTTP, a job that has ended is not canceled: DELETE removes it.
    let response = app.delete(&token, &format!("/v1/jobs/{id}")).await;
    assert!(
        matches!(response.status().as_u16(), 202 | 204),
        "{}",
        response.status()
    );
}

#[tokio::test]
async fn a_malformed_signing_key_stops_the_start_with_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        "-----END PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----\n",
    )
    .unwrap();
    let nats = common::start_nats(dir.path()).await;
    let mut config = mediajet::config::Config::for_data_dir(dir.path().join("data"));
    config.shared.nats_url = Some(nats.url().to_string());
    config.shared.http = "127.0.0.1:0".parse().unwrap();
    config.auth.jwt_key_file = Some(key);
    config.shared.actors = vec![mediajet::config::ActorKind::Auth];
    let outcome = std::thread::spawn(move || mediajet::app::run(config, async {}, |_| {}))
        .join()
        .expect("the start did not panic");
    let err = outcome.expect_err("a malformed key must stop the start");
    assert!(err.to_string().contains("not an Ed25519"), "{err}");
}

#[tokio::test]
async fn a_dependency_that_is_down_is_named_to_the_client_without_its_internals() {
    let mut app = spawn_app().await;
    let token = app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &id).await;
    app.kill_test_nats().await;
    // A job this process has not seen end, so that its state must come
    // from the jobs bucket (a finished one may be answered from memory).
    let unseen = "01a24285-0000-7000-8000-000000000000";
    let (status, body) = status_of(app.job(&token, unseen).await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with("is unavailable; try again later"),
        "{message}"
    );
}

/// Messages and bytes in the uploads bucket's stream.
async fn uploads_stored(nats_url: &str) -> (u64, u64) {
    let nats = async_nats::connect(nats_url).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let mut stream = js.get_stream("OBJ_mediajet_uploads").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    (state.messages, state.bytes)
}

/// Waits until the uploads bucket holds nothing at all.
async fn wait_until_no_uploads_are_stored(nats_url: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let stored = uploads_stored(nats_url).await;
        if stored == (0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left in the uploads bucket: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn refused_and_broken_off_uploads_leave_no_bytes_behind() {
    let app = spawn_app_with(|config| {
        config.ingest.max_upload_bytes = 1024 * 1024;
        config.shared.actors = vec![
            mediajet::config::ActorKind::Auth,
            mediajet::config::ActorKind::Ingest,
        ];
    })
    .await;
    let token = app.admin_token().await;
    let large = app.dir.path().join("large.mp4");
    std::fs::write(&large, vec![7u8; 3 * 1024 * 1024]).unwrap();
    // With an honest Content-Length: refused before a byte is read. The
    // client may see the refusal, or only the connection closing on the
    // body it is still sending.
    for _ in 0..5 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(&large).unwrap()).file_name("large.mp4"),
        );
        let started = Instant::now();
        let response = app.post_form(&token, form).await;
        if let Ok(response) = response {
            assert_eq!(response.status(), 413);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // Without one: refused once the limit is passed, mid-stream.
    for _ in 0..5 {
        let bytes = std::fs::read(&large).unwrap();
        let chunks = futures::stream::iter(
            bytes
                .chunks(256 * 1024)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(chunks))
            .file_name("large.mp4");
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = app.post_form(&token, form).await;
        if let Ok(response) = response {
            assert_eq!(response.status(), 413);
        }
    }
    wait_until_no_uploads_are_stored(&app.ready.nats_url, Duration::from_secs(10)).await;

    // A client that hangs up half-way through a 3 MiB upload.
    let addr = app.ready.http_addr;
    let auth = token.clone();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(upload_head(&auth, 1_000_000).as_bytes())
            .unwrap();
        stream.write_all(&vec![1u8; 900_000]).unwrap();
    })
    .await
    .unwrap();
    wait_until_no_uploads_are_stored(&app.ready.nats_url, Duration::from_secs(10)).await;
    assert!(app.list_jobs(&token).await.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_full_uploads_bucket_refuses_uploads_and_leaves_room_for_everything_else() {
    let app = spawn_app_with(|config| {
        config.shared.uploads_store_bytes = 2 * 1024 * 1024;
        config.shared.actors = vec![
            mediajet::config::ActorKind::Auth,
            mediajet::config::ActorKind::Ingest,
        ];
    })
    .await;
    let token = app.admin_token().await;
    let large = app.dir.path().join("large.mp4");
    std::fs::write(&large, vec![7u8; 3 * 1024 * 1024]).unwrap();
    let (status, body) = status_of(app.upload(&token, &large, None).await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    wait_until_no_uploads_are_stored(&app.ready.nats_url, Duration::from_secs(10)).await;
    // Sessions, jobs and small uploads still have room.
    app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    app.submit(&token, &video).await;
}

#[tokio::test]
async fn broken_off_upload_chunks_left_by_a_dead_process_are_swept() {
    let app = spawn_app_with(|config| {
        // A chunk a second at least: anything still for 1 s + a window is left behind.
        config.ingest.upload_min_rate = 1024 * 1024;
        config.ingest.orphan_sweep = Duration::from_secs(2);
    })
    .await;
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    // What a process killed mid-upload leaves: chunks that no object names.
    for _ in 0..3 {
        js.publish(
            "$O.mediajet_uploads.C.LeftByAProcessThatDied",
            vec![0u8; 100_000].into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let orphan = "$O.mediajet_uploads.C.LeftByAProcessThatDied";
    let stream = js.get_stream("OBJ_mediajet_uploads").await.unwrap();
    assert!(stream.direct_get_last_for_subject(orphan).await.is_ok());
    // Real uploads meanwhile keep their chunks, and convert.
    let token = app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    assert_eq!(
        app.wait_until_finished(&token, &id).await["state"],
        "completed"
    );
    let started = Instant::now();
    while stream.direct_get_last_for_subject(orphan).await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the orphaned chunks stayed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn event_streams_are_capped_per_user_and_end_with_their_session_token_or_process() {
    let mut app = spawn_app_with(|config| {
        config.shared.actors = vec![
            mediajet::config::ActorKind::Auth,
            mediajet::config::ActorKind::Ingest,
        ];
    })
    .await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    // Queued for good: no transcoder runs here.
    let id = app.submit(&ann, &video).await;
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let mut jobs = async_nats::jetstream::new(nats)
        .get_stream("KV_mediajet_jobs")
        .await
        .unwrap();
    // Ingest's own watch (its cache of finished jobs) is made before it
    // serves, so it is counted here.
    let before = jobs.info().await.unwrap().state.consumer_count;
    let mut open = Vec::new();
    for _ in 0..16 {
        let mut events = app.events(&ann, &id).await;
        assert_eq!(
            events.next(Duration::from_secs(5)).await.unwrap().name,
            "state"
        );
        open.push(events);
    }
    let (status, body) = status_of(app.get(&ann, &format!("/v1/jobs/{id}/events")).await).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_streams");
    // Sixteen streams of one job share one watch.
    assert_eq!(jobs.info().await.unwrap().state.consumer_count, before + 1);
    let bob_job = app.submit(&bob, &video).await;
    let mut bobs = app.events(&bob, &bob_job).await;
    bobs.next(Duration::from_secs(5)).await.unwrap();
    // One closed, one more may open.
    open.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get(&ann, &format!("/v1/jobs/{id}/events")).await;
        if response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a closed stream still counts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Logging out ends every stream of the session.
    let logout = app.post(&ann, "/v1/logout", None).await;
    assert_eq!(logout.status(), 204);
    for events in &mut open {
        assert!(
            events.next(Duration::from_secs(5)).await.is_none(),
            "a stream outlived its session"
        );
    }

    // Stopping the process ends the streams still open, without waiting
    // out the drain.
    let started = Instant::now();
    app.stop().await;
    assert!(bobs.next(Duration::from_secs(5)).await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_event_stream_ends_when_its_token_expires() {
    let app = spawn_app_with(|config| {
        config.shared.token_ttl = Duration::from_secs(2);
        config.shared.actors = vec![
            mediajet::config::ActorKind::Auth,
            mediajet::config::ActorKind::Ingest,
        ];
    })
    .await;
    let token = app.admin_token().await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;
    let mut events = app.events(&token, &id).await;
    events.next(Duration::from_secs(5)).await.unwrap();
    assert!(events.next(Duration::from_secs(10)).await.is_none());
}

#[tokio::test]
async fn a_user_cannot_store_more_than_their_quota() {
    let app = spawn_app_with(|config| {
        config.ingest.max_user_bytes = 600 * 1024;
        // Nothing converts: uploads stay stored.
        config.shared.actors = vec![
            mediajet::config::ActorKind::Auth,
            mediajet::config::ActorKind::Ingest,
        ];
    })
    .await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let upload = app.dir.path().join("upload.mp4");
    std::fs::write(&upload, vec![3u8; 400 * 1024]).unwrap();
    let first = app.submit(&ann, &upload).await;
    let (status, body) = status_of(app.upload(&ann, &upload, None).await).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    // Another user's quota is their own.
    app.submit(&bob, &upload).await;
    // Room again once the first job has ended (the history has recorded it).
    let canceled = app.delete(&ann, &format!("/v1/jobs/{first}")).await;
    assert_eq!(canceled.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed: Value = app
            .get(&ann, "/v1/jobs?state=canceled")
            .await
            .json()
            .await
            .unwrap();
        if listed.as_array().is_some_and(|jobs| !jobs.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cancel never reached the history"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.submit(&ann, &upload).await;
}

#[tokio::test]
async fn a_job_whose_audio_would_pass_the_quota_fails_with_the_reason() {
    let app = spawn_app_with(|config| config.ingest.max_user_bytes = 2 * 1024 * 1024).await;
    let token = app.admin_token().await;
    // A minute of video is small; as WAV it is about 10 MB.
    let video = common::make_video(app.dir.path(), "minute.mp4", 60);
    let id = app.submit_with(&token, &video, &[("format", "wav")]).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("larger than the limit"),
        "{job}"
    );
    assert_eq!(job["attempts"], 1, "not retried");
}

#[tokio::test]
async fn a_flood_of_logins_waits_for_a_few_password_checks_and_slow_answers_time_out() {
    let app = spawn_app_with(|config| {
        // One argon2 check at a time, and little patience for an answer.
        config.auth.max_password_checks = 1;
        config.ingest.http_request_timeout = Duration::from_millis(300);
        config.ingest.login_failures = 1000;
    })
    .await;
    let logins = (0..30).map(|_| app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD));
    let answers = futures::future::join_all(logins).await;
    let mut statuses = Vec::new();
    for answer in answers {
        let (status, body) = status_of(answer).await;
        if status != 200 {
            assert_eq!(status, 503, "{body}");
            assert!(
                ["timed_out", "busy"].contains(&body["error"]["code"].as_str().unwrap()),
                "{body}"
            );
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.contains(&503),
        "thirty checks in a row fit the timeout: {statuses:?}"
    );
    // The queue drains; the service answers normally again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status() != 200 {
        assert!(Instant::now() < deadline, "logins never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
