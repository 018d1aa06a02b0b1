//! Values parsed once, where they enter the service (an HTTP request, a NATS
//! message, a work item), and trusted from then on: a `JobId` is a UUID in
//! its canonical spelling, an `Email` is trimmed, lowercased and shaped like
//! an address.

mod email;
mod job_id;

pub use email::{Email, EmailError};
pub use job_id::JobId;
