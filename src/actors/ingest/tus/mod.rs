//! Resumable uploads, by the tus 1.0.0 protocol
//! (<https://tus.io/protocols/resumable-upload>): an upload is created with
//! its length and options, written in parts from wherever the last part
//! stopped, and becomes a job once its last byte is in. Its record is kept
//! in JetStream, so another Ingest process can take it over.
//!
//! - `record`: the durable record of an upload, and its bucket
//! - `metadata`: the options of `Upload-Metadata`
//! - `write`: storing one part, checksummed or not
//! - `finish`: the job an upload becomes, and uploads given up or expired

mod finish;
pub(super) mod metadata;
pub(super) mod record;
pub(super) mod write;

use std::time::Duration;

use record::Records;

/// The protocol version spoken, the only one.
pub(super) const VERSION: &str = "1.0.0";
/// The protocol extensions supported.
pub(super) const EXTENSIONS: &str = "creation,creation-with-upload,expiration,termination,checksum";
/// The content type of a part.
pub(super) const PART_TYPE: &str = "application/offset+octet-stream";

/// Resumable uploads: their records, and how long an idle one is kept.
pub(super) struct Tus {
    pub(super) records: Records,
    pub(super) expiry: Duration,
}
