//! Ingest: the HTTP API. It takes uploads into the object store, creates
//! jobs (history row, live state, work item), serves status and downloads,
//! and projects terminal job events into the history.
//!
//! - `http/`: the routes; `service`: the same jobs over NATS
//! - `submission`: what makes a submission valid; `quota`: the caller's caps;
//!   `create`: the job made of it;
//!   `idempotency`: a repeated submission answered with its first job
//! - `tus/`: resumable uploads (tus 1.0.0), made jobs once whole; `cover`:
//!   a cover picture uploaded with a job; `import/`: inputs fetched from a
//!   URL (`source_url`), a work queue of Ingest's own
//! - `streamable`: whether an upload's first chunk lets it be converted
//!   while it arrives
//! - `lookup`: reading jobs; `view`: the job as its owner sees it;
//!   `finished`: finished jobs held in memory for those reads
//! - `cancel`: cancel and delete; `follow`, `feeds`: live job events
//! - `login`, `throttle`, `peer`: throttled logins and the client's address
//! - `history`, `projector`: the job history in SurrealDB and its writer;
//!   `presets`: the option sets users save, also in SurrealDB
//! - `per_owner`, `rate`: per-user counts and the upload speed floor
//! - `gauges`: the queue, dead letters and stores, sampled for Prometheus
//! - `error`: the HTTP error mapping; `openapi`, `web`: the document's frame
//!   and the web page

mod callers;
pub mod cancel;
pub(super) mod cover;
mod create;
pub mod error;
mod feeds;
mod finished;
mod follow;
mod gauges;
pub mod history;
pub mod http;
mod idempotency;
mod import;
mod login;
mod lookup;
mod notify;
mod openapi;
pub mod peer;
mod per_owner;
mod podcast;
mod presets;
mod projector;
mod quota;
mod rate;
mod removal;
mod service;
mod streamable;
mod submission;
mod throttle;
mod tus;
mod view;
mod web;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{Context, kv, stream::Stream};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::actors::{ConsumerHealth, Worker, WorkerError, WorkerFuture, consumer_deleted, micro};
use crate::config::{IngestSettings, Shared};
use crate::storage::buckets;
use crate::storage::db::{Db, DbError};
use crate::storage::jetstream as js_setup;
use crate::storage::objects::{self, Bucket};
use crate::token::api_keys::ApiKeys;
use crate::token::links::{LinkKey, LinkKeyError, Links};
use crate::token::{DisabledUsers, Revocations, Verifier};
use crate::wire::{names, subject};
use history::History;

