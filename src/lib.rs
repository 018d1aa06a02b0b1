//! mediajet: a video-to-audio conversion service built as four actors (Auth,
//! Ingest, Transcoder, Mailer) that talk only over NATS JetStream.
//!
//! Start with [`app::run`], which wires everything for `mediajet up`; the
//! actors live in [`actors`], the NATS contract in [`wire`].
//!
//! What the actors share, and nothing else does:
//! - `config`: flags and environment, one group per actor; `shutdown`: the
//!   named waits of a stop; `server`: the HTTP listener
//! - `wire`: subjects, bucket names and the messages on them; `audio`: the
//!   formats and their options; `domain`: ids and addresses parsed once
//! - `token`: access tokens and their verification; `storage`: JetStream
//!   streams, buckets and objects, and SurrealDB; `targets`: the addresses
//!   the service may connect to on a user's behalf
//! - `metrics`: every metric's name; `ops`: `/metrics`, `/healthz`,
//!   `/readyz`; `telemetry`, `trace_context`: logs, spans and traces
//! - `error`, `backoff`, `hex`, `markup`: small helpers every boundary uses
//! - `nats_server`: the local nats-server of `mediajet up`; `client`: the
//!   `mediajet login` and `submit` commands

pub mod actors;
pub mod app;
pub mod audio;
pub mod backoff;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod hex;
pub mod markup;
pub mod metrics;
pub mod nats_server;
pub mod ops;
pub mod server;
pub mod shutdown;
pub mod storage;
pub mod targets;
pub mod telemetry;
pub mod token;
pub mod trace_context;
pub mod wire;
