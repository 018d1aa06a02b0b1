//! Logging set-up. Logs go to stderr as text; `RUST_LOG` selects what is shown.

use tracing_subscriber::EnvFilter;

use crate::domain::JobId;

/// Installs the global subscriber with the service's default filter.
pub fn init() {
    init_with("info,surrealdb=warn,surrealkv=warn,async_nats=warn");
}

/// Installs the global subscriber; `RUST_LOG` overrides `default_filter`.
/// Safe to call more than once (tests start several services per process).
pub fn init_with(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Names the job the current request is about in its span: every HTTP and
/// NATS request span declares a `job` field, empty until the request has
/// parsed or made a job id, so what it logs afterwards carries the id.
pub fn record_job(id: &JobId) {
    tracing::Span::current().record("job", id.as_str());
}
