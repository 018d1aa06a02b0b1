//! Accounts: one's own (`/v1/me`, a password change that ends the other
//! sessions) and, for admins, everyone's: a page at a time, changed,
//! disabled (tokens and links stop on every process at once) and removed
//! with everything they left.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, ADMIN_EMAIL, TestApp, USER_PASSWORD, spawn_app, spawn_app_on};
use mediajet::config::ActorKind;

/// `method path` with `token` and a JSON body, if any.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// The id of the user `email`, from the admin's list.
async fn user_id(app: &TestApp, admin: &str, email: &str) -> String {
    let users: Value = app
        .get(admin, "/v1/users?limit=500")
        .await
        .json()
        .await
        .unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not listed: {users}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_password_change_keeps_the_session_it_came_from_and_ends_every_other() {
    let app = spawn_app().await;
    app.new_user("ann@example.com").await;
    let here = app.tokens("ann@example.com", USER_PASSWORD).await;
    let there = app.tokens("ann@example.com", USER_PASSWORD).await;
    let token = here["access_token"].as_str().unwrap();
    let other = there["access_token"].as_str().unwrap();

    let me: Value = app.get(token, "/v1/me").await.json().await.unwrap();
    assert_eq!(
        (&me["email"], &me["role"], &me["disabled"]),
        (&json!("ann@example.com"), &json!("user"), &json!(false)),
        "{me}"
    );

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let post = reqwest::Method::POST;
    let wrong = call(
        &app,
        post.clone(),
        "/v1/me/password",
        token,
        Some(change("guess", "new-password-2")),
    )
    .await;
    assert_eq!(code(wrong).await, (403, "wrong_password".into()));
    let short = call(
        &app,
        post.clone(),
        "/v1/me/password",
        token,
        Some(change(USER_PASSWORD, "short")),
    )
    .await;
    assert_eq!(code(short).await.0, 400);
    let changed = call(
        &app,
        post,
        "/v1/me/password",
        token,
        Some(change(USER_PASSWORD, "new-password-2")),
    )
    .await;
    assert_eq!(changed.status(), 204);

    // This session goes on; the other one ended at once, tokens and all.
    assert_eq!(app.get(token, "/v1/me").await.status(), 200);
    assert_eq!(app.get(other, "/v1/me").await.status(), 401);
    assert_eq!(app.refresh(&there["refresh_token"]).await.status(), 401);
    assert_eq!(app.refresh(&here["refresh_token"]).await.status(), 200);
    let old = app.try_login("ann@example.com", USER_PASSWORD).await;
    assert_eq!(old.status(), 401);
    app.tokens("ann@example.com", "new-password-2").await;
}

#[tokio::test]
async fn an_admin_lists_users_a_page_at_a_time_and_changes_their_role_and_password() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let ann = app.new_user("ann@example.com").await;
    for email in ["bob@example.com", "cy@example.com"] {
        app.new_user(email).await;
    }
    // Others may not look.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/users"),
        (
            reqwest::Method::PATCH,
            "/v1/users/0190f5a8-0000-7000-8000-000000000000",
        ),
        (
            reqwest::Method::DELETE,
            "/v1/users/0190f5a8-0000-7000-8000-000000000000",
        ),
    ] {
        let response = call(&app, method, path, &ann, Some(json!({"role": "admin"}))).await;
        assert_eq!(code(response).await.0, 403, "{path}");
    }

    let first = app.get(&admin, "/v1/users?limit=2").await;
    let next = first.headers()["link"].to_str().unwrap().to_string();
    let first: Value = first.json().await.unwrap();
    let next = next
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let second: Value = app.get(&admin, &next).await.json().await.unwrap();
    let emails: Vec<String> = [first, second]
        .iter()
        .flat_map(|page| page.as_array().unwrap().iter())
        .map(|user| user["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        emails,
        [
            ADMIN_EMAIL,
            "ann@example.com",
            "bob@example.com",
            "cy@example.com"
        ]
    );

    // A role, then a password reset: the user's sessions end with it.
    let id = user_id(&app, &admin, "ann@example.com").await;
    let path = format!("/v1/users/{id}");
    let patch = reqwest::Method::PATCH;
    let promoted = call(
        &app,
        patch.clone(),
        &path,
        &admin,
        Some(json!({"role": "admin"})),
    )
    .await;
    let promoted: Value = promoted.json().await.unwrap();
    assert_eq!(promoted["role"], "admin", "{promoted}");
    let reset = call(
        &app,
        patch.clone(),
        &path,
        &admin,
        Some(json!({"password": "reset-password-3"})),
    )
    .await;
    assert_eq!(reset.status(), 200);
    assert_eq!(app.get(&ann, "/v1/me").await.status(), 401);
    let ann = app.login("ann@example.com", "reset-password-3").await;
    let me: Value = app.get(&ann, "/v1/me").await.json().await.unwrap();
    assert_eq!(me["role"], "admin", "{me}");

    // Mistakes are refused with a reason.
    let unknown = call(
        &app,
        patch.clone(),
        &path,
        &admin,
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(code(unknown).await, (400, "bad_json".into()));
    let nobody = call(
        &app,
        patch.clone(),
        "/v1/users/0190f5a8-0000-7000-8000-000000000000",
        &admin,
        Some(json!({"role": "user"})),
    )
    .await;
    assert_eq!(code(nobody).await, (404, "no_such_user".into()));
    let garbage = call(
        &app,
        patch.clone(),
        "/v1/users/..%2F..",
        &admin,
        Some(json!({"role": "user"})),
    )
    .await;
    assert_eq!(code(garbage).await.0, 404);
    let admin_id = user_id(&app, &admin, ADMIN_EMAIL).await;
    let own = format!("/v1/users/{admin_id}");
    let demote = call(&app, patch, &own, &admin, Some(json!({"disabled": true}))).await;
    assert_eq!(code(demote).await, (400, "bad_request".into()));
}

#[tokio::test]
async fn a_disabled_user_s_tokens_and_links_stop_on_every_process_within_a_second() {
    let front = spawn_app().await;
    let other = spawn_app_on(&front.ready.nats_url, |config| {
        config.shared.actors = vec![ActorKind::Ingest];
    })
    .await;
    let admin = front.admin_token().await;
    let ann = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "talk.mp4", 1);
    let id = front.submit(&ann, &video).await;
    let job = front.wait_until_finished(&ann, &id).await;
    let share = job["share_url"].as_str().unwrap().to_string();
    assert_eq!(other.get(&ann, "/v1/jobs").await.status(), 200);

    let ann_id = user_id(&front, &admin, "ann@example.com").await;
    let path = format!("/v1/users/{ann_id}");
    let disable = json!({"disabled": true});
    let disabled = call(&front, reqwest::Method::PATCH, &path, &admin, Some(disable)).await;
    let started = Instant::now();
    assert_eq!(disabled.status(), 200);
    // The other process refuses the token as soon as its mirror hears.
    loop {
        if other.get(&ann, "/v1/jobs").await.status() == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still accepted after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("refused on the other process after {:?}", started.elapsed());
    assert_eq!(front.get(&ann, "/v1/me").await.status(), 401);
    let link = front.http.get(&share).send().await.unwrap();
    assert_eq!(code(link).await, (403, "invalid_link".into()));
    let login = front.try_login("ann@example.com", USER_PASSWORD).await;
    assert_eq!(code(login).await, (403, "account_disabled".into()));

    // Enabled again, the user logs in and the link works again.
    let enable = json!({"disabled": false});
    let enabled = call(&front, reqwest::Method::PATCH, &path, &admin, Some(enable)).await;
    assert_eq!(enabled.status(), 200);
    let ann = front.login("ann@example.com", USER_PASSWORD).await;
    assert_eq!(front.get(&ann, "/v1/me").await.status(), 200);
    assert_eq!(front.http.get(&share).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_removed_user_leaves_nothing_that_can_be_reached() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let ann = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "talk.mp4", 1);
    let id = app.submit(&ann, &video).await;
    let job = app.wait_until_finished(&ann, &id).await;
    let share = job["share_url"].as_str().unwrap().to_string();
    let preset = call(
        &app,
        reqwest::Method::PUT,
        "/v1/presets/show",
        &ann,
        Some(json!({"format": "opus"})),
    )
    .await;
    assert_eq!(preset.status(), 201);

    let ann_id = user_id(&app, &admin, "ann@example.com").await;
    let path = format!("/v1/users/{ann_id}");
    let removed = call(&app, reqwest::Method::DELETE, &path, &admin, None).await;
    assert_eq!(removed.status(), 204);
    assert_eq!(app.get(&ann, "/v1/me").await.status(), 401);
    assert_eq!(app.http.get(&share).send().await.unwrap().status(), 404);
    app.assert_no_outputs([format!("{id}.mp3")]).await;
    let login = app.try_login("ann@example.com", USER_PASSWORD).await;
    assert_eq!(code(login).await, (401, "invalid_credentials".into()));
    let users: Value = app.get(&admin, "/v1/users").await.json().await.unwrap();
    assert!(!users.to_string().contains("ann@example.com"), "{users}");

    // Repeating the removal finishes what is left and says it is done.
    let again = call(&app, reqwest::Method::DELETE, &path, &admin, None).await;
    assert_eq!(again.status(), 204);
    // An admin cannot remove themselves.
    let own = user_id(&app, &admin, ADMIN_EMAIL).await;
    let own = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/users/{own}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(code(own).await, (400, "bad_request".into()));

    // A new account under the same email starts empty.
    let ann = app.new_user("ann@example.com").await;
    assert_eq!(app.list_jobs(&ann).await, json!([]));
    let preset = app.get(&ann, "/v1/presets/show").await;
    assert_eq!(preset.status(), 404);
}
