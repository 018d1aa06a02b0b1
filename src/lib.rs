//! mediajet: a video-to-audio conversion service built as four actors (Auth,
//! Ingest, Transcoder, Mailer) that talk only over NATS JetStream.
//!
//! Start with [`app::run`], which wires everything for `mediajet up`; the
//! actors live in [`actors`], the NATS contract in [`wire`].

pub mod actors;
pub mod app;
pub mod audio;
pub mod backoff;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod hex;
pub mod metrics;
pub mod nats_server;
pub mod ops;
pub mod server;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
pub mod token;
pub mod trace_context;
pub mod wire;
