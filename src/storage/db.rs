//! SurrealDB connection. Embedded (surrealkv under the data dir) unless a
//! remote URL is configured. The tables themselves belong to the actors that
//! own them: Auth defines `user`, Ingest defines `job`.

use std::path::Path;
use std::time::Duration;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::opt::auth::Root;

use crate::backoff::Backoff;
use crate::error::BoxError;

pub type Db = Surreal<Any>;

const NAMESPACE: &str = "mediajet";
const DATABASE: &str = "mediajet";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open SurrealDB at {url}: {source}")]
    Connect {
        url: String,
        source: Box<surrealdb::Error>,
    },
    #[error("SurrealDB query failed: {0}")]
    Query(Box<surrealdb::Error>),
    #[error("stored record is malformed: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("SurrealDB did not answer within {} s", QUERY_TIMEOUT.as_secs())]
    Timeout,
    #[error("cannot use the SurrealDB CA certificate {path}")]
    Tls {
        path: String,
        #[source]
        source: BoxError,
    },
}

/// How long one query may take before the database counts as unavailable.
/// The SDK waits for a lost server to come back; callers answer 503 instead
/// of hanging.
pub const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a query (or anything else against the database) within
/// [`QUERY_TIMEOUT`].
pub async fn bounded<T, E, F>(query: F) -> Result<T, DbError>
where
    F: std::future::IntoFuture<Output = Result<T, E>>,
    DbError: From<E>,
{
    tokio::time::timeout(QUERY_TIMEOUT, query)
        .await
        .map_err(|_| DbError::Timeout)?
        .map_err(DbError::from)
}

impl DbError {
    /// A write that lost a race with a concurrent one (surrealkv's optimistic
    /// transactions): running it again is expected to succeed. The SDK says
    /// so only in its message.
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::Query(err) if err.to_string().contains("can be retried"))
    }
}

/// Runs `attempt` again, after a short growing pause, while it fails with a
/// transaction conflict; at most five retries.
pub async fn retry_conflicts<T, F, Fut>(mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    const PAUSES: Backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(80));
    for step in 0..5 {
        match attempt().await {
            Err(err) if err.is_conflict() => tokio::time::sleep(PAUSES.delay(step)).await,
            other => return other,
        }
    }
    attempt().await
}

impl From<surrealdb::Error> for DbError {
    fn from(err: surrealdb::Error) -> Self {
        // Boxed: the SDK's error is large and would bloat every Result.
        DbError::Query(Box::new(err))
    }
}

/// Opens the database: `url` if given (with root credentials if given), else
/// an embedded store in `<data_dir>/surreal`.
/// With `tls_ca`, a `wss://` server's certificate must chain to that CA
/// (PEM) rather than to the usual public roots.
pub async fn connect(
    url: Option<&str>,
    credentials: Option<(&str, &str)>,
    tls_ca: Option<&Path>,
    data_dir: &Path,
) -> Result<Db, DbError> {
    let url = match url {
        Some(url) => url.to_string(),
        None => format!("surrealkv://{}", data_dir.join("surreal").display()),
    };
    let connect_err = |source| DbError::Connect {
        url: url.clone(),
        source: Box::new(source),
    };
    let db = match tls_ca {
        Some(ca) => {
            let tls = tls_config(ca).map_err(|source| DbError::Tls {
                path: ca.display().to_string(),
                source,
            })?;
            let config = surrealdb::opt::Config::new().rustls(tls);
            surrealdb::engine::any::connect((url.as_str(), config)).await
        }
        None => surrealdb::engine::any::connect(url.as_str()).await,
    }
    .map_err(connect_err)?;
    if let Some((username, password)) = credentials {
        db.signin(Root {
            username: username.to_string(),
            password: password.to_string(),
        })
        .await
        .map_err(connect_err)?;
    }
    db.use_ns(NAMESPACE)
        .use_db(DATABASE)
        .await
        .map_err(connect_err)?;
    Ok(db)
}

/// A TLS client configuration that trusts the certificates in `ca` only.
fn tls_config(ca: &Path) -> Result<rustls::ClientConfig, BoxError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca)? {
        roots.add(certificate?)?;
    }
    if roots.is_empty() {
        return Err("no certificate in the file".into());
    }
    // The provider is named rather than taken from the process: several
    // crates here bring rustls with different back ends.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Runs schema statements and fails if any of them failed: `query().await`
/// alone succeeds even when a statement inside it did not.
pub async fn define(db: &Db, statements: &str) -> Result<(), DbError> {
    db.query(statements).await?.check()?;
    Ok(())
}

/// Whether the database answers.
pub async fn ping(db: &Db) -> bool {
    db.health().await.is_ok()
}
