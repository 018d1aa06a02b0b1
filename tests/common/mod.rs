//! Test harness: real nats-server, real ffmpeg and ffprobe, embedded
//! SurrealDB in a temp dir, and mediajet itself on random ports.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mediajet::app::{Ready, StartError};
use mediajet::config::Config;
use mediajet::nats_server::NatsServer;
use serde_json::Value;
use tempfile::TempDir;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
/// The users of the production `nats.conf`, for tests that run it.
pub const NATS_USERS: [&str; 6] = [
    "auth",
    "ingest",
    "transcoder",
    "mailer",
    "submitter",
    "operator",
];

/// The password of every user [`Api::new_user`] creates.
pub const USER_PASSWORD: &str = "user-password-1";

/// A running mediajet with its own nats-server and data dir.
pub struct TestApp {
    /// The HTTP API of this process (its methods are reachable on `TestApp`).
    pub api: Api,
    pub ready: Ready,
    pub config: Config,
    pub dir: TempDir,
    nats: Option<NatsServer>,
    running: Option<Running>,
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), StartError>>,
}

/// Starts mediajet against a fresh nats-server on a random port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to change the configuration first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn(configure, true).await
}

/// Starts mediajet the way `mediajet up` does: it runs its own nats-server
/// under the data dir.
pub async fn spawn_app_with_own_nats() -> TestApp {
    spawn_app_with_own_nats_and(|_| {}).await
}

/// Like [`spawn_app_with_own_nats`], with a chance to change the configuration.
pub async fn spawn_app_with_own_nats_and(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn(
        |config| {
            config.nats_port = 0;
            configure(config);
        },
        false,
    )
    .await
}

/// Starts mediajet against a NATS server that is already running (another
/// test process's), as one more process of a split deployment.
pub async fn spawn_app_on(nats_url: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
    let nats_url = nats_url.to_string();
    spawn(
        |config| {
            config.nats_url = Some(nats_url);
            configure(config);
        },
        false,
    )
    .await
}

async fn spawn(configure: impl FnOnce(&mut Config), test_nats: bool) -> TestApp {
    // Quiet by default; RUST_LOG=info shows what the services do.
    mediajet::telemetry::init_with("warn,surrealkv=error");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(dir.path().join("data"));
    let nats = if test_nats {
        let nats = NatsServer::start(Path::new("nats-server"), &dir.path().join("nats"), 0)
            .await
            .expect("nats-server must be installed for the tests");
        config.nats_url = Some(nats.url().to_string());
        Some(nats)
    } else {
        None
    };
    config.http = "127.0.0.1:0".parse().unwrap();
    config.admin_email = Some(ADMIN_EMAIL.to_string());
    config.admin_password = Some(ADMIN_PASSWORD.to_string());
    config.transcoders = Some(2);
    config.drain_timeout = Duration::from_secs(5);
    configure(&mut config);
    let (running, ready) = start(config.clone()).await;
    TestApp {
        api: Api::new(&format!("http://{}", ready.http_addr)),
        ready,
        config,
        dir,
        nats,
        running: Some(running),
    }
}

async fn start(config: Config) -> (Running, Ready) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Ready>();
    let thread = std::thread::spawn(move || {
        mediajet::app::run(
            config,
            async move {
                let _ = stopped.await;
            },
            move |ready| {
                let _ = ready_tx.send(ready.clone());
            },
        )
    });
    match ready_rx.await {
        Ok(ready) => (Running { stop, thread }, ready),
        Err(_) => {
            let outcome = thread.join().expect("mediajet thread panicked");
            panic!("mediajet did not start: {outcome:?}");
        }
    }
}

