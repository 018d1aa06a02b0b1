//! Test harness: real nats-server, real ffmpeg and ffprobe, embedded
//! SurrealDB in a temp dir, and mediajet itself on random ports.
//!
//! - `app`: spawning mediajet (`spawn_app` and friends) and stopping it
//! - `api`: the HTTP client tests use, and the SSE reader
//! - `mail`: the outbox and a real SMTP server
//! - `media`: test videos, ffprobe, a real-time ffmpeg, processes of a job
//! - `net`: free ports, waiting for listeners, TLS certificates

mod api;
mod app;
mod mail;
mod media;
mod net;

pub use api::*;
pub use app::*;
pub use mail::*;
pub use media::*;
pub use net::*;

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
