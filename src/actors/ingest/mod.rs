//! Ingest: the HTTP API. It takes uploads into the object store, creates
//! jobs (history row, live state, work item), serves status and downloads,
//! and projects terminal job events into the history.

pub mod api;
pub mod cancel;
pub mod error;
mod feeds;
mod follow;
pub mod history;
mod openapi;
pub mod peer;
mod per_owner;
mod rate;
mod service;
mod throttle;
mod web;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Context, kv, object_store, stream::Stream};
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::io::AsyncRead;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actors::{ConsumerHealth, Worker, WorkerError, WorkerFuture, consumer_deleted, micro};
use crate::config::Config;
use crate::storage::db::{Db, DbError};
use crate::storage::jetstream as js_setup;
use crate::storage::objects::{self, Bucket};
use crate::token::{Revocations, Verifier};
use crate::wire::{self, Job, JobState, WorkItem, names, subject};
use error::ApiError;
use history::{History, StateFilter};

#[derive(Debug, thiserror::Error)]
pub enum IngestSetupError {
    #[error(transparent)]
    JetStream(#[from] js_setup::SetupError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen for job starts: {0}")]
    Subscribe(String),
}

pub struct Ingest {
    client: async_nats::Client,
    js: Context,
    jobs: kv::Store,
    submissions: kv::Store,
    owners: kv::Store,
    uploads: Bucket,
    outputs: Bucket,
    work: Stream,
    events: Stream,
    history: History,
    verifier: Verifier,
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
}

impl Ingest {
    pub async fn build(
        config: &Config,
        client: async_nats::Client,
        db: Db,
    ) -> Result<Arc<Ingest>, IngestSetupError> {
        let js = js_setup::context(client.clone());
        let r = config.replicas;
        let work = js_setup::work_stream(&js, r).await?;
        let events = js_setup::events_stream(&js, r).await?;
        let jobs = js_setup::jobs_bucket(&js, r).await?;
        let feeds = feeds::Feeds::start(&client, jobs.clone(), work.clone())
            .await
            .map_err(|e| IngestSetupError::Subscribe(e.to_string()))?;
        let ingest = Ingest {
            jobs,
            feeds,
            submissions: js_setup::submissions_bucket(&js, r).await?,
            owners: js_setup::owners_bucket(&js, r).await?,
            uploads: objects::uploads_bucket(&js, r, config.retention, config.uploads_store_bytes)
                .await?,
            outputs: objects::outputs_bucket(&js, r, config.retention, config.outputs_store_bytes)
                .await?,
            verifier: Verifier::watch(
                js_setup::keys_bucket(&js, r).await?,
                Revocations::watch(js_setup::revoked_bucket(&js, r).await?).await,
                config.token_ttl,
            )
            .await,
            history: History::open(db).await?,
            chunk_size: objects::chunk_size(&client),
            max_upload_bytes: config.max_upload_bytes,
            max_unfinished_jobs: config.max_unfinished_jobs,
            max_user_bytes: config.max_user_bytes,
            retention: config.retention,
            request_timeout: config.http_request_timeout,
            upload_min_rate: config.upload_min_rate,
            login_pairs: throttle::Throttle::new(config.login_failures, config.login_window),
            login_accounts: throttle::Throttle::new(
                config.login_failures.saturating_mul(20),
                config.login_window,
            ),
            login_addresses: throttle::Throttle::new(
                config.login_failures.saturating_mul(4),
                config.login_window,
            ),
            trusted_proxies: config.trusted_proxies.clone(),
            uploading: per_owner::Counts::default(),
            following: per_owner::Counts::default(),
            closing: CancellationToken::new(),
            orphan_sweep: config.orphan_sweep,
            work,
            events,
            client,
            js,
        };
        Ok(Arc::new(ingest))
    }

    /// Streams an upload into the object store under the job id and returns
    /// its size. Only one chunk is held in memory at a time.
    async fn store_upload(
        &self,
        job_id: &str,
        data: impl AsyncRead + Unpin,
    ) -> Result<u64, objects::PutError> {
        let info = objects::put_object(
            &self.uploads,
            job_id,
            data,
            self.chunk_size,
            Default::default(),
        )
        .await?;
        Ok(info.size as u64)
    }