impl TestApp {
    /// Stops mediajet (as SIGTERM would) and waits until it has drained.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let outcome = tokio::task::spawn_blocking(move || running.thread.join())
                .await
                .expect("join")
                .expect("mediajet thread panicked");
            outcome.expect("mediajet stopped with an error");
        }
    }

    /// Stops and starts mediajet again on the same data dir.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (running, ready) = start(self.config.clone()).await;
        self.api = Api::new(&format!("http://{}", ready.http_addr));
        self.ready = ready;
        self.running = Some(running);
    }

    /// Stops the test's nats-server under the running service.
    /// SIGKILLs the test's nats-server, as a crash would end it.
    pub async fn kill_test_nats(&mut self) {
        if let Some(nats) = self.nats.take() {
            nats.kill().await;
        }
    }

    /// Starts the test's nats-server again, on the same port and store.
    pub async fn restart_test_nats(&mut self) {
        let url = self.ready.nats_url.clone();
        let port: u16 = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the test nats-server's port");
        let started = Instant::now();
        loop {
            match NatsServer::start(
                Path::new("nats-server"),
                &self.dir.path().join("nats"),
                port,
            )
            .await
            {
                Ok(nats) => {
                    self.nats = Some(nats);
                    return;
                }
                // The killed server's port may take a moment to free.
                Err(err) if started.elapsed() < Duration::from_secs(20) => {
                    eprintln!("nats-server not back yet: {err}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => panic!("nats-server does not start again: {err}"),
            }
        }
    }

    pub async fn stop_test_nats(&mut self) {
        if let Some(nats) = self.nats.take() {
            nats.stop().await;
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The emails in the outbox, waiting up to ten seconds for `expected`.
    pub async fn outbox(&self, expected: usize) -> Vec<String> {
        read_outbox(&self.data_dir(), expected).await
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

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

    /// Encodes running in this process, read from its metrics.
    pub async fn encodes_in_flight(&self) -> f64 {
        let Ok(response) = self.http.get(self.url("/metrics")).send().await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("mediajet_transcodes_in_flight "))
            .and_then(|v| v.trim().parse().ok())
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
        let bytes = std::fs::read(path).expect("read upload");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut form = reqwest::multipart::Form::new();
        for (field, value) in fields {
            form = form.text(field.to_string(), value.to_string());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
        self.post_form(token, form).await.expect("upload request")
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

/// The emails in `<data_dir>/outbox`, waiting up to ten seconds for `expected`.
pub async fn read_outbox(data_dir: &Path, expected: usize) -> Vec<String> {
    let dir = data_dir.join("outbox");
    let started = Instant::now();
    loop {
        let mails: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        if mails.len() >= expected || started.elapsed() > Duration::from_secs(10) {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many of `mails` mention `id` (quoted-printable soft line breaks undone).
pub fn mails_about(mails: &[String], id: &str) -> usize {
    mails
        .iter()
        .filter(|m| m.replace("=\r\n", "").replace("=\n", "").contains(id))
        .count()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.thread.join();
        }
    }
}

/// Whether a running process mentions `needle` in its command line or in
/// the file it has open as its input (a job's ffmpeg gets the upload in the
/// job's work dir as fd 3).
pub fn process_mentions(needle: &str) -> bool {
    !processes_mentioning(needle).is_empty()
}

/// The ids of the processes [`process_mentions`] finds.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let input = std::fs::read_link(entry.path().join("fd/3")).unwrap_or_default();
            let mentions = String::from_utf8_lossy(&cmdline).contains(needle)
                || input.to_string_lossy().contains(needle);
            mentions.then_some(pid)
        })
        .collect()
}

/// An ffmpeg that reads its input at real-time speed, so that an encode is
/// still running when a test interferes. Everything else is real ffmpeg.
pub fn realtime_ffmpeg(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    // The transcoder runs ffmpeg as an unprivileged user when it can,
    // which must be able to reach the wrapper.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let path = dir.join("ffmpeg-realtime");
    std::fs::write(&path, "#!/bin/sh\nexec ffmpeg -readrate 1 \"$@\"\n").expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Makes a short video with a test picture and a tone, using ffmpeg's lavfi.
pub fn make_video(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=duration={seconds}:size=160x120:rate=10"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-shortest", "-c:v", "mpeg4", "-c:a", "aac", "-b:a", "64k"])
        .arg(&path)
        .status()
        .expect("ffmpeg must be installed for the tests");
    assert!(status.success(), "ffmpeg could not make a test video");
    path
}

/// What ffprobe says about a file's first audio stream and container.
pub struct Probed {
    pub format: String,
    pub codec: String,
    pub sample_rate: u32,
    pub bit_rate: u64,
    pub duration: f64,
}

pub fn probe(path: &Path) -> Probed {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
        .arg("format=format_name,duration,bit_rate:stream=codec_name,sample_rate")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed for the tests");
    assert!(
        output.status.success(),
        "ffprobe cannot read {}",
        path.display()
    );
    let v: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &v["streams"][0];
    Probed {
        format: v["format"]["format_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        codec: stream["codec_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        sample_rate: stream["sample_rate"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        bit_rate: v["format"]["bit_rate"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
    }
}

/// A free TCP port on loopback (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Waits up to ten seconds until something listens on `port` on loopback.
pub fn wait_for_port(port: u16) {
    wait_for_port_on("127.0.0.1", port);
}

/// Waits up to ten seconds until something listens on `host:port`.
pub fn wait_for_port_on(host: &str, port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect((host, port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A real SMTP server (aiosmtpd) delivering into `<dir>/mail` (a maildir);
/// stopped when dropped, pass or fail.
pub struct SmtpServer(std::process::Child);

impl SmtpServer {
    pub fn start(port: u16, dir: &Path) -> SmtpServer {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.join("mail"))
            .args(["-l", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd must be installed for the tests");
        let server = SmtpServer(child);
        wait_for_port(port);
        server
    }

    /// The mails delivered into `<dir>/mail` so far.
    pub fn mails(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir.join("mail/new"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .map(|mail| mail.replace("=\r\n", "").replace("=\n", ""))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl,
/// in `<dir>/tls`: for NATS nodes (clients and routes) and SurrealDB.
pub fn make_certificates(dir: &Path) -> mediajet::nats_server::TlsFiles {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&tls)
            .output()
            .expect("openssl must be installed for the tests");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca-key.pem", "-out", "ca.pem"],
        &["-days", "2", "-subj", "/CN=mediajet test CA"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &["-keyout", "server-key.pem", "-out", "server.csr"],
        &["-subj", "/CN=localhost"],
    ]
    .concat());
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    mediajet::nats_server::TlsFiles {
        cert: tls.join("server.pem"),
        key: tls.join("server-key.pem"),
        ca: tls.join("ca.pem"),
    }
}
