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

use crate::actors::{ConsumerHealth, Worker, WorkerError, WorkerFuture, consumer_deleted};
use crate::config::Config;
use crate::storage::jetstream::{self as js_setup, SetupError};
use crate::wire::{self, Job, JobState, names};

#[derive(Debug, thiserror::Error)]
pub enum MailerSetupError {
    #[error(transparent)]
    JetStream(#[from] SetupError),
    #[error("invalid --smtp-url: {0}")]
    SmtpUrl(String),
    #[error("invalid --mail-from `{0}`: {1}")]
    From(String, String),
    #[error("cannot create the outbox {0}: {1}")]
    Outbox(PathBuf, std::io::Error),
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

    async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Transport::Outbox(outbox) => outbox
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
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
}

impl Mailer {
    pub async fn build(
        config: &Config,
        client: async_nats::Client,
    ) -> Result<Arc<Mailer>, MailerSetupError> {
        let js = js_setup::context(client);
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailerSetupError::SmtpUrl(e.to_string()))?
                    .timeout(Some(Duration::from_secs(30)))
                    .build(),
            ),
            None => {
                let outbox = config.data_dir.join("outbox");
                std::fs::create_dir_all(&outbox)
                    .map_err(|e| MailerSetupError::Outbox(outbox.clone(), e))?;
                Transport::Outbox(AsyncFileTransport::<Tokio1Executor>::new(outbox))
            }
        };
        let from = config
            .mail_from
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                MailerSetupError::From(config.mail_from.clone(), e.to_string())
            })?;
        Ok(Arc::new(Mailer {
            events: js_setup::events_stream(&js, config.replicas).await?,
            sent: js_setup::mail_bucket(&js, config.replicas).await?,
            owners: js_setup::owners_bucket(&js, config.replicas).await?,
            transport,
            from,
            public_url: config.public_base_url(),
        }))
    }

    async fn handle(&self, message: jetstream::Message) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let job: Job = match wire::decode(&message.payload) {
            Ok(job) => job,
            Err(err) => {
                tracing::warn!(subject = %message.subject, error = %err, "dropping a malformed job event");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
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
                .map_err(|e| e.to_string()),
            Ok(None) => Err("no owner is recorded for the job".to_string()),
            Err(err) => {
                tracing::warn!(job = %job.id, error = %err, "cannot look up the job's owner; retrying");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
                return;
            }
        };
        let email = match recipient.and_then(|to| self.compose(&job, &to)) {
            Ok(email) => email,
            Err(reason) => {
                tracing::warn!(job = %job.id, reason, "cannot address the notification; dropping it");
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
                    tracing::warn!(job = %job.id, error = %err, "cannot record the sent email");
                }
                let _ = message.ack().await;
                tracing::info!(job = %job.id, "notification sent");
            }
            Err(err) => {
                crate::metrics::email(self.transport.label(), false);
                let delay = Duration::from_secs(
                    2u64.pow(u32::try_from(delivered.clamp(1, 8)).unwrap_or(1))
                        .min(300),
                );
                tracing::warn!(job = %job.id, error = %err, ?delay, "cannot send the notification; retrying");
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            }
        }
    }

    fn compose(&self, job: &Job, recipient: &str) -> Result<Message, String> {
        let to: Mailbox = recipient
            .parse()
            .map_err(|e| format!("bad recipient: {e}"))?;
        let status_url = format!("{}/v1/jobs/{}", self.public_url, job.id);
        let (subject, body) = match job.state {
            JobState::Completed => (
                format!("Your audio is ready: {}", job.filename),
                format!(
                    "Hello,\n\nyour file {} has been converted to {}.\n\nJob: {}\nState: completed\nDownload: {}/output\n\nThe download needs your login.\n\n-- mediajet\n",
                    job.filename,
                    job.format.extension(),
                    job.id,
                    status_url
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
            .map_err(|e| e.to_string())
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
                        Some(Err(err)) => health.failed(&err, consumer_deleted(&err))?,
                        None => return Err(WorkerError("mailer consumer ended".to_string())),
                    },
                }
            }
        })
    }
}
