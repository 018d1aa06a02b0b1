//! Connections and the durable resources behind them: JetStream streams,
//! consumers, buckets and object stores ([`jetstream`]) and SurrealDB
//! ([`db`]). Every resource is created idempotently, so any number of
//! processes can start in any order without resetting anything.

pub mod db;
pub mod jetstream;