    /// Refuses a new job while the owner already has the most unfinished
    /// jobs allowed, counting `also` more (uploads in progress, or the job
    /// about to be created).
    async fn check_unfinished(&self, owner: &str, also: u64) -> Result<(), ApiError> {
        let unfinished = self
            .history
            .unfinished(owner)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        if unfinished.saturating_add(also) > self.max_unfinished_jobs {
            crate::metrics::refused("unfinished_jobs");
            return Err(ApiError::TooMany(
                "too_many_jobs",
                format!(
                    "you have {unfinished} unfinished jobs and {} uploads in progress; at most {} \
                     are allowed: wait for some to end or cancel some",
                    also.saturating_sub(1),
                    self.max_unfinished_jobs
                ),
                30,
            ));
        }
        Ok(())
    }

    /// What is left of `owner`'s storage quota, or 413 `quota_exceeded`
    /// when nothing is.
    async fn quota_left(&self, owner: &str) -> Result<u64, ApiError> {
        let kept_since = OffsetDateTime::now_utc() - self.retention;
        let stored = self
            .history
            .stored_bytes(owner, kept_since)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        match self
            .max_user_bytes
            .checked_sub(stored)
            .filter(|left| *left > 0)
        {
            Some(left) => Ok(left),
            None => {
                crate::metrics::refused("quota");
                Err(ApiError::QuotaExceeded(self.max_user_bytes))
            }
        }
    }

    /// Counts an upload of `owner`'s as in progress, unless that would take
    /// them past their cap on unfinished jobs.
    async fn start_upload(&self, owner: &str) -> Result<per_owner::Slot, ApiError> {
        let (slot, in_progress) = self.uploading.start(owner);
        self.check_unfinished(owner, in_progress).await?;
        Ok(slot)
    }

    /// Logs in through Auth, unless this account from this address, the
    /// account from anywhere, or this address for any account has failed
    /// too often lately. The attempt counts against all three before Auth
    /// checks the password, and is forgiven if the password was right.
    ///
    /// The account's own limit is per address: a stranger guessing from
    /// elsewhere does not lock the owner out. Across all addresses an
    /// account may fail twenty times as often before it is locked for
    /// everyone, which bounds guessing spread over many addresses at the
    /// cost of letting such a spread attack lock the owner out until the
    /// window passes.
    async fn login(
        &self,
        email: &str,
        password: &str,
        address: std::net::IpAddr,
    ) -> Result<wire::TokenReply, ApiError> {
        let account: String = email.trim().to_lowercase().chars().take(320).collect();
        let keys = [
            (&self.login_pairs, format!("{account}\n{address}")),
            (&self.login_accounts, account.clone()),
            (&self.login_addresses, address.to_string()),
        ];
        let mut reserved = Vec::with_capacity(keys.len());
        for (throttle, key) in &keys {
            match throttle.reserve(key) {
                Ok(at) => reserved.push((*throttle, key, at)),
                Err(wait) => {
                    for (throttle, key, at) in reserved {
                        throttle.forgive(key, at);
                    }
                    crate::metrics::refused("login_throttle");
                    return Err(ApiError::TooMany(
                        "too_many_logins",
                        "too many failed logins; try again later".into(),
                        wait.as_secs() + 1,
                    ));
                }
            }
        }
        let outcome = crate::actors::auth::client::login(&self.client, email, password)
            .await
            .map_err(ApiError::from);
        match &outcome {
            Err(ApiError::InvalidCredentials) => {}
            Ok(_) => {
                self.login_pairs.succeeded(&keys[0].1);
                for (throttle, key, at) in reserved {
                    throttle.forgive(key, at);
                }
            }
            // Undecided (Auth unavailable or busy): not a failed guess.
            Err(_) => {
                for (throttle, key, at) in reserved {
                    throttle.forgive(key, at);
                }
            }
        }
        outcome
    }

    /// How long chunks must have been still before a sweep takes them for
    /// the remains of a broken-off upload: longer than the slowest upload
    /// accepted takes to send a chunk, plus a rate window.
    fn orphan_idle(&self) -> Duration {
        let chunk = (self.chunk_size as u64).div_ceil(self.upload_min_rate.max(1));
        Duration::from_secs(chunk) + rate::WINDOW
    }

