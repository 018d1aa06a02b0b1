//! The black-box tests: each module drives the service as its users and
//! operators do, against a real nats-server, ffmpeg, SurrealDB, SMTP server
//! and browser. They live in one test binary so that the suite links once;
//! `common` holds what they share (spawning the service, the API client,
//! fixtures).

mod common;

mod abuse;
mod accounts;
mod alerts;
mod api_keys;
mod architecture;
mod chapters;
mod client;
mod cluster;
mod control;
mod cover;
mod emails;
mod faults;
mod formats;
mod hostile_media;
mod idempotency;
mod imports;
mod journey;
mod lifecycle;
mod links;
mod loudness;
mod nats_submit;
mod nomad;
mod nomad_tasks;
mod notify_url;
mod openapi;
mod options;
mod outputs;
mod permissions;
mod podcast;
mod presets;
mod progress;
mod prometheus;
mod remote_db;
mod resumable;
mod schemathesis;
mod security;
mod sessions;
mod split;
mod streaming;
mod tags;
mod waveform;
mod web;
mod webhooks;
