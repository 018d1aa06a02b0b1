//! Mailer: one email per finished job to its owner, with the state, the job
//! id and the download link. SMTP when configured, else `.eml` files in the
//! outbox directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, kv, stream::Stream};
use futures::StreamExt;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actors::{ConsumerHealth, Worker, WorkerError, WorkerFuture, consumer_deleted};
use crate::backoff::Backoff;
use crate::config::{MailerSettings, Shared};
use crate::error::{BoxError, chain};
use crate::storage::buckets;
use crate::storage::jetstream::{self as js_setup, SetupError};
use crate::token::links::{LinkKey, LinkKeyError, Links};
use crate::trace_context::TraceContext;
use crate::wire::{self, Job, JobState, Output, names};

#[derive(Debug, thiserror::Error)]
pub enum MailerSetupError {
    #[error(transparent)]
    JetStream(#[from] SetupError),
    #[error("invalid --smtp-url")]
    SmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("invalid --mail-from `{0}`")]
    From(String, #[source] lettre::address::AddressError),
    #[error("cannot create the outbox {0}: {1}")]
    Outbox(PathBuf, std::io::Error),
    #[error(transparent)]
    Links(#[from] LinkKeyError),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    fn label(&self) -> &'static str {
        match self {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        }
    }

    async fn send(&self, message: Message) -> Result<(), BoxError> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(BoxError::from),
            Transport::Outbox(outbox) => outbox
                .send(message)
                .await
                .map(|_| ())
                .map_err(BoxError::from),
        }
    }
}

pub struct Mailer {
    events: Stream,
    sent: kv::Store,
    /// Who each job belongs to, as Ingest recorded it: the only source of
    /// recipients, so an event (which a transcoder writes) cannot choose one.
    owners: kv::Store,
    transport: Transport,
    from: Mailbox,
    public_url: String,
    /// The signed download links the email carries.
    links: Links,
}

