//! API keys: shown once, kept hashed, good on every route their scopes
//! allow (over HTTP and NATS) and on no other, refused on every process at
//! once when revoked.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, TestApp, spawn_app, spawn_app_on, submit_over_nats};
use mediajet::config::ActorKind;

async fn make_key(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn status_with(app: &TestApp, method: reqwest::Method, path: &str, auth: &str) -> u16 {
    app.http
        .request(method, app.url(path))
        .header("Authorization", auth)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_key_works_where_its_scopes_allow_over_http_and_nats_and_nowhere_else() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let made = make_key(
        &app,
        &ann,
        json!({"scopes": ["jobs:write", "jobs:read"], "name": "ci"}),
    )
    .await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("mjk_"), "{made}");
    let listed: Value = app.get(&ann, "/v1/api-keys").await.json().await.unwrap();
    assert_eq!(listed[0]["id"], made["id"]);
    assert_eq!(listed[0]["name"], "ci");
    assert!(
        !listed.to_string().contains(&key[20..]),
        "a secret is listed: {listed}"
    );

    // The key submits, reads and downloads, as a bearer or as an ApiKey.
    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    let id = app.submit(&key, &video).await;
    let job = app.wait_until_finished(&key, &id).await;
    assert_eq!(job["state"], "completed");
    let output = format!("/v1/jobs/{id}/output");
    let with_scheme = format!("ApiKey {key}");
    assert_eq!(
        status_with(&app, reqwest::Method::GET, &output, &with_scheme).await,
        200
    );
    assert_eq!(app.list_jobs(&ann).await[0]["id"], id.as_str());

    // Over NATS too: a submission's Authorization header may carry it.
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let reply = submit_over_nats(
        &nats,
        &key,
        &json!({"v": 1, "object": "ann@example.com/nothing.mp4"}),
    )
    .await;
    assert_eq!(reply["error"]["code"], "no_such_upload", "{reply}");

    // Never on accounts, sessions or keys.
    let bearer = format!("Bearer {key}");
    for (method, path) in [
        (reqwest::Method::GET, "/v1/me"),
        (reqwest::Method::GET, "/v1/api-keys"),
        (reqwest::Method::POST, "/v1/api-keys"),
        (reqwest::Method::GET, "/v1/users"),
    ] {
        assert_eq!(
            status_with(&app, method, path, &bearer).await,
            403,
            "{path}"
        );
    }

    // A read-only key reads and cannot write.
    let reader = make_key(&app, &ann, json!({"scopes": ["jobs:read"]})).await;
    let reader: Value = reader.json().await.unwrap();
    let reader = format!("Bearer {}", reader["key"].as_str().unwrap());
    assert_eq!(
        status_with(&app, reqwest::Method::GET, "/v1/jobs", &reader).await,
        200
    );
    let refused = app
        .http
        .post(app.url("/v1/jobs"))
        .header("Authorization", &reader)
        .multipart(common::upload_form(&video, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(refused).await, (403, "forbidden".into()));
    let delete = format!("/v1/jobs/{id}");
    assert_eq!(
        status_with(&app, reqwest::Method::DELETE, &delete, &reader).await,
        403
    );
    let reply = submit_over_nats(
        &nats,
        reader.trim_start_matches("Bearer "),
        &json!({"v": 1, "object": "ann@example.com/x.mp4"}),
    )
    .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");

    // Its last use is written down.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed: Value = app.get(&ann, "/v1/api-keys").await.json().await.unwrap();
        let first = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == made["id"])
            .unwrap();
        if first["last_used_at"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "no last use recorded: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A made-up key, or a real id with another secret, is no key.
    let forged = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('A') { "B" } else { "A" }
    );
    assert_eq!(
        status_with(
            &app,
            reqwest::Method::GET,
            "/v1/jobs",
            &format!("Bearer {forged}")
        )
        .await,
        401
    );
}

#[tokio::test]
async fn a_revoked_key_stops_on_every_process_at_once_and_admins_see_everyone_s() {
    let front = spawn_app().await;
    let other = spawn_app_on(&front.ready.nats_url, |config| {
        config.shared.actors = vec![ActorKind::Ingest];
    })
    .await;
    let admin = front.admin_token().await;
    let ann = front.new_user("ann@example.com").await;
    let bob = front.new_user("bob@example.com").await;
    let made: Value = make_key(&front, &ann, json!({"scopes": ["jobs:read"]}))
        .await
        .json()
        .await
        .unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let key = format!("Bearer {}", made["key"].as_str().unwrap());
    // The other process knows the key once its mirror has it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while status_with(&other, reqwest::Method::GET, "/v1/jobs", &key).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the other process never took the key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Bob can neither see nor revoke it; an admin sees and revokes anyone's.
    let path = format!("/v1/api-keys/{id}");
    assert_eq!(
        status_with(
            &front,
            reqwest::Method::DELETE,
            &path,
            &format!("Bearer {bob}")
        )
        .await,
        404
    );
    let asked = front.get(&bob, "/v1/api-keys?user=all").await;
    assert_eq!(asked.status(), 403);
    let everyone: Value = front
        .get(&admin, "/v1/api-keys?user=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(everyone.as_array().unwrap().len(), 1, "{everyone}");
    let ann_id = everyone[0]["user"].as_str().unwrap().to_string();
    let anns: Value = front
        .get(&admin, &format!("/v1/api-keys?user={ann_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(anns[0]["id"], id.as_str());

    assert_eq!(
        status_with(
            &front,
            reqwest::Method::DELETE,
            &path,
            &format!("Bearer {admin}")
        )
        .await,
        204
    );
    let revoked = Instant::now();
    assert_eq!(
        status_with(&front, reqwest::Method::GET, "/v1/jobs", &key).await,
        401
    );
    while status_with(&other, reqwest::Method::GET, "/v1/jobs", &key).await != 401 {
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "still accepted after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("refused on the other process after {:?}", revoked.elapsed());
    assert_eq!(front.list_jobs(&ann).await, json!([]));
}

#[tokio::test]
async fn keys_are_refused_with_a_reason_when_asked_for_wrongly() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    for body in [
        json!({"scopes": []}),
        json!({"scopes": ["jobs:everything"]}),
        json!({"scopes": ["jobs:read"], "name": "x".repeat(101)}),
        json!({"scopes": ["jobs:read"], "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"scopes": ["jobs:read"], "colour": "red"}),
    ] {
        let response = make_key(&app, &ann, body.clone()).await;
        assert_eq!(
            error_code(response).await,
            (400, "invalid_key".into()),
            "{body}"
        );
    }
    for _ in 0..20 {
        let response = make_key(&app, &ann, json!({"scopes": ["jobs:read"]})).await;
        assert_eq!(response.status(), 201);
    }
    let one_more = make_key(&app, &ann, json!({"scopes": ["jobs:read"]})).await;
    assert_eq!(error_code(one_more).await, (409, "too_many_keys".into()));
    // A key that has expired is no key.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let bob = app.new_user("bob@example.com").await;
    let made: Value = make_key(
        &app,
        &bob,
        json!({"scopes": ["jobs:read"], "expires_at": soon}),
    )
    .await
    .json()
    .await
    .unwrap();
    let key = format!("Bearer {}", made["key"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_with(&app, reqwest::Method::GET, "/v1/jobs", &key).await == 200 {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        status_with(&app, reqwest::Method::GET, "/v1/jobs", &key).await,
        401
    );
}
