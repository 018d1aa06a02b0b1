//! Connections and the durable resources behind them: JetStream streams
//! and consumers ([`jetstream`]), KV buckets ([`buckets`]), object store
//! buckets ([`objects`]) and SurrealDB ([`db`]). Every resource is created
//! idempotently, so any number of processes can start in any order without
//! resetting anything.

pub mod buckets;
pub mod db;
pub mod jetstream;
pub mod objects;
