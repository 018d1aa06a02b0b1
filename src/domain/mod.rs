//! Values parsed once, where they enter the service (an HTTP request, a NATS
//! message, a work item), and trusted from then on: a `JobId` is a UUID in
//! its canonical spelling, an `Email` is trimmed, lowercased and shaped like
//! an address; a `Network` is an address with a prefix length that fits it.

mod email;
mod job_id;
mod network;

pub use email::{Email, EmailError};
pub use job_id::JobId;
pub use network::{Network, parse_network};
