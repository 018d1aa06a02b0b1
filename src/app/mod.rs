//! Start-up and shutdown of a mediajet process: the local nats-server when
//! needed, connections, the four actors under supervision, and the HTTP
//! front door. The binary and the tests both go through [`run`]; `checks`
//! holds what start-up checks and waits for.

mod checks;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::middleware;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actors::auth::{Auth, AuthSetupError};
use crate::actors::ingest::{Ingest, IngestSetupError, http};
use crate::actors::mailer::{Mailer, MailerSetupError};
use crate::actors::transcoder::Transcoder;
use crate::actors::{Health, Stop, supervise};
use crate::config::{ActorKind, Config};
use crate::nats_server::{NatsServer, NatsServerError};
use crate::ops::{self, Ops};
use crate::shutdown;
use crate::storage::db::{self, DbError};
use crate::storage::jetstream::{self as js_setup, NatsAuth, SetupError};
use crate::wire::subject;
use checks::{check_tool, local_nats_password, nats_auth, wait_for_service, wait_for_workers};

/// What a started process tells its caller.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Where the HTTP API listens (the real port when 0 was asked for).
    pub http_addr: SocketAddr,
    /// The NATS server the actors use.
    pub nats_url: String,
    /// The password of `admin@localhost`, when this start created it.
    pub generated_admin_password: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("`{tool}` was not found or does not run ({path}). Install it: {hint}")]
    MissingTool {
        tool: &'static str,
        path: String,
        hint: &'static str,
    },
    #[error("refusing to start: {0}")]
    Setting(String),
    #[error("cannot use the data dir {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error(transparent)]
    NatsServer(#[from] NatsServerError),
    #[error("cannot connect to NATS at {0}: {1}")]
    Nats(String, async_nats::ConnectError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    JetStream(#[from] SetupError),
    #[error("auth: {0}")]
    Auth(#[from] AuthSetupError),
    #[error("ingest: {0}")]
    Ingest(#[from] IngestSetupError),
    #[error("mailer: {0}")]
    Mailer(#[from] MailerSetupError),
    #[error("cannot listen on {0}: {1}")]
    Http(SocketAddr, std::io::Error),
    #[error("the {0} service did not come up within 30 s")]
    NotServing(&'static str),
}

/// Runs a mediajet process on the current thread until `shutdown` completes,
/// then drains and returns. `on_ready` is called once everything serves.
pub fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + 'static,
    on_ready: impl FnOnce(&Ready) + 'static,
) -> Result<(), StartError> {
    // Several dependencies bring rustls with different crypto back ends;
    // one process-wide provider avoids a panic at the first TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Actors live on this thread's arbiter; their work runs on the
    // multi-threaded runtime underneath it.
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("mediajet")
            .build()
            .expect("cannot start the async runtime")
    });
    // The whole process's future is large: on the heap, not this thread's
    // stack (a test runs it on a thread of the default 2 MiB).
    system.block_on(Box::pin(serve(config, shutdown, on_ready)))
}

async fn serve(
    mut config: Config,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Ready),
) -> Result<(), StartError> {
    checks::settings(&config)?;
    std::fs::create_dir_all(&config.shared.data_dir)
        .map_err(|e| StartError::DataDir(config.shared.data_dir.clone(), e))?;
    config.shared.data_dir = std::fs::canonicalize(&config.shared.data_dir)
        .map_err(|e| StartError::DataDir(config.shared.data_dir.clone(), e))?;
    if config.shared.runs(ActorKind::Transcoder) {
        check_tool(
            "ffmpeg",
            &config.transcoder.ffmpeg,
            "apt-get install ffmpeg",
        )
        .await?;
        check_tool(
            "ffprobe",
            &config.transcoder.ffprobe,
            "apt-get install ffmpeg",
        )
        .await?;
    }

    // A local server requires a password, generated once and kept under
    // the data dir, so another OS user on the machine cannot connect.
    let (nats_server, local_password) = match config.shared.nats_url {
        Some(_) => (None, None),
        None => {
            let dir = config.shared.data_dir.join("nats");
            let password = local_nats_password(&dir)?;
            let options = crate::nats_server::Options {
                port: config.shared.nats_port,
                local_password: Some(password.clone()),
                ..Default::default()
            };
            let server =
                NatsServer::start_with(&config.shared.nats_server_bin, &dir, &options).await?;
            (Some(server), Some(password))
        }
    };
    let nats_url = match (&config.shared.nats_url, &nats_server) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url().to_string(),
        (None, None) => unreachable!("a local server is started when no URL is given"),
    };
    let auth = match local_password {
        Some(password) => {
            NatsAuth::UserPassword(crate::nats_server::LOCAL_USER.to_string(), password)
        }
        None => nats_auth(&config),
    };
    let client = js_setup::connect(
        &nats_url,
        "mediajet",
        &auth,
        &config.shared.nats_inbox_prefix(),
        config.shared.nats_tls_ca.as_deref(),
    )
    .await
    .map_err(|e| StartError::Nats(nats_url.clone(), e))?;
    // Only Auth and Ingest keep data in SurrealDB; other processes never
    // open it and need no database credentials.
    let db = if config.shared.runs(ActorKind::Auth) || config.shared.runs(ActorKind::Ingest) {
        let credentials = config
            .shared
            .surreal_user
            .as_deref()
            .zip(config.shared.surreal_password.as_deref());
        Some(
            db::connect(
                config.shared.surreal_url.as_deref(),
                credentials,
                config.shared.surreal_tls_ca.as_deref(),
                &config.shared.data_dir,
            )
            .await?,
        )
    } else {
        None
    };
    let metrics = crate::metrics::install();
    for actor in &config.shared.actors {
        crate::metrics::declare(*actor);
    }

    // Bind first: with port 0 the real address is known only now, and links
    // in emails must point at it.
    let listener = tokio::net::TcpListener::bind(config.shared.http)
        .await
        .map_err(|e| StartError::Http(config.shared.http, e))?;
    let http_addr = listener
        .local_addr()
        .map_err(|e| StartError::Http(config.shared.http, e))?;
    config.shared.http = http_addr;

    let tracker = TaskTracker::new();
    let health = Health::default();
    let mut actors = Vec::new();
    let mut generated_admin_password = None;
    let mut router = ops::router(Arc::new(Ops {
        client: client.clone(),
        db: db.clone(),
        metrics,
        actors: health.clone(),
    }));
    // The actors' set-up futures are large; boxed, they live on the heap
    // rather than on the stack of the thread that runs this one.
    if let (true, Some(db)) = (config.shared.runs(ActorKind::Auth), &db) {
        let started = Box::pin(Auth::build(
            &config.shared,
            &config.auth,
            client.clone(),
            db.clone(),
        ))
        .await?;
        generated_admin_password = started.generated_admin_password;
        actors.push(supervise(started.auth, tracker.clone(), health.clone()));
    }
    if let (true, Some(db)) = (config.shared.runs(ActorKind::Ingest), &db) {
        let ingest = Box::pin(Ingest::build(
            &config.shared,
            &config.ingest,
            client.clone(),
            db.clone(),
        ))
        .await?;
        router = router.merge(http::router(ingest.clone()));
        actors.push(supervise(ingest, tracker.clone(), health.clone()));
    }
    if config.shared.runs(ActorKind::Transcoder) {
        let transcoder = Box::pin(Transcoder::build(
            &config.shared,
            &config.transcoder,
            client.clone(),
        ))
        .await?;
        actors.push(supervise(transcoder, tracker.clone(), health.clone()));
    }
    if config.shared.runs(ActorKind::Mailer) {
        let mailer = Box::pin(Mailer::build(
            &config.shared,
            &config.mailer,
            client.clone(),
        ))
        .await?;
        actors.push(supervise(mailer, tracker.clone(), health.clone()));
    }
    if config.shared.runs(ActorKind::Auth) {
        // Ready means a login works: wait until Auth answers on NATS.
        wait_for_service(&client, subject::AUTH_SERVICE).await?;
    }
    if config.shared.runs(ActorKind::Ingest) {
        // Likewise for NATS submissions.
        wait_for_service(&client, subject::INGEST_SERVICE).await?;
    }
    wait_for_workers(&health).await?;

    let router = router
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // Outermost last: `track` gives the request its trace, then the
        // trace layer opens the request's span with it.
        .layer(ops::trace_layer())
        .layer(middleware::from_fn(ops::track));
    let stop_http = CancellationToken::new();
    let server = tokio::spawn(crate::server::serve(
        listener,
        router,
        crate::server::Limits {
            header_timeout: config.shared.http_header_timeout,
            max_connections: config.shared.max_connections,
        },
        stop_http.clone(),
    ));
    // Poll the shutdown future once before announcing readiness: signal
    // handlers are installed on first poll, and a SIGTERM sent right after
    // the announcement must find them in place.
    let mut shutdown = std::pin::pin!(shutdown);
    let stopped_early = futures::poll!(shutdown.as_mut()).is_ready();
    tracing::info!(%http_addr, %nats_url, "mediajet is up");
    on_ready(&Ready {
        http_addr,
        nats_url,
        generated_admin_password,
    });

    if !stopped_early {
        shutdown.await;
    }
    tracing::info!("shutting down: no new work, draining in-flight work");
    stop_http.cancel();
    for actor in &actors {
        actor.do_send(Stop);
    }
    // Dropping the addresses lets the supervisors end instead of restarting.
    drop(actors);
    tracker.close();
    // The waits are named, and bounded, in `shutdown`.
    let actors_drain = shutdown::actors_drain(
        config.transcoder.drain_timeout,
        config.shared.runs(ActorKind::Transcoder),
    );
    let (drained, closed) = tokio::join!(
        tokio::time::timeout(actors_drain, tracker.wait()),
        tokio::time::timeout(shutdown::HTTP_DRAIN, server),
    );
    if drained.is_err() {
        tracing::warn!("actors did not drain within {actors_drain:?}");
    }
    if closed.is_err() {
        tracing::warn!("open HTTP connections did not finish in time");
    }
    match tokio::time::timeout(shutdown::NATS_FLUSH, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot flush the NATS connection"),
        Err(_) => tracing::warn!("NATS did not confirm the final flush"),
    }
    // Everything sent is confirmed; drain unsubscribes what is left and
    // closes the connection, so the server sees a clean departure.
    match tokio::time::timeout(shutdown::NATS_FLUSH, client.drain()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot drain the NATS connection"),
        Err(_) => tracing::warn!("the NATS connection did not drain in time"),
    }
    drop(client);
    drop(db);
    // Give the embedded database's closing task a moment before the
    // runtime ends.
    tokio::time::sleep(shutdown::DB_CLOSE).await;
    if let Some(server) = nats_server {
        server.stop().await;
    }
    tracing::info!("stopped");
    Ok(())
}