    /// The client's address, as login throttling counts it.
    fn client_address(
        &self,
        peer: std::net::SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        peer::client_address(peer.ip(), headers, &self.trusted_proxies)
    }

    /// Removes an upload whose job could not be created.
    async fn discard_upload(&self, job_id: &str) {
        if let Err(err) = self.uploads.delete(job_id).await {
            tracing::warn!(job = job_id, error = %err, "cannot delete an abandoned upload");
        }
    }

    /// Records a new job and queues its work item. On failure nothing of the
    /// job is left behind except what the caller cleans (the upload).
    async fn submit(&self, job: &Job) -> Result<(), ApiError> {
        // Who gets the job's email, where no transcoder can change it.
        let owner = wire::JobOwner {
            v: wire::VERSION,
            owner: job.owner.clone(),
            email: job.owner_email.clone(),
        };
        self.owners
            .put(job.id.as_str(), wire::encode(&owner))
            .await
            .map_err(|e| ApiError::unavailable("the owners bucket", e))?;
        self.history
            .upsert(job)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        let revision = match self.jobs.create(job.id.as_str(), wire::encode(job)).await {
            Ok(revision) => revision,
            Err(err) => {
                self.forget(job).await;
                return Err(ApiError::unavailable("the jobs bucket", err));
            }
        };
        let item = WorkItem {
            v: wire::VERSION,
            job_id: job.id.clone(),
        };
        let publish = jetstream::message::PublishMessage::build()
            .payload(wire::encode(&item))
            .message_id(job.id.as_str());
        let acked = match self.js.send_publish(subject::WORK_TRANSCODE, publish).await {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let sequence = match acked {
            Ok(ack) => ack.sequence,
            Err(err) => {
                let _ = self.jobs.purge(job.id.as_str()).await;
                self.forget(job).await;
                return Err(ApiError::unavailable("the work queue", err));
            }
        };
        // The work item's place in the stream tells the job's place in the
        // queue. Only while nothing else wrote the job: once a transcoder
        // has it, its place no longer matters.
        let mut queued = job.clone();
        queued.work_seq = Some(sequence);
        if let Err(err) = self
            .jobs
            .update(job.id.as_str(), wire::encode(&queued), revision)
            .await
        {
            tracing::debug!(job = %job.id, error = %err, "the job moved on before its queue place was noted");
        }
        // The queued event only feeds observers; the job is already safe.
        if let Err(err) = js_setup::publish_job_event(&self.js, job).await {
            tracing::warn!(job = %job.id, error = %err, "cannot publish the queued event");
        }
        Ok(())
    }

    /// Removes the history row of a job that could not be queued, so the
    /// user's list shows no job that will never run.
    async fn forget(&self, job: &Job) {
        if let Err(err) = self.history.delete(&job.id).await {
            tracing::warn!(job = %job.id, error = %err, "cannot remove an unqueued job");
        }
    }

    /// Cancels the caller's unfinished job, or deletes a finished one with its
    /// audio. Returns the canceled job, or `None` once the job is gone.
    async fn cancel_or_delete(&self, owner: &str, job_id: &str) -> Result<Option<Job>, ApiError> {
        let job = self.job_for(owner, job_id).await?;
        let job_id = job.id.clone();
        let job_id = job_id.as_str();
        if job.state.is_terminal() {
            if let Some(output) = &job.output {
                match self.outputs.delete(&output.object).await {
                    Ok(()) => {}
                    Err(err) if err.kind() == object_store::DeleteErrorKind::NotFound => {}
                    Err(err) => return Err(ApiError::unavailable("the object store", err)),
                }
            }
            // Live state first, history last: until the history row goes the
            // job is still listed, so a failed delete can be repeated.
            self.jobs
                .purge(job_id)
                .await
                .map_err(|e| ApiError::unavailable("the jobs bucket", e))?;
            self.history
                .delete(job_id)
                .await
                .map_err(|e| ApiError::unavailable("the job history", e))?;
            return Ok(None);
        }
        let job = match cancel::cancel(&self.jobs, job_id)
            .await
            .map_err(|e| ApiError::unavailable("the jobs bucket", e))?
        {
            cancel::Canceled::Now(job) => job,
            cancel::Canceled::AlreadyEnded(ended) => {
                return Err(ApiError::Conflict(
                    "already_ended",
                    format!(
                        "the job was {} before it could be canceled; delete it to remove it",
                        ended.state.as_str()
                    ),
                ));
            }
            cancel::Canceled::Gone => return Err(ApiError::NotFound),
        };
        // The jobs bucket now says canceled, which a transcoder checks before it
        // starts and at every progress write; this message makes one that is
        // encoding the job stop at once.
        if let Err(err) = self
            .client
            .publish(subject::cancel(job_id), bytes::Bytes::new())
            .await
        {
            tracing::warn!(job = %job_id, error = %err, "cannot send the cancel request");
        }
        // The event records the cancel in the history; nobody is emailed.
        if let Err(err) = js_setup::publish_job_event(&self.js, &job).await {
            tracing::warn!(job = %job_id, error = %err, "cannot publish the canceled event");
        }
        Ok(Some(job))
    }

    /// The caller's job, or `NotFound` if it is someone else's or unknown.
    async fn job_for(&self, owner: &str, job_id: &str) -> Result<Job, ApiError> {
        // Any spelling of a UUID (braces, `urn:uuid:`, capitals) names the
        // same job; only the canonical one is a key.
        let job_id = canonical_job_id(job_id).ok_or(ApiError::NotFound)?;
        let job_id = job_id.as_str();
        let live = self
            .jobs
            .get(job_id)
            .await
            .map_err(|e| ApiError::unavailable("the jobs bucket", e))?;
        let job = match live {
            Some(bytes) => Some(wire::decode::<Job>(&bytes).map_err(ApiError::internal)?),
            None => self
                .history
                .get(job_id)
                .await
                .map_err(|e| ApiError::unavailable("the job history", e))?,
        };
        match job {
            Some(job) if job.owner == owner => Ok(job),
            _ => Err(ApiError::NotFound),
        }
    }

    /// The stream sequence of the last work item a transcoder has taken,
    /// or `None` when that is unknown (no transcoder has started yet).
    async fn work_taken(&self) -> Option<u64> {
        self.work
            .consumer_info(names::TRANSCODERS_CONSUMER)
            .await
            .ok()
            .map(|info| info.delivered.stream_sequence)
    }

    /// The job as its owner sees it, with its place in the queue while it
    /// waits.
    async fn view(&self, job: Job) -> api::JobView {
        let taken = if job.state == JobState::Queued {
            self.work_taken().await
        } else {
            None
        };
        api::JobView::new(job, taken)
    }

    /// A page of the owner's jobs, newest first, in their live state, and
    /// the cursor of the next page if there may be one.
    async fn jobs_for(
        &self,
        owner: &str,
        state: Option<JobState>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Job>, Option<String>), ApiError> {
        let filter = match state {
            None => StateFilter::Any,
            Some(state) if state.is_terminal() => StateFilter::Finished(state),
            Some(_) => StateFilter::Unfinished,
        };
        let mut jobs = self
            .history
            .list(owner, filter, before, limit)
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        // A full page may have more behind it; the cursor is the last job
        // looked at, whether or not the state filter keeps it.
        let next = (jobs.len() == limit as usize)
            .then(|| jobs.last().map(|job| job.id.clone()))
            .flatten();
        for job in jobs.iter_mut().filter(|job| !job.state.is_terminal()) {
            if let Ok(Some(bytes)) = self.jobs.get(job.id.as_str()).await
                && let Ok(live) = wire::decode::<Job>(&bytes)
            {
                *job = live;
            }
        }
        if let Some(state) = state {
            jobs.retain(|job| job.state == state);
        }
        Ok((jobs, next))
    }

    async fn project(&self, message: jetstream::Message) {
        let job = match wire::decode::<Job>(&message.payload) {
            Ok(job) => job,
            Err(err) => {
                tracing::warn!(subject = %message.subject, error = %err, "dropping a malformed job event");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let outcome = match self.record_event(&job).await {
            Ok(()) => message.ack().await,
            Err(err) => {
                tracing::warn!(job = %job.id, error = %err, "cannot record the job; retrying");
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await
            }
        };
        if let Err(err) = outcome {
            tracing::warn!(job = %job.id, error = %err, "cannot acknowledge a job event");
        }
    }
}

/// The canonical spelling of a job id (lowercase, hyphenated), if `text`
/// spells a UUID at all.
fn canonical_job_id(text: &str) -> Option<String> {
    // The longest spelling `uuid` accepts is `urn:uuid:` and 36 characters.
    if text.len() > 45 {
        return None;
    }
    uuid::Uuid::parse_str(text)
        .ok()
        .map(|id| id.hyphenated().to_string())
}

impl Ingest {
    /// Writes a job's event into the history, unless the job has been
    /// deleted: its live state is then gone (a purge marker), and an event
    /// delivered late, or again, must not bring the job back. The live
    /// state is checked once more after the write, since a delete may have
    /// come in between; the row is then removed again.
    async fn record_event(&self, job: &Job) -> Result<(), String> {
        if self.deleted(&job.id).await? {
            return Ok(());
        }
        self.history.upsert(job).await.map_err(|e| e.to_string())?;
        if self.deleted(&job.id).await? {
            self.history
                .delete(&job.id)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Whether the job's live state says it was deleted.
    async fn deleted(&self, job_id: &str) -> Result<bool, String> {
        let entry = self.jobs.entry(job_id).await.map_err(|e| e.to_string())?;
        Ok(entry.is_none_or(|entry| entry.operation != kv::Operation::Put))
    }
}

/// A queued job's place in the queue (1: next to start): the work items
/// not yet taken by a transcoder up to and including its own. Items of jobs
/// canceled while queued still count until a transcoder skips them.
fn queue_position(job: &Job, taken: Option<u64>) -> Option<u64> {
    if job.state != JobState::Queued {
        return None;
    }
    Some(job.work_seq?.saturating_sub(taken?).max(1))
}

/// A fresh job for an upload.
fn new_job(
    id: String,
    owner: &crate::token::Claims,
    format: wire::Format,
    filename: String,
    input_bytes: u64,
) -> Job {
    let now = OffsetDateTime::now_utc();
    Job {
        v: wire::VERSION,
        id,
        owner: owner.sub.clone(),
        owner_email: owner.email.clone(),
        state: JobState::Queued,
        progress: 0.0,
        speed: None,
        eta_seconds: None,
        format,
        options: wire::AudioOptions::default(),
        filename,
        input_bytes,
        upload: None,
        work_seq: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
        attempts: 0,
        retries: 0,
        max_output_bytes: None,
        error: None,
        output: None,
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
            let mut in_flight = JoinSet::new();
            let mut health = ConsumerHealth::new(names::HISTORY_CONSUMER);
            // Chunks of uploads whose process died mid-way, swept now and then.
            let mut sweep = tokio::time::interval(self.orphan_sweep);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = messages.next() => match next {
                        Some(Ok(message)) => {
                            health.ok();
                            self.project(message).await;
                        }
                        Some(Err(err)) => {
                            if let Err(stop) = health.failed(&err, consumer_deleted(&err)) {
                                while in_flight.join_next().await.is_some() {}
                                return Err(stop);
                            }
                        }
                        None => return Err(WorkerError("history consumer ended".to_string())),
                    },
                    _ = sweep.tick() => match self.uploads.sweep_orphans(self.orphan_idle()).await {
                        Ok(0) => {}
                        Ok(purged) => tracing::info!(purged, "purged the chunks of uploads that broke off"),
                        Err(err) => tracing::warn!(error = %err, "cannot sweep broken-off uploads"),
                    },
                    Some((endpoint, request)) = served.requests.next() => {
                        in_flight.spawn(service::serve(self.clone(), request, endpoint));
                    }
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                }
            }
            // Event streams end with the process; answer what was already
            // received before leaving.
            self.closing.cancel();
            while in_flight.join_next().await.is_some() {}
            served.stop().await
        })
    }
}
