//! A client of the HTTP API with the calls tests make, and a reader of
//! Server-Sent Events.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD};

/// A client of one mediajet process's HTTP API.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The body of `GET /readyz`, whatever its status.
    pub async fn readiness(&self) -> Value {
        self.http
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("readiness request")
            .json()
            .await
            .expect("readiness body")
    }

    /// The value of one series of this process's metrics (`name{labels}`,
    /// as the page writes it), if the page has it.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let response = self.http.get(self.url("/metrics")).send().await.ok()?;
        let text = response.text().await.ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Encodes running in this process, read from its metrics.
    pub async fn encodes_in_flight(&self) -> f64 {
        self.metric("mediajet_transcodes_in_flight")
            .await
            .unwrap_or(0.0)
    }

    /// Uploads `path` as `count` jobs and returns their ids.
    pub async fn submit_many(&self, token: &str, path: &Path, count: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..count {
            ids.push(self.submit(token, path).await);
        }
        ids
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST request")
    }

    /// `POST /v1/login` with JSON credentials (the answer, whatever it is).
    pub async fn try_login(&self, email: &str, password: &str) -> reqwest::Response {
        let credentials = serde_json::json!({"email": email, "password": password});
        self.post_json("/v1/login", &credentials).await
    }

    /// Logs in over the JSON API and returns the whole token answer.
    pub async fn tokens(&self, email: &str, password: &str) -> Value {
        let response = self.try_login(email, password).await;
        assert_eq!(response.status(), 200, "login of {email} failed");
        response.json().await.expect("login body")
    }

    /// Logs in over the JSON API and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        self.tokens(email, password).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Spends a refresh token at `POST /v1/tokens/refresh`.
    pub async fn refresh(&self, refresh_token: &Value) -> reqwest::Response {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.post_json("/v1/tokens/refresh", &body).await
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user with the admin's token and returns the user's token.
    pub async fn new_user(&self, email: &str) -> String {
        let admin = self.admin_token().await;
        let response = self
            .http
            .post(self.url("/v1/users"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"email": email, "password": USER_PASSWORD, "role": "user"}))
            .send()
            .await
            .expect("create user");
        assert_eq!(response.status(), 201, "creating {email} failed");
        self.login(email, "user-password-1").await
    }

    /// Uploads a file as a new job.
    pub async fn upload(
        &self,
        token: &str,
        path: &Path,
        format: Option<&str>,
    ) -> reqwest::Response {
        let fields: Vec<(&str, &str)> = format.map(|f| ("format", f)).into_iter().collect();
        self.upload_with(token, path, &fields).await
    }

    /// Uploads a file as a new job, with these form fields before the file.
    pub async fn upload_with(
        &self,
        token: &str,
        path: &Path,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        self.post_form(token, upload_form(path, fields))
            .await
            .expect("upload request")
    }

    /// Posts `form` to `POST /v1/jobs` with an `Idempotency-Key` header.
    /// Like `post_form`, the client may see only the connection close.
    pub async fn post_keyed(
        &self,
        token: &str,
        form: reqwest::multipart::Form,
        key: &str,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(self.url("/v1/jobs"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .multipart(form)
            .send()
            .await
    }

    /// Posts a multipart form to `POST /v1/jobs`. The server may refuse it
    /// before reading it all and close the connection, so the client may
    /// see the refusal or only the connection closing (`Err`).
    pub async fn post_form(
        &self,
        token: &str,
        form: reqwest::multipart::Form,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(self.url("/v1/jobs"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
    }

    /// Uploads and returns the new job's id, asserting the 202.
    /// Uploads with these form fields and returns the job id.
    pub async fn submit_with(&self, token: &str, path: &Path, fields: &[(&str, &str)]) -> String {
        let response = self.upload_with(token, path, fields).await;
        assert_eq!(response.status(), 202);
        let job: Value = response.json().await.unwrap();
        job["id"].as_str().unwrap().to_string()
    }

    pub async fn submit(&self, token: &str, path: &Path) -> String {
        self.submit_with(token, path, &[]).await
    }

    pub async fn job(&self, token: &str, id: &str) -> reqwest::Response {
        self.get(token, &format!("/v1/jobs/{id}")).await
    }

    /// `GET path` with the bearer token.
    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, token, path).await
    }

    /// `DELETE path` with the bearer token.
    /// `POST path` with `token`, and a JSON body if given.
    pub async fn post(&self, token: &str, path: &str, body: Option<&Value>) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("POST request")
    }

    pub async fn delete(&self, token: &str, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, token, path).await
    }

    async fn send(&self, method: reqwest::Method, token: &str, path: &str) -> reqwest::Response {
        self.http
            .request(method.clone(), self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The live events of a job (`GET /v1/jobs/{id}/events`).
    pub async fn events(&self, token: &str, id: &str) -> EventReader {
        let response = self.get(token, &format!("/v1/jobs/{id}/events")).await;
        assert_eq!(response.status(), 200, "events of {id}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        EventReader::new(response)
    }

    /// The caller's jobs as `GET /v1/jobs` lists them.
    pub async fn list_jobs(&self, token: &str) -> Value {
        let response = self.get(token, "/v1/jobs").await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("list body")
    }

    /// The ids of the caller's jobs as `GET /v1/jobs` lists them, newest
    /// first.
    pub async fn listed_ids(&self, token: &str) -> Vec<String> {
        self.list_jobs(token)
            .await
            .as_array()
            .expect("a list of jobs")
            .iter()
            .map(|job| job["id"].as_str().expect("a job id").to_string())
            .collect()
    }

    /// Polls the job until a transcoder reports progress on it.
    pub async fn wait_until_running(&self, token: &str, id: &str) {
        let started = Instant::now();
        loop {
            let job: Value = self.job(token, id).await.json().await.expect("job body");
            if job["state"] == "running" && job["progress"].as_f64().unwrap_or(0.0) > 0.0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never running: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the job until it is completed or failed (at most two minutes).
    pub async fn wait_until_finished(&self, token: &str, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let job: Value = self.job(token, id).await.json().await.expect("job body");
            let state = job["state"].as_str().unwrap_or_default().to_string();
            if ["completed", "failed", "canceled"].contains(&state.as_str()) {
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "job {id} still {state} after two minutes: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Reads a `text/event-stream` response one event at a time.
pub struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

/// One Server-Sent Event: its name and its JSON data.
#[derive(Debug)]
pub struct SseEvent {
    pub name: String,
    pub data: Value,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> EventReader {
        EventReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` once the server ended the stream. Comments
    /// (keep-alives) are skipped. Panics after `timeout` without one.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if !data.is_empty() {
                    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    return Some(SseEvent { name, data });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) => return None,
                Ok(Err(err)) => panic!("event stream broke: {err}"),
                Err(_) => panic!("no event within {timeout:?}; unread: {:?}", self.buffer),
            }
        }
    }
}

/// A job's form: `fields`, then the file at `path`.
pub fn upload_form(path: &Path, fields: &[(&str, &str)]) -> reqwest::multipart::Form {
    let bytes = std::fs::read(path).expect("read upload");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut form = reqwest::multipart::Form::new();
    for (field, value) in fields {
        form = form.text(field.to_string(), value.to_string());
    }
    form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name),
    )
}
