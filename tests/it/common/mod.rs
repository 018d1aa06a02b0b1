//! Test harness: real nats-server, real ffmpeg and ffprobe, embedded
//! SurrealDB in a temp dir, and mediajet itself on random ports.
//!
//! - `app`: spawning mediajet (`spawn_app` and friends) and stopping it
//! - `api`: the HTTP client tests use, and the SSE reader
//! - `file_server`: the file server URL imports are fetched from
//! - `mail`: the outbox and a real SMTP server
//! - `media`: test videos, ffprobe, a real-time ffmpeg, processes of a job
//! - `net`: free ports, waiting for listeners, TLS certificates
//! - `process`: a `mediajet run` process, as an operator starts one
//! - `python`: the Python readers of what mediajet made
//! - `receiver`: a webhook receiver, its requests verified by others' libraries
//! - `prometheus`: Debian's Prometheus and promtool
//! - `surreal`: a SurrealDB server
//! - `nomad`: the Nomad jobs evaluated and their tasks prepared as Nomad does

mod api;
mod app;
mod file_server;
mod mail;
mod media;
mod net;
pub mod nomad;
mod process;
mod prometheus;
mod python;
mod receiver;
mod surreal;
mod tus;

pub use api::*;
pub use app::*;
pub use file_server::*;
pub use mail::*;
pub use media::*;
pub use net::*;
pub use process::*;
pub use prometheus::*;
pub use python::*;
pub use receiver::*;
pub use surreal::*;
pub use tus::*;

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

/// The password the tests give `user` of the production `nats.conf`.
pub fn nats_password(user: &str) -> String {
    format!("{user}-secret-password")
}

/// A single-node nats-server with JetStream on a free port, its store
/// under `dir/nats`.
pub async fn start_nats(dir: &std::path::Path) -> mediajet::nats_server::NatsServer {
    mediajet::nats_server::NatsServer::start(
        std::path::Path::new("nats-server"),
        &dir.join("nats"),
        0,
    )
    .await
    .expect("nats-server must be installed for the tests")
}

/// A nats-server with the production `nats.conf`'s users (and their
/// permissions), each with its [`nats_password`].
pub async fn start_nats_with_users(dir: &std::path::Path) -> mediajet::nats_server::NatsServer {
    let options = mediajet::nats_server::Options {
        users: Some(
            NATS_USERS
                .iter()
                .map(|user| (user.to_string(), nats_password(user)))
                .collect(),
        ),
        ..Default::default()
    };
    mediajet::nats_server::NatsServer::start_with(
        std::path::Path::new("nats-server"),
        dir,
        &options,
    )
    .await
    .expect("nats-server must be installed for the tests")
}

/// The password of every user [`Api::new_user`] creates.
pub const USER_PASSWORD: &str = "user-password-1";

/// Waits until `done` holds, checking every 50 ms; fails the test after
/// `patience`.
pub async fn wait_for(patience: std::time::Duration, done: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < patience, "not done within {patience:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
