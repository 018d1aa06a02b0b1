//! Who may do what: tokens, roles and job ownership.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{ADMIN_EMAIL, spawn_app};
use mediajet::actors::auth::keys::SigningKey;
use mediajet::token::Claims;
use mediajet::wire::Role;
use serde_json::Value;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(exp: u64) -> Claims {
    Claims {
        sub: "someone".into(),
        email: ADMIN_EMAIL.into(),
        role: Role::Admin,
        iss: "mediajet".into(),
        aud: "mediajet".into(),
        iat: now(),
        exp,
        // Tokens belong to a session and live no longer than Auth issues them.
        sid: Some("0123456789abcdef0123456789abcdef".into()),
    }
}

async fn status_of_listing(app: &common::TestApp, token: Option<&str>) -> (u16, Value) {
    let mut request = app.http.get(app.url("/v1/jobs"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_without_a_valid_token_are_rejected_with_401() {
    let app = spawn_app().await;
    let real_key =
        SigningKey::load_or_generate(&app.data_dir().join("auth/signing-key.pem")).unwrap();

    let (status, body) = status_of_listing(&app, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");

    let (status, _) = status_of_listing(&app, Some("not-a-token")).await;
    assert_eq!(status, 401);

    let expired = real_key.sign(&claims(now() - 3600)).unwrap();
    let (status, _) = status_of_listing(&app, Some(&expired)).await;
    assert_eq!(status, 401, "an expired token");

    // Signed by a key of our own making, under an unknown key id.
    let other_dir = tempfile::tempdir().unwrap();
    let forger = SigningKey::load_or_generate(&other_dir.path().join("key.pem")).unwrap();
    let forged = forger.sign(&claims(now() + 600)).unwrap();
    let (status, _) = status_of_listing(&app, Some(&forged)).await;
    assert_eq!(status, 401, "a token from another key");

    // The real key id on the header, the signature of another key.
    let valid = real_key.sign(&claims(now() + 600)).unwrap();
    let forged_parts: Vec<&str> = forged.split('.').collect();
    let valid_parts: Vec<&str> = valid.split('.').collect();
    let spliced = format!("{}.{}.{}", valid_parts[0], valid_parts[1], forged_parts[2]);
    let (status, _) = status_of_listing(&app, Some(&spliced)).await;
    assert_eq!(status, 401, "a signature that does not match");

    // And the control: a token signed with the real key is accepted.
    let (status, _) = status_of_listing(&app, Some(&valid)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    let wrong_password = app
        .http
        .post(app.url("/v1/login"))
        .basic_auth(ADMIN_EMAIL, Some("not the password"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_password.status(), 401);
    // Basic credentials are challenged with Basic again ...
    assert_eq!(
        wrong_password.headers()["www-authenticate"],
        "Basic realm=\"mediajet\""
    );
    let wrong_password: Value = wrong_password.json().await.unwrap();

    let unknown = app
        .http
        .post(app.url("/v1/login"))
        .json(&serde_json::json!({"email": "nobody@example.com", "password": "whatever-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    // ... JSON ones are not: a browser's fetch would open a password dialog.
    let challenge = unknown.headers()["www-authenticate"].to_str().unwrap();
    assert!(!challenge.starts_with("Basic"), "{challenge}");
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(wrong_password, unknown);
    assert_eq!(unknown["error"]["code"], "invalid_credentials");

    let no_credentials = app.http.post(app.url("/v1/login")).send().await.unwrap();
    assert_eq!(no_credentials.status(), 401);

    let bad_json = app
        .http
        .post(app.url("/v1/login"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
}

#[tokio::test]
async fn a_login_returns_a_bearer_token_that_says_who_and_what_the_user_is() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/v1/login"))
        .basic_auth(ADMIN_EMAIL, Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 15 * 60);
    assert!(body["refresh_token"].is_string());
    let token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert!(header.kid.is_some());
    let mut parts = token.split('.');
    parts.next();
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts.next().unwrap())
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["role"], "admin");
    assert_eq!(claims["iss"], "mediajet");
    assert_eq!(claims["aud"], "mediajet");
    assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
    assert!(claims["sid"].is_string(), "the token names its session");
}

#[tokio::test]
async fn only_admins_create_users_and_emails_are_unique() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let user = app.new_user("hal@example.com").await;

    let by_user = app
        .http
        .post(app.url("/v1/users"))
        .bearer_auth(&user)
        .json(&serde_json::json!({"email": "ivy@example.com", "password": "password-123", "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_user.status(), 403);

    let duplicate = app
        .http
        .post(app.url("/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"email": "HAL@example.com", "password": "password-123", "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    let body: Value = duplicate.json().await.unwrap();
    assert_eq!(body["error"]["code"], "email_taken");

    let weak = app
        .http
        .post(app.url("/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"email": "jo@example.com", "password": "short", "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 400);

    let created = app
        .http
        .post(app.url("/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"email": "kim@example.com", "password": "password-123", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["email"], "kim@example.com");
    assert_eq!(body["role"], "admin");
    assert!(body.get("password_hash").is_none());
}

#[tokio::test]
async fn one_user_cannot_see_download_or_list_another_users_job() {
    let app = spawn_app().await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let video = common::make_video(app.dir.path(), "private.mp4", 1);
    let id = app.submit(&ann, &video).await;
    assert_eq!(
        app.wait_until_finished(&ann, &id).await["state"],
        "completed"
    );

    for path in [
        format!("/v1/jobs/{id}"),
        format!("/v1/jobs/{id}/output"),
        format!("/download?fid={id}"),
    ] {
        let response = app.get(&bob, &path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("private"), "{path} leaks data: {body}");
    }
    let (status, list) = status_of_listing(&app, Some(&bob)).await;
    assert_eq!(status, 200);
    assert_eq!(list, serde_json::json!([]));

    // Ann still sees her own job.
    let (_, list) = status_of_listing(&app, Some(&ann)).await;
    assert_eq!(list[0]["id"], id.as_str());
}

/// A JWT from raw parts: header and payload as JSON, and a signature
/// computed by `sign` over `header.payload`.
fn raw_token(header: &Value, payload: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(payload.to_string())
    );
    let signature = b64.encode(sign(signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_all_rejected_with_401() {
    use base64::Engine;
    let app = spawn_app().await;
    let pem_path = app.data_dir().join("auth/signing-key.pem");
    let real_key = SigningKey::load_or_generate(&pem_path).unwrap();
    let kid = real_key.public().kid.clone();
    let pem = std::fs::read(&pem_path).unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(&pem).unwrap();
    // Signs any payload with the real key, as Auth would.
    let real_sign = |payload: &Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, payload, &encoding).unwrap()
    };
    let good = serde_json::to_value(claims(now() + 600)).unwrap();
    let with = |key: &str, value: Value| {
        let mut payload = good.clone();
        payload[key] = value;
        payload
    };

    // The control: the real key over good claims is accepted.
    let (status, _) = status_of_listing(&app, Some(&real_sign(&good))).await;
    assert_eq!(status, 200);

    let public_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&real_key.public().x)
        .unwrap();
    let hmac_with_public_key = |input: &[u8]| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public_key);
        aws_lc_rs::hmac::sign(&key, input).as_ref().to_vec()
    };
    let valid = real_sign(&good);
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            raw_token(
                &serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}),
                &good,
                |_| vec![],
            ),
        ),
        (
            "HS256 signed with the public key",
            raw_token(
                &serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
                &good,
                hmac_with_public_key,
            ),
        ),
        ("truncated", valid[..valid.len() - 10].to_string()),
        (
            "no signature",
            valid.rsplit_once('.').unwrap().0.to_string() + ".",
        ),
        ("expired", real_sign(&with("exp", (now() - 60).into()))),
        (
            "wrong issuer",
            real_sign(&with("iss", "someone-else".into())),
        ),
        (
            "wrong audience",
            real_sign(&with("aud", "another-service".into())),
        ),
        (
            "string exp",
            real_sign(&with("exp", (now() + 600).to_string().into())),
        ),
        ("no exp", {
            let mut payload = good.clone();
            payload.as_object_mut().unwrap().remove("exp");
            real_sign(&payload)
        }),
        (
            "unknown kid",
            raw_token(
                &serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "00ff00ff"}),
                &good,
                |_| vec![0; 64],
            ),
        ),
        (
            "kid that is not a key id",
            raw_token(
                &serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "../keys/>"}),
                &good,
                |_| vec![0; 64],
            ),
        ),
    ];
    for (name, token) in cases {
        let (status, body) = status_of_listing(&app, Some(&token)).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{name}");
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_per_client_address() {
    let app = common::spawn_app_with(|config| {
        config.ingest.login_failures = 3;
        config.ingest.login_window = std::time::Duration::from_secs(60);
    })
    .await;
    app.new_user("ann@example.com").await;
    app.new_user("bob@example.com").await;
    let login = |email: &str, password: &str| {
        app.http
            .post(app.url("/v1/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
    };

    for _ in 0..3 {
        assert_eq!(
            login("ann@example.com", "wrong").await.unwrap().status(),
            401
        );
    }
    // Now even the right password is not checked for this account.
    let blocked = login("ann@example.com", common::USER_PASSWORD)
        .await
        .unwrap();
    assert_eq!(blocked.status(), 429);
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = blocked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_logins");
    // Another account from the same address still logs in ...
    assert_eq!(
        login("bob@example.com", common::USER_PASSWORD)
            .await
            .unwrap()
            .status(),
        200
    );
    // ... until the address itself has failed four times the limit.
    for i in 0..9 {
        let status = login(&format!("nobody{i}@example.com"), "wrong")
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let address_blocked = login("bob@example.com", common::USER_PASSWORD)
        .await
        .unwrap();
    assert_eq!(address_blocked.status(), 429);
    // The seed route shares the limits.
    let seed = app
        .http
        .post(app.url("/login"))
        .basic_auth("bob@example.com", Some(common::USER_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), 429);
}

#[tokio::test]
async fn a_user_with_too_many_unfinished_jobs_is_refused_until_one_ends() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| {
        config.transcoder.ffmpeg = slow;
        config.transcoder.transcoders = Some(1);
        config.ingest.max_unfinished_jobs = 2;
    })
    .await;
    let ann = app.new_user("ann@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let video = common::make_video(app.dir.path(), "long.mp4", 30);
    let first = app.submit(&ann, &video).await;
    app.submit(&ann, &video).await;

    let refused = upload_refused_early(&app, &ann, &video).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_jobs", "{body}");
    assert_eq!(
        app.list_jobs(&ann).await.as_array().unwrap().len(),
        2,
        "nothing kept"
    );
    // Other users are not held up by Ann's queue.
    app.submit(&bob, &video).await;

    // Once one of Ann's jobs has ended, she may submit again.
    assert_eq!(
        app.delete(&ann, &format!("/v1/jobs/{first}"))
            .await
            .status(),
        202
    );
    let started = std::time::Instant::now();
    loop {
        let response = upload_refused_early(&app, &ann, &video).await;
        if response.status() == 202 {
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(
            started.elapsed().as_secs() < 10,
            "still refused after a cancel"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The answer to an upload the service may refuse before it reads the body.
/// It then closes the connection, and the client, still sending, may see
/// only that (a broken pipe) rather than the answer: such a request is sent
/// again, as a client would, since a refused upload keeps nothing.
async fn upload_refused_early(
    app: &common::TestApp,
    token: &str,
    video: &std::path::Path,
) -> reqwest::Response {
    let bytes = std::fs::read(video).unwrap();
    for _ in 0..10 {
        let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name("long.mp4");
        let form = reqwest::multipart::Form::new().part("file", part);
        match app.post_form(token, form).await {
            Ok(response) => return response,
            Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
        }
    }
    panic!("ten uploads in a row got no answer");
}

#[tokio::test]
async fn oversized_json_bodies_and_headers_are_refused_without_reading_them_whole() {
    let app = spawn_app().await;
    let password = "x".repeat(2 * 1024 * 1024);
    let huge = serde_json::json!({"email": ADMIN_EMAIL, "password": password});
    let response = app
        .http
        .post(app.url("/v1/login"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large", "{body}");

    // A header block far beyond any real client's is refused by the server.
    let response = app
        .http
        .get(app.url("/v1/jobs"))
        .header("X-Padding", "y".repeat(1024 * 1024))
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status(), 431),
        // Or the connection is closed on it, which the client reports.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    // And the service is fine afterwards.
    assert_eq!(app.readiness().await["status"], "ready");
}
