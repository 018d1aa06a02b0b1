//! `mediajet login` and `mediajet submit`: a command-line client of the HTTP
//! API. `submit` uploads with a progress bar, follows the job's live events
//! (`/v1/jobs/{id}/events`) with a second one, and downloads the audio; its
//! exit code says how the job ended (see [`ClientError::exit_code`]).
//!
//! - `args`: the commands' arguments
//! - `error`: failures and exit codes
//! - `session`: the HTTP client, login, and renewing the saved tokens
//! - `submit`: upload, follow, download
//! - `upload`: the resumable (tus) upload; `resume`: the unfinished uploads
//!   a later run goes on with
//! - `job`: the job as the client reads it
//! - `progress`: progress bars and the line that describes a job
//! - `events`: the Server-Sent Events reader
//! - `credentials`: the saved tokens and the password prompt

mod args;
mod credentials;
mod error;
mod events;
mod job;
mod progress;
mod resume;
mod session;
mod submit;
mod upload;

pub use args::{LoginArgs, SubmitArgs};
pub use credentials::Credentials;
pub use error::ClientError;
pub use session::login;
pub use submit::submit;