impl Mailer {
    pub async fn build(
        shared: &Shared,
        settings: &MailerSettings,
        client: async_nats::Client,
    ) -> Result<Arc<Mailer>, MailerSetupError> {
        let js = js_setup::context(client);
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(MailerSetupError::SmtpUrl)?
                    .timeout(Some(Duration::from_secs(30)))
                    .build(),
            ),
            None => {
                let outbox = shared.data_dir.join("outbox");
                std::fs::create_dir_all(&outbox)
                    .map_err(|e| MailerSetupError::Outbox(outbox.clone(), e))?;
                Transport::Outbox(AsyncFileTransport::<Tokio1Executor>::new(outbox))
            }
        };
        crate::metrics::declare_emails(transport.label());
        let from = settings
            .mail_from
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                MailerSetupError::From(settings.mail_from.clone(), e)
            })?;
        let public_url = shared.public_base_url();
        let key =
            LinkKey::load_or_create(&buckets::links_bucket(&js, shared.replicas).await?).await?;
        Ok(Arc::new(Mailer {
            events: js_setup::events_stream(&js, shared.replicas).await?,
            sent: buckets::mail_bucket(&js, shared.replicas).await?,
            owners: buckets::owners_bucket(&js, shared.replicas).await?,
            transport,
            from,
            links: Links::new(key, &public_url, shared.link_ttl, shared.retention),
            public_url,
        }))
    }

    async fn handle(&self, message: jetstream::Message) {
        let job: Job = match wire::decode(&message.payload) {
            Ok(job) => job,
            Err(err) => {
                tracing::warn!(subject = %message.subject, error = %err, "dropping a malformed job event");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        // Every log line about the email carries the job and its trace.
        let trace = TraceContext::from_nats(message.headers.as_ref());
        let span = tracing::info_span!("mail", job = %job.id, trace_id = %trace.trace_id());
        self.notify(message, job).instrument(span).await;
    }

    /// Sends the email of a job's end, once.
    async fn notify(&self, message: jetstream::Message, job: Job) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        // Only completed and failed jobs are mailed; a job its owner canceled
        // needs no email (the consumer's filter leaves those out already).
        if !matches!(job.state, JobState::Completed | JobState::Failed) {
            let _ = message.ack().await;
            return;
        }
        // An event redelivered after its email went out sends nothing more.
        if let Ok(Some(_)) = self.sent.get(job.id.as_str()).await {
            let _ = message.ack().await;
            return;
        }
        let recipient = match self.owners.get(job.id.as_str()).await {
            Ok(Some(owner)) => wire::decode::<wire::JobOwner>(&owner)
                .map(|owner| owner.email)
                .map_err(BoxError::from),
            Ok(None) => Err("no owner is recorded for the job".into()),
            Err(err) => {
                tracing::warn!(error = %err, "cannot look up the job's owner; retrying");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
                return;
            }
        };
        let email = match recipient.and_then(|to| self.compose(&job, &to)) {
            Ok(email) => email,
            Err(reason) => {
                tracing::warn!(reason = %chain(&*reason), "cannot address the notification; dropping it");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        match self.transport.send(email).await {
            Ok(()) => {
                crate::metrics::email(self.transport.label(), true);
                if let Err(err) = self
                    .sent
                    .put(job.id.as_str(), bytes::Bytes::from_static(b"1"))
                    .await
                {
                    tracing::warn!(error = %err, "cannot record the sent email");
                }
                let _ = message.ack().await;
                tracing::info!("notification sent");
            }
            Err(err) => {
                crate::metrics::email(self.transport.label(), false);
                const RETRIES: Backoff =
                    Backoff::new(Duration::from_secs(2), Duration::from_secs(300));
                let delay = RETRIES.delay(u32::try_from(delivered.saturating_sub(1)).unwrap_or(0));
                tracing::warn!(error = %chain(&*err), ?delay, "cannot send the notification; retrying");
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            }
        }
    }

    fn compose(&self, job: &Job, recipient: &str) -> Result<Message, BoxError> {
        let to: Mailbox = recipient
            .parse()
            .map_err(|e| format!("bad recipient: {e}"))?;
        let status_url = format!("{}/v1/jobs/{}", self.public_url, job.id);
        let (subject, body) = match job.state {
            JobState::Completed => (
                format!("Your audio is ready: {}", job.filename),
                format!(
                    "Hello,\n\nyour file {} has been converted to {}.\n\nJob: {}\nState: completed\n{}\nThe links work without logging in until the audio is removed; anyone you \
                     pass them on to can use them.\nDetails: {}\n\n-- mediajet\n",
                    job.filename,
                    formats(job),
                    job.id,
                    downloads(job, &self.links),
                    status_url,
                ),
            ),
            _ => (
                format!("Conversion failed: {}", job.filename),
                format!(
                    "Hello,\n\nyour file {} could not be converted.\n\nJob: {}\nState: failed\nReason: {}\nDetails: {}\n\n-- mediajet\n",
                    job.filename,
                    job.id,
                    job.error.as_deref().unwrap_or("unknown"),
                    status_url
                ),
            ),
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(BoxError::from)
    }
}

impl Worker for Mailer {
    const NAME: &'static str = "mailer";

    fn run(self: Arc<Self>, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move {
            let consumer = js_setup::events_consumer(
                &self.events,
                names::MAILER_CONSUMER,
                crate::wire::subject::notified_job_events(),
            )
            .await
            .map_err(|e| WorkerError::new("mailer consumer", e))?;
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(10)
                .messages()
                .await
                .map_err(|e| WorkerError::new("mailer consumer", e))?;
            let mut health = ConsumerHealth::new(names::MAILER_CONSUMER);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    next = messages.next() => match next {
                        Some(Ok(message)) => {
                            health.ok();
                            self.handle(message).await;
                        }
                        Some(Err(err)) => {
                            let deleted = consumer_deleted(&err);
                            health.failed(err, deleted)?
                        }
                        None => return Err(WorkerError::ended("the mailer consumer")),
                    },
                }
            }
        })
    }
}

/// The formats a job made, in words: `mp3`, `mp3 and flac`.
fn formats(job: &Job) -> String {
    let names: Vec<&str> = job.specs().map(|spec| spec.format.extension()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The download lines of a completed job's email, with signed links: one
/// for a job with one output, one per output for several.
fn downloads(job: &Job, links: &Links) -> String {
    let link = |n| links.url(job, n, None).unwrap_or_default();
    let results: Vec<_> = job.results().collect();
    // A split output is a zip of its tracks.
    let tracks = |output: &Output| match output.tracks.len() {
        0 => String::new(),
        n => format!(", a zip of {n} tracks and a playlist"),
    };
    if results.len() <= 1 {
        let tracks = results
            .first()
            .map(|output| tracks(output))
            .unwrap_or_default();
        return match tracks.strip_prefix(", ") {
            None => format!("Download: {}\n", link(0)),
            Some(tracks) => format!("Download ({tracks}): {}\n", link(0)),
        };
    }
    let mut lines = String::from("Downloads:\n");
    for (n, output) in results.iter().enumerate() {
        let mb = output.bytes as f64 / 1_000_000.0;
        lines.push_str(&format!(
            "  {} ({mb:.1} MB{}): {}\n",
            output.filename,
            tracks(output),
            link(n)
        ));
    }
    lines
}
