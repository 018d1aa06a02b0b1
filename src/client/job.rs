//! A job as the API answers with it, as far as the client reads it.

use serde::Deserialize;

use crate::wire::JobState;

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Job {
    pub id: String,
    pub state: JobState,
    #[serde(default)]
    pub progress: f64,
    pub speed: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub queue_position: Option<u64>,
    pub error: Option<String>,
    pub output: Option<Output>,
}

/// Where a completed job's audio is.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Output {
    pub url: String,
    pub filename: String,
}
