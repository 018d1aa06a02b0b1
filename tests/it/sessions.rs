//! Login sessions: short-lived access tokens, refresh tokens that rotate on
//! use, replay detection, and logout that revokes at once, everywhere.

use std::time::Duration;

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, spawn_app_on, spawn_app_with};
use mediajet::config::ActorKind;
use serde_json::Value;

/// Logs in and returns the whole token answer.
async fn login(api: &Api) -> Value {
    api.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await
}

async fn refresh(api: &Api, refresh_token: &Value) -> (u16, Value) {
    let response = api.refresh(refresh_token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn logout(api: &Api, body: Option<Value>, bearer: Option<&str>) -> u16 {
    let mut request = api.http.post(api.url("/v1/logout"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

/// The status of listing jobs with the access token of `tokens`.
async fn listing(api: &Api, tokens: &Value) -> u16 {
    api.get(tokens["access_token"].as_str().unwrap(), "/v1/jobs")
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_refresh_token_renews_the_access_token_once_and_a_replay_revokes_the_session() {
    let app = spawn_app_with(|_| {}).await;
    let first = login(&app).await;
    assert_eq!(
        first["expires_in"],
        15 * 60,
        "access tokens are short-lived"
    );
    assert!(first["refresh_expires_in"].as_u64().unwrap() > 29 * 24 * 3600);

    let (status, second) = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(listing(&app, &second).await, 200);

    // A forged secret for the same session is refused, and does not end it.
    let real = second["refresh_token"].as_str().unwrap();
    let (prefix, _) = real.rsplit_once('.').unwrap();
    let forged = Value::from(format!(
        "{prefix}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    ));
    let (status, body) = refresh(&app, &forged).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_refresh_token");
    let (status, third) = refresh(&app, &second["refresh_token"]).await;
    assert_eq!(status, 200, "a forged attempt ended the session: {third}");

    // The first refresh token was spent: presenting it again means a copy
    // exists, so the whole session ends, including tokens issued since.
    let (status, body) = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "refresh_token_reused");
    assert_eq!(
        listing(&app, &third).await,
        401,
        "access token of a revoked session"
    );
    assert_eq!(listing(&app, &first).await, 401);
    let (status, _) = refresh(&app, &third["refresh_token"]).await;
    assert_eq!(status, 401, "the newest refresh token of a revoked session");

    // Other sessions of the same user are untouched.
    let other = login(&app).await;
    assert_eq!(listing(&app, &other).await, 200);

    for bad in [
        serde_json::json!({}),
        serde_json::json!({"refresh_token": 7}),
        serde_json::json!({"refresh_token": "x", "extra": 1}),
    ] {
        let response = app
            .http
            .post(app.url("/v1/tokens/refresh"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    let (status, _) = refresh(&app, &Value::from("not.a.token")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn logout_ends_the_session_at_once_and_can_be_repeated() {
    let app = spawn_app_with(|_| {}).await;

    let by_refresh = login(&app).await;
    let body = serde_json::json!({ "refresh_token": by_refresh["refresh_token"] });
    assert_eq!(logout(&app, Some(body.clone()), None).await, 204);
    assert_eq!(listing(&app, &by_refresh).await, 401, "right after logout");
    let (status, _) = refresh(&app, &by_refresh["refresh_token"]).await;
    assert_eq!(status, 401);
    assert_eq!(logout(&app, Some(body), None).await, 204, "logout again");

    let by_bearer = login(&app).await;
    let access = by_bearer["access_token"].as_str().unwrap();
    assert_eq!(logout(&app, None, Some(access)).await, 204);
    assert_eq!(listing(&app, &by_bearer).await, 401);
    let (status, _) = refresh(&app, &by_bearer["refresh_token"]).await;
    assert_eq!(status, 401);

    assert_eq!(logout(&app, None, None).await, 401, "no token at all");
    assert_eq!(
        logout(&app, None, Some("not-a-token")).await,
        401,
        "an invalid bearer token"
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refused_and_the_refresh_token_renews_it() {
    let app = spawn_app_with(|config| config.shared.token_ttl = Duration::from_secs(1)).await;
    let tokens = login(&app).await;
    assert_eq!(listing(&app, &tokens).await, 200);
    // Refused once past its lifetime and the verifiers' 5 s leeway for
    // clock skew, which takes about 6 s.
    let issued = std::time::Instant::now();
    while listing(&app, &tokens).await != 401 {
        assert!(
            issued.elapsed() < Duration::from_secs(15),
            "the token never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        issued.elapsed() > Duration::from_secs(4),
        "refused within its leeway"
    );
    let (status, renewed) = refresh(&app, &tokens["refresh_token"]).await;
    assert_eq!(status, 200);
    assert_eq!(listing(&app, &renewed).await, 200);
}

#[tokio::test]
async fn a_revocation_reaches_every_ingest_process() {
    let front = spawn_app_with(|_| {}).await;
    let other = spawn_app_on(&front.ready.nats_url, |config| {
        config.shared.actors = vec![ActorKind::Ingest];
    })
    .await;
    let tokens = login(&front).await;
    assert_eq!(listing(&other, &tokens).await, 200);

    let body = serde_json::json!({ "refresh_token": tokens["refresh_token"] });
    assert_eq!(logout(&front, Some(body), None).await, 204);
    // The other process learns of it through its watch of the revoked
    // bucket; give that a moment, not a fixed sleep.
    let mut status = 200;
    for _ in 0..50 {
        status = listing(&other, &tokens).await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "another process still accepts a revoked token");

    // A process that starts after the revocation knows it from the start.
    let late = spawn_app_on(&front.ready.nats_url, |config| {
        config.shared.actors = vec![ActorKind::Ingest];
    })
    .await;
    let mut status = 200;
    for _ in 0..50 {
        status = listing(&late, &tokens).await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "a new process accepts a revoked token");
}