#[derive(Debug, thiserror::Error)]
pub enum IngestSetupError {
    #[error(transparent)]
    JetStream(#[from] js_setup::SetupError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen for job starts")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("cannot watch the jobs bucket")]
    Watch(#[from] async_nats::jetstream::kv::WatchError),
    #[error(transparent)]
    Links(#[from] LinkKeyError),
}

pub struct Ingest {
    client: async_nats::Client,
    js: Context,
    jobs: kv::Store,
    /// Jobs seen to end, answered without a round trip.
    finished: finished::FinishedJobs,
    submissions: kv::Store,
    owners: kv::Store,
    uploads: Bucket,
    /// Resumable uploads in progress.
    tus: tus::Tus,
    outputs: Bucket,
    work: Stream,
    /// Jobs whose input is to be fetched from a URL.
    imports: Stream,
    events: Stream,
    history: History,
    presets: presets::Presets,
    verifier: Verifier,
    /// Signed download links: made for the job's view, checked on `/d/`.
    links: Links,
    /// API keys, mirrored from their bucket.
    api_keys: ApiKeys,
    /// Which emails each user wants.
    notify: kv::Store,
    /// The users' podcast feeds.
    podcast_feeds: kv::Store,
    /// Users' webhook endpoints, and what their deliveries came to.
    webhooks: kv::Store,
    deliveries: kv::Store,
    /// Which private addresses webhooks and imports may reach.
    targets: crate::targets::Policy,
    /// The service's address as users reach it, without a trailing slash.
    public_url: String,
    chunk_size: usize,
    max_upload_bytes: u64,
    max_unfinished_jobs: u64,
    /// Most bytes one user may keep stored.
    max_user_bytes: u64,
    /// How long uploads and outputs are kept.
    retention: Duration,
    /// How long a request other than an upload may take to be answered.
    request_timeout: Duration,
    /// Slowest upload accepted, in bytes per second.
    upload_min_rate: u64,
    /// Failed logins by account and client address, by account, and by
    /// client address.
    login_pairs: throttle::Throttle,
    login_accounts: throttle::Throttle,
    login_addresses: throttle::Throttle,
    /// Uploads in progress in this process, by owner.
    uploading: per_owner::Counts,
    /// Event streams open in this process, by owner.
    following: per_owner::Counts,
    /// How often chunks that no upload names are looked for.
    orphan_sweep: Duration,
    /// The watches event streams share.
    feeds: feeds::Feeds,
    /// Cancelled when the process stops: event streams end then.
    closing: CancellationToken,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<peer::Network>,
    /// Origins whose web apps may call the API from a browser.
    cors_origins: Vec<String>,
}

impl Ingest {
    pub async fn build(
        shared: &Shared,
        settings: &IngestSettings,
        client: async_nats::Client,
        db: Db,
    ) -> Result<Arc<Ingest>, IngestSetupError> {
        let js = js_setup::context(client.clone());
        let r = shared.replicas;
        let work = js_setup::work_stream(&js, r).await?;
        js_setup::webhooks_stream(&js, r).await?;
        let imports = js_setup::imports_stream(&js, r).await?;
        let events = js_setup::events_stream(&js, r).await?;
        let jobs = buckets::jobs_bucket(&js, r).await?;
        let feeds = feeds::Feeds::start(&client, jobs.clone(), work.clone()).await?;
        let (tus_records, tus_stream) = buckets::tus_bucket(&js, r, shared.retention).await?;
        let ingest = Ingest {
            finished: finished::FinishedJobs::watch(client.clone(), jobs.clone()).await?,
            jobs,
            feeds,
            submissions: buckets::submissions_bucket(&js, r).await?,
            owners: buckets::owners_bucket(&js, r).await?,
            uploads: objects::uploads_bucket(&js, r, shared.retention, shared.uploads_store_bytes)
                .await?,
            tus: tus::Tus {
                records: tus::record::Records::new(tus_records, tus_stream),
                expiry: settings.upload_expiry,
            },
            outputs: objects::outputs_bucket(&js, r, shared.retention, shared.outputs_store_bytes)
                .await?,
            verifier: Verifier::watch(
                buckets::keys_bucket(&js, r).await?,
                Revocations::watch(buckets::revoked_bucket(&js, r).await?).await,
                DisabledUsers::watch(buckets::disabled_bucket(&js, r).await?).await,
                shared.token_ttl,
            )
            .await,
            links: Links::new(
                LinkKey::load_or_create(&buckets::links_bucket(&js, r).await?).await?,
                &shared.public_base_url(),
                shared.link_ttl,
                shared.retention,
            ),
            api_keys: ApiKeys::watch(buckets::api_keys_bucket(&js, r).await?).await,
            notify: buckets::notify_bucket(&js, r).await?,
            podcast_feeds: buckets::feeds_bucket(&js, r).await?,
            webhooks: buckets::webhooks_bucket(&js, r).await?,
            deliveries: buckets::deliveries_bucket(&js, r).await?,
            targets: shared.target_policy(),
            public_url: shared.public_base_url(),
            history: History::open(db.clone()).await?,
            presets: presets::Presets::open(db).await?,
            chunk_size: objects::chunk_size(&client),
            max_upload_bytes: settings.max_upload_bytes,
            max_unfinished_jobs: settings.max_unfinished_jobs,
            max_user_bytes: settings.max_user_bytes,
            retention: shared.retention,
            request_timeout: settings.http_request_timeout,
            upload_min_rate: settings.upload_min_rate,
            login_pairs: throttle::Throttle::new(settings.login_failures, settings.login_window),
            login_accounts: throttle::Throttle::new(
                settings.login_failures.saturating_mul(20),
                settings.login_window,
            ),
            login_addresses: throttle::Throttle::new(
                settings.login_failures.saturating_mul(4),
                settings.login_window,
            ),
            trusted_proxies: settings.trusted_proxies.clone(),
            cors_origins: settings.cors_origins.clone(),
            uploading: per_owner::Counts::default(),
            following: per_owner::Counts::default(),
            closing: CancellationToken::new(),
            orphan_sweep: settings.orphan_sweep,
            work,
            imports,
            events,
            client,
            js,
        };
        Ok(Arc::new(ingest))
    }

    /// Ends expired resumable uploads, then purges the chunks of writes that
    /// broke off, sparing those of resumable uploads still open.
    async fn sweep(&self) {
        let open = match self.expire_uploads().await {
            Ok(open) => open,
            Err(err) => {
                // Without the open uploads' chunks known, none may be swept.
                tracing::warn!(error = %err, "cannot sweep expired resumable uploads");
                return;
            }
        };
        match self.uploads.sweep_orphans(self.orphan_idle(), &open).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged the chunks of uploads that broke off"),
            Err(err) => tracing::warn!(error = %err, "cannot sweep broken-off uploads"),
        }
    }

    /// How long chunks must have been still before a sweep takes them for
    /// the remains of a broken-off upload: longer than the slowest upload
    /// accepted takes to send a chunk, plus a rate window.
    fn orphan_idle(&self) -> Duration {
        let chunk = (self.chunk_size as u64).div_ceil(self.upload_min_rate.max(1));
        Duration::from_secs(chunk) + rate::WINDOW
    }
}

impl Worker for Ingest {
    const NAME: &'static str = "ingest";

    /// The HTTP API is served by the process's front door; the worker serves
    /// the NATS jobs service and projects terminal job events into the
    /// history.
    fn run(self: Arc<Self>, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move {
            let consumer = js_setup::events_consumer(
                &self.events,
                names::HISTORY_CONSUMER,
                subject::terminal_job_events(),
            )
            .await
            .map_err(|e| WorkerError::new("history consumer", e))?;
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(20)
                .messages()
                .await
                .map_err(|e| WorkerError::new("history consumer", e))?;
            let mut served = micro::start(
                &self.client,
                subject::INGEST_SERVICE,
                "mediajet jobs: submit uploads for conversion, ask their state",
                subject::JOBS_GROUP,
                &[subject::SUBMIT_ENDPOINT, subject::STATUS_ENDPOINT],
            )
            .await?;
            let mut health = ConsumerHealth::new(names::HISTORY_CONSUMER);
            // Chunks of uploads whose process died mid-way, swept now and then.
            let mut sweep = tokio::time::interval(self.orphan_sweep);
            // Ends with this run, however it ends: a restarted run starts its own.
            let _sampler = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                gauges::sample_until(self.clone(), shutdown.clone()),
            ));
            // Beside the history: job events become webhook deliveries,
            // and URL imports are fetched.
            let mut fanning = tokio_util::task::AbortOnDropHandle::new(tokio::spawn({
                let ingest = self.clone();
                let shutdown = shutdown.clone();
                async move {
                    let imports = ingest.clone().run_imports(shutdown.clone());
                    tokio::try_join!(ingest.run_fan_out(shutdown), imports).map(|_| ())
                }
            }));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = messages.next() => match next {
                        Some(Ok(message)) => {
                            health.ok();
                            self.project(message).await;
                        }
                        Some(Err(err)) => {
                            let deleted = consumer_deleted(&err);
                            if let Err(stop) = health.failed(err, deleted) {
                                if let Err(err) = served.stop().await {
                                    tracing::warn!(error = %err, "cannot stop the jobs service");
                                }
                                return Err(stop);
                            }
                        }
                        None => return Err(WorkerError::ended("the history consumer")),
                    },
                    _ = sweep.tick() => self.sweep().await,
                    done = &mut fanning => {
                        // They end well only when the process stops: leave
                        // the way a stop does, which ends the event streams.
                        let failure = match done {
                            Ok(Ok(())) => break,
                            Ok(Err(err)) => err,
                            Err(err) => WorkerError::new("webhook fan-out and imports", err),
                        };
                        if let Err(err) = served.stop().await {
                            tracing::warn!(error = %err, "cannot stop the jobs service");
                        }
                        return Err(failure);
                    }
                    next = served.next() => match next {
                        Some((endpoint, request)) => {
                            served.answer(service::serve(self.clone(), request, endpoint));
                        }
                        None => return Err(WorkerError::ended("the jobs endpoints")),
                    },
                }
            }
            // Event streams end with the process; answer what was already
            // received before leaving.
            self.closing.cancel();
            served.stop().await
        })
    }
}
