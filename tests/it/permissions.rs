//! The production `nats.conf`: every actor runs under its own NATS user with
//! only the permissions it needs, and a forbidden action is refused.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::spawn_app_on;
use mediajet::config::{ActorKind, Config};
use mediajet::wire::{names, subject};

use crate::common::{nats_password as password, start_nats_with_users};

fn as_user(config: &mut Config, actor: ActorKind) {
    config.shared.actors = vec![actor];
    config.shared.nats_user = Some(actor.name().to_string());
    config.shared.nats_password = Some(password(actor.name()));
}

/// A raw client logged in as `user`, recording the errors the server sends.
async fn connect_as(url: &str, user: &str) -> (async_nats::Client, Arc<Mutex<Vec<String>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
        .custom_inbox_prefix(format!("_INBOX_{user}"))
        .event_callback(move |event| {
            let seen = seen.clone();
            async move {
                if let async_nats::Event::ServerError(err) = event {
                    seen.lock().expect("errors lock").push(err.to_string());
                }
            }
        })
        .connect(url)
        .await
        .expect("connect to nats");
    (client, errors)
}

/// Waits up to five seconds for a permissions violation naming `subject`.
async fn refused(errors: &Arc<Mutex<Vec<String>>>, subject: &str) -> bool {
    for _ in 0..50 {
        let found = errors
            .lock()
            .expect("errors lock")
            .iter()
            .any(|e| e.to_lowercase().contains("permissions violation") && e.contains(subject));
        if found {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn each_actor_works_under_its_own_nats_user() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats_with_users(dir.path()).await;
    let url = nats.url().to_string();

    let _auth = spawn_app_on(&url, |c| as_user(c, ActorKind::Auth)).await;
    // Imports and webhooks reach the tests' local servers.
    let ingest = spawn_app_on(&url, |c| {
        as_user(c, ActorKind::Ingest);
        c.shared.allow_private_targets = true;
    })
    .await;
    let _transcoder = spawn_app_on(&url, |c| as_user(c, ActorKind::Transcoder)).await;
    let mailer = spawn_app_on(&url, |c| {
        as_user(c, ActorKind::Mailer);
        c.shared.allow_private_targets = true;
    })
    .await;

    let token = ingest.new_user("ann@example.com").await;
    let video = common::make_video(ingest.dir.path(), "clip.mp4", 2);
    let id = ingest.submit(&token, &video).await;
    // Live events: a KV watch, the queue's consumer info, job starts.
    let mut events = ingest.events(&token, &id).await;
    let mut last = None;
    while let Some(event) = events.next(Duration::from_secs(30)).await {
        last = Some(event.data);
    }
    assert_eq!(last.unwrap()["state"], "completed");
    let job = ingest.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let download = ingest.get(&token, &format!("/v1/jobs/{id}/output")).await;
    assert_eq!(download.status(), 200);
    assert!(download.bytes().await.unwrap().len() > 10_000);
    let mails = mailer.outbox(1).await;
    assert_eq!(mails.len(), 1, "one email for the job");

    // Cancel a job at once, and delete the finished one with its audio.
    let second = ingest.submit(&token, &video).await;
    for (id, expected) in [(&second, [202, 204]), (&id, [204, 204])] {
        let response = ingest.delete(&token, &format!("/v1/jobs/{id}")).await;
        assert!(expected.contains(&response.status().as_u16()), "{id}");
    }
    let job = ingest.wait_until_finished(&token, &second).await;
    assert!(["canceled", "completed"].contains(&job["state"].as_str().unwrap_or_default()));

    // A script submits over NATS as `submitter`: Ingest serves it, reads
    // the upload's info and notes the message id under its own user.
    let (operator, _) = connect_as(&url, "submitter").await;
    let js = async_nats::jetstream::new(operator.clone());
    let uploads = js.get_object_store(names::UPLOADS_BUCKET).await.unwrap();
    let mut file = tokio::fs::File::open(&video).await.unwrap();
    uploads
        .put("ann@example.com/clip.mp4", &mut file)
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {token}").as_str());
    headers.insert("Nats-Msg-Id", "clip-1");
    let body = bytes::Bytes::from_static(br#"{"v":1,"object":"ann@example.com/clip.mp4"}"#);
    let reply = operator
        .request_with_headers(subject::SUBMIT, headers, body)
        .await
        .expect("Ingest answers a submission");
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let id = reply["job"]["id"].as_str().expect("a job id").to_string();
    let job = ingest.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");

    // A resumable upload: its record in the tus bucket, a part whose
    // checksum fails (its chunks deleted one by one), the rest, its job;
    // and another upload given up (its record and chunks purged).
    let bytes = bytes::Bytes::from(std::fs::read(&video).unwrap());
    let half = bytes.len() / 2;
    let url = common::tus_create(&ingest.api, &token, bytes.len() as u64, "").await;
    let corrupted = common::tus_request(&ingest.http, reqwest::Method::PATCH, &url, &token)
        .header("Upload-Offset", 0)
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Checksum", "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body(bytes.slice(..half))
        .send()
        .await
        .unwrap();
    assert_eq!(corrupted.status(), 460);
    let first = common::tus_patch(&ingest.api, &token, &url, 0, bytes.slice(..half)).await;
    assert_eq!(first.status(), 204);
    let rest = common::tus_patch(&ingest.api, &token, &url, half as u64, bytes.slice(half..)).await;
    assert_eq!(rest.status(), 204);
    let id = rest.headers()["mediajet-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    let job = ingest.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let given_up = common::tus_create(&ingest.api, &token, bytes.len() as u64, "").await;
    let part = common::tus_patch(&ingest.api, &token, &given_up, 0, bytes.slice(..half)).await;
    assert_eq!(part.status(), 204);
    let ended = common::tus_request(&ingest.http, reqwest::Method::DELETE, &given_up, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);

    // URL imports, fetched and queued under Ingest's user; one that fails
    // fails its job with a `failed` event Ingest announces. Each job tells
    // its `notify_url`, through Mailer, signed with the job secret.
    let served = ingest.dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::copy(&video, served.join("clip.mp4")).unwrap();
    let server = common::FileServer::start(&served);
    let receiver = common::Receiver::start(ingest.dir.path(), "job", "200");
    let secret: serde_json::Value = ingest
        .post(&token, "/v1/webhooks/job-secret", None)
        .await
        .json()
        .await
        .unwrap();
    for (path, state) in [("clip.mp4", "completed"), ("missing.mp4", "failed")] {
        let asked = serde_json::json!({
            "source_url": format!("{}/{path}", server.base),
            "notify_url": receiver.url,
        });
        let made: serde_json::Value = ingest
            .post(&token, "/v1/jobs", Some(&asked))
            .await
            .json()
            .await
            .unwrap();
        let job = ingest
            .wait_until_finished(&token, made["id"].as_str().unwrap())
            .await;
        assert_eq!(job["state"], state, "{job}");
    }
    let secret = secret["secret"].as_str().unwrap();
    let told = receiver.received(secret, 2, Duration::from_secs(15)).await;
    assert!(told.iter().all(|r| r["svix"] == true), "{told:?}");

    // Sessions: a refresh rotates the refresh token in Auth's bucket, a
    // logout revokes the session, and Ingest's watch refuses its token.
    let tokens = ingest
        .tokens("ann@example.com", common::USER_PASSWORD)
        .await;
    let refreshed: serde_json::Value = ingest
        .refresh(&tokens["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    let access = refreshed["access_token"].as_str().expect("refreshed");
    let logout = ingest.post(access, "/v1/logout", None).await;
    assert_eq!(logout.status(), 204);
    assert_eq!(ingest.get(access, "/v1/jobs").await.status(), 401);

    // Nothing any actor did was refused by the server.
    let log = std::fs::read_to_string(dir.path().join("nats-server.log")).unwrap();
    assert!(
        !log.contains("Violation - "),
        "an actor needed more than its permissions:\n{log}"
    );
}

#[tokio::test]
async fn an_actor_user_is_refused_what_its_actor_does_not_need() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats_with_users(dir.path()).await;
    let url = nats.url().to_string();
    // Auth creates the keys bucket; Ingest the uploads bucket.
    let _front = spawn_app_on(&url, |c| {
        c.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest];
        c.shared.nats_user = Some("operator".into());
        c.shared.nats_password = Some(password("operator"));
    })
    .await;
    let login = bytes::Bytes::from_static(br#"{"v":1,"email":"a@b.c","password":"x"}"#);

    // The operator may do everything: the same requests get answers.
    let (operator, _) = connect_as(&url, "operator").await;
    let reply = operator
        .request(subject::LOGIN, login.clone())
        .await
        .expect("the operator reaches Auth");
    assert!(String::from_utf8_lossy(&reply.payload).contains("error"));

    // A transcoder cannot call Auth, nor read the signing keys.
    let (transcoder, errors) = connect_as(&url, "transcoder").await;
    let call = tokio::time::timeout(
        Duration::from_secs(3),
        transcoder.request(subject::LOGIN, login.clone()),
    )
    .await;
    assert!(!matches!(call, Ok(Ok(_))), "a transcoder got a login reply");
    assert!(refused(&errors, subject::LOGIN).await, "{errors:?}");
    let mut js = async_nats::jetstream::new(transcoder);
    js.set_timeout(Duration::from_secs(2));
    assert!(js.get_key_value(names::KEYS_BUCKET).await.is_err());
    let keys_info = format!("$JS.API.STREAM.INFO.KV_{}", names::KEYS_BUCKET);
    assert!(refused(&errors, &keys_info).await, "{errors:?}");

    // Mailer never sees media.
    let (mailer, errors) = connect_as(&url, "mailer").await;
    let mut js = async_nats::jetstream::new(mailer);
    js.set_timeout(Duration::from_secs(2));
    assert!(js.get_object_store(names::UPLOADS_BUCKET).await.is_err());
    let uploads_info = format!("$JS.API.STREAM.INFO.OBJ_{}", names::UPLOADS_BUCKET);
    assert!(refused(&errors, &uploads_info).await, "{errors:?}");

    // Nobody but Auth may serve Auth's subjects.
    let (ingest, errors) = connect_as(&url, "ingest").await;
    let _ = ingest.subscribe(subject::LOGIN).await;
    assert!(refused(&errors, subject::LOGIN).await, "{errors:?}");

    // The server logs refusals, which is what the other test relies on.
    let log = std::fs::read_to_string(dir.path().join("nats-server.log")).unwrap();
    assert!(log.contains("Publish Violation - "), "{log}");
    assert!(log.contains("Subscription Violation - "), "{log}");
}

#[tokio::test]
async fn a_submitter_or_a_compromised_transcoder_cannot_read_logins_or_choose_a_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats_with_users(dir.path()).await;
    let url = nats.url().to_string();
    let _auth = spawn_app_on(&url, |c| as_user(c, ActorKind::Auth)).await;
    let ingest = spawn_app_on(&url, |c| as_user(c, ActorKind::Ingest)).await;
    let mailer = spawn_app_on(&url, |c| as_user(c, ActorKind::Mailer)).await;
    let token = ingest.new_user("ann@example.com").await;
    let video = common::make_video(ingest.dir.path(), "clip.mp4", 1);
    // No transcoder runs: the job waits, and a forged end is all there is.
    let id = ingest.submit(&token, &video).await;

    // A submitter can neither listen to logins nor ask Auth.
    let (submitter, errors) = connect_as(&url, "submitter").await;
    let _ = submitter.subscribe(subject::LOGIN).await;
    assert!(refused(&errors, subject::LOGIN).await, "{errors:?}");
    let _ = submitter.subscribe("_INBOX_ingest.>").await;
    assert!(refused(&errors, "_INBOX_ingest.>").await, "{errors:?}");

    // A transcoder announces the job completed, for someone else's inbox.
    let (transcoder, errors) = connect_as(&url, "transcoder").await;
    let js = async_nats::jetstream::new(transcoder.clone());
    let live = js
        .get_key_value(names::JOBS_BUCKET)
        .await
        .unwrap()
        .get(id.as_str())
        .await
        .unwrap()
        .expect("the job's live state");
    let mut forged: serde_json::Value = serde_json::from_slice(&live).unwrap();
    forged["state"] = "completed".into();
    forged["owner"] = "mallory".into();
    forged["owner_email"] = "mallory@example.net".into();
    let event = format!("mediajet.events.job.{id}.completed");
    js.publish(event, forged.to_string().into())
        .await
        .unwrap()
        .await
        .expect("a transcoder may announce a completed job");
    // It may not write who owns a job, nor announce other states.
    let owners = format!("$KV.{}.{id}", names::OWNERS_BUCKET);
    transcoder
        .publish(owners.clone(), "{}".into())
        .await
        .unwrap();
    assert!(refused(&errors, &owners).await, "{errors:?}");
    let queued = format!("mediajet.events.job.{id}.queued");
    transcoder
        .publish(queued.clone(), "{}".into())
        .await
        .unwrap();
    assert!(refused(&errors, &queued).await, "{errors:?}");

    let mails = mailer.outbox(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: ann@example.com"), "{}", mails[0]);
    assert!(!mails[0].contains("mallory"), "{}", mails[0]);
}
