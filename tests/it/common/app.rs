//! A mediajet process for a test: its own nats-server (or one it shares),
//! data dir and random ports, stopped when the test ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mediajet::app::{Ready, StartError};
use mediajet::config::Config;
use mediajet::nats_server::NatsServer;
use mediajet::wire::names;
use tempfile::TempDir;

use super::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, read_outbox};

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
            config.shared.nats_port = 0;
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
            config.shared.nats_url = Some(nats_url);
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
        config.shared.nats_url = Some(nats.url().to_string());
        Some(nats)
    } else {
        None
    };
    config.shared.http = "127.0.0.1:0".parse().unwrap();
    config.auth.admin_email = Some(ADMIN_EMAIL.to_string());
    config.auth.admin_password = Some(ADMIN_PASSWORD.to_string());
    config.transcoder.transcoders = Some(2);
    config.transcoder.drain_timeout = Duration::from_secs(5);
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
    // The stack a process's main thread has (the binary runs `app::run` on
    // it), not the 2 MiB of a spawned thread: debug builds poll start-up's
    // large futures in deep frames.
    let thread = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            mediajet::app::run(
                config,
                async move {
                    let _ = stopped.await;
                },
                move |ready| {
                    let _ = ready_tx.send(ready.clone());
                },
            )
        })
        .expect("a thread for mediajet");
    match ready_rx.await {
        Ok(ready) => (Running { stop, thread }, ready),
        Err(_) => {
            let outcome = thread.join().expect("mediajet thread panicked");
            panic!("mediajet did not start: {outcome:?}");
        }
    }
}

impl TestApp {
    /// Downloads a completed job's audio into the test's directory, under
    /// the file name the job gives it.
    pub async fn save_output(&self, token: &str, job: &serde_json::Value) -> PathBuf {
        assert_eq!(job["state"], "completed", "{job}");
        let id = job["id"].as_str().expect("a job id");
        let audio = self.get(token, &format!("/v1/jobs/{id}/output")).await;
        assert_eq!(audio.status(), 200, "{job}");
        let name = job["output"]["filename"].as_str().expect("a file name");
        let path = self.dir.path().join(format!("{id}-{name}"));
        std::fs::write(&path, audio.bytes().await.expect("the audio")).expect("save the audio");
        path
    }

    /// Asserts that none of `objects` is left in the outputs bucket.
    pub async fn assert_no_outputs(&self, objects: impl IntoIterator<Item = String>) {
        let client = async_nats::connect(self.ready.nats_url.as_str())
            .await
            .expect("connect to NATS");
        let bucket = async_nats::jetstream::new(client)
            .get_object_store(mediajet::wire::names::OUTPUTS_BUCKET)
            .await
            .expect("the outputs bucket");
        for object in objects {
            match bucket.info(&object).await {
                Ok(info) => assert!(info.deleted, "{object} survived: {info:?}"),
                Err(err) => assert_eq!(
                    err.kind(),
                    async_nats::jetstream::object_store::InfoErrorKind::NotFound,
                    "{object}: {err}"
                ),
            }
        }
    }

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
        self.config.shared.data_dir.clone()
    }

    /// Waits until the transcoders have settled every work item: none is
    /// waiting to be delivered, none is delivered and unacknowledged.
    pub async fn wait_until_work_settled(&self) {
        self.wait_until_settled(names::WORK_STREAM, names::TRANSCODERS_CONSUMER)
            .await;
    }

    /// Waits until the mailer has settled every event: from then on no
    /// redelivery can send an email.
    pub async fn wait_until_mail_settled(&self) {
        self.wait_until_settled(names::EVENTS_STREAM, names::MAILER_CONSUMER)
            .await;
    }

    /// Waits until `consumer` of `stream` has nothing left to deliver and
    /// nothing delivered that is not acknowledged.
    pub async fn wait_until_settled(&self, stream: &str, consumer: &str) {
        self.wait_for_consumer(stream, consumer, |info| {
            info.num_pending == 0 && info.num_ack_pending == 0
        })
        .await;
    }

    /// Waits (30 s at most) until the state of `consumer` of `stream`
    /// passes `check`.
    pub async fn wait_for_consumer(
        &self,
        stream: &str,
        consumer: &str,
        check: impl Fn(&async_nats::jetstream::consumer::Info) -> bool,
    ) {
        let client = async_nats::connect(self.ready.nats_url.as_str())
            .await
            .expect("connect to NATS");
        let js = async_nats::jetstream::new(client);
        let started = Instant::now();
        loop {
            let mut found = js
                .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                    consumer, stream,
                )
                .await
                .expect("the consumer");
            let info = found.info().await.expect("consumer info");
            if check(info) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{consumer} never got there: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.thread.join();
        }
    }
}
