//! The remote SurrealDB mode (`--surreal-url ws://…`) against a real
//! SurrealDB server: `tools/surreal-server`, built from the server crate of the
//! same version as the SDK (`scripts/test.sh` builds it).

use crate::common::{self, ROOT_PASSWORD, SurrealServer};

use std::time::{Duration, Instant};

use serde_json::Value;

#[tokio::test]
async fn users_and_job_history_live_in_a_remote_surrealdb_server_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::make_certificates(dir.path());
    let server = SurrealServer::start_tls(&dir.path().join("surreal"), &tls);
    let url = server.url.clone();
    let ca = tls.ca.clone();
    let mut app = common::spawn_app_with(|config| {
        config.shared.surreal_url = Some(url);
        config.shared.surreal_user = Some("root".into());
        config.shared.surreal_password = Some(ROOT_PASSWORD.into());
        config.shared.surreal_tls_ca = Some(ca);
    })
    .await;

    let ready = app.readiness().await;
    assert_eq!(ready["checks"]["surrealdb"], true, "{ready}");

    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 2);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");

    // Nothing was stored in an embedded database.
    assert!(!app.data_dir().join("surreal").exists());

    // The rows are in the server, as another client sees them.
    // A client that does not trust the CA is refused.
    let untrusting = mediajet::storage::db::connect(
        Some(&server.url),
        Some(("root", ROOT_PASSWORD)),
        None,
        dir.path(),
    )
    .await;
    assert!(
        untrusting.is_err(),
        "a client trusted the test CA without being told to"
    );
    let db = mediajet::storage::db::connect(
        Some(&server.url),
        Some(("root", ROOT_PASSWORD)),
        Some(&tls.ca),
        dir.path(),
    )
    .await
    .expect("connect to the server");
    let mut users = db
        .query("SELECT email, role FROM user ORDER BY email")
        .await
        .unwrap();
    let users: Vec<Value> = users.take(0).unwrap();
    let emails: Vec<&str> = users.iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, vec![common::ADMIN_EMAIL, "ann@example.com"]);
    let history = wait_for_history(&db, &id).await;
    assert_eq!(history["state"], "completed", "{history}");

    // A restarted service finds users and history in the server again.
    app.restart().await;
    let token = app.login("ann@example.com", "user-password-1").await;
    let list = app.list_jobs(&token).await;
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(list[0]["state"], "completed", "{list}");
}

/// The job's history row once its terminal state has been projected.
async fn wait_for_history(db: &mediajet::storage::db::Db, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let mut response = db
            .query("SELECT * OMIT id FROM job WHERE jid = $jid")
            .bind(("jid", id.to_string()))
            .await
            .unwrap();
        let rows: Vec<Value> = response.take(0).unwrap();
        if let Some(row) = rows.into_iter().next()
            && (row["state"] == "completed" || row["state"] == "failed")
        {
            return row;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "job {id} has no terminal history row"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn while_the_remote_database_is_down_the_api_answers_503_and_then_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("surreal");
    let port = common::free_port();
    let server = SurrealServer::start_on(&store, port);
    let url = server.url.clone();
    let app = common::spawn_app_with(|config| {
        config.shared.surreal_url = Some(url);
        config.shared.surreal_user = Some("root".into());
        config.shared.surreal_password = Some(ROOT_PASSWORD.into());
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let before = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &before).await;

    drop(server);
    // What needs the database answers 503 at once; nothing hangs.
    for path in ["/v1/jobs", "/readyz"] {
        let asked = Instant::now();
        let response = app.get(&token, path).await;
        assert_eq!(response.status(), 503, "{path}");
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "{path} took {:?}",
            asked.elapsed()
        );
    }
    let refused = app.upload(&token, &video, None).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    // The live state of a job needs only NATS.
    assert_eq!(app.job(&token, &before).await.status(), 200);

    // Back on the same port with the same store: the service catches up
    // by itself.
    let _server = SurrealServer::start_on(&store, port);
    let started = Instant::now();
    let id = loop {
        let response = app.upload(&token, &video, None).await;
        if response.status() == 202 {
            let job: Value = response.json().await.unwrap();
            break job["id"].as_str().unwrap().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still refused after recovery"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(app.listed_ids(&token).await, [id, before]);
}
