//! Mailer: one email per finished job to its owner, unless they asked for
//! fewer (`mediajet_notify`), with the state, the job and signed download
//! links (`compose.rs`). SMTP when configured, else `.eml` files in the
//! outbox directory. Beside the email, the webhook deliveries Ingest
//! queues (`webhooks.rs`).

mod compose;
mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, kv, stream::Stream};
use futures::StreamExt;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
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
use crate::wire::{self, Job, JobState, NotifySetting, names};
use compose::Composer;

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
    /// `.eml` files in this directory.
    Outbox(PathBuf),
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
            Transport::Outbox(dir) => {
                // Written aside and renamed into place, so that whatever
                // watches the outbox sees only whole emails.
                let name = uuid::Uuid::now_v7();
                let partial = dir.join(format!(".{name}.partial"));
                tokio::fs::write(&partial, message.formatted()).await?;
                tokio::fs::rename(&partial, dir.join(format!("{name}.eml"))).await?;
                Ok(())
            }
        }
    }
}

pub struct Mailer {
    events: Stream,
    sent: kv::Store,
    /// Who each job belongs to, as Ingest recorded it: the only source of
    /// recipients, so an event (which a transcoder writes) cannot choose one.
    owners: kv::Store,
    /// Which emails each user wants.
    notify: kv::Store,
    transport: Transport,
    from: Mailbox,
    public_url: String,
    /// The signed download links the email carries.
    links: Links,
    /// Webhook deliveries, worked off beside the email.
    webhooks: Arc<webhooks::Deliverer>,
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
                Transport::Outbox(outbox)
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
            notify: buckets::notify_bucket(&js, shared.replicas).await?,
            transport,
            from,
            links: Links::new(key, &public_url, shared.link_ttl, shared.retention),
            webhooks: Arc::new(webhooks::Deliverer {
                webhooks: buckets::webhooks_bucket(&js, shared.replicas).await?,
                deliveries: buckets::deliveries_bucket(&js, shared.replicas).await?,
                stream: js_setup::webhooks_stream(&js, shared.replicas).await?,
                targets: shared.target_policy(),
            }),
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
        let owner = match self.owners.get(job.id.as_str()).await {
            Ok(Some(owner)) => wire::decode::<wire::JobOwner>(&owner).map_err(BoxError::from),
            Ok(None) => Err("no owner is recorded for the job".into()),
            Err(err) => {
                tracing::warn!(error = %err, "cannot look up the job's owner; retrying");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
                return;
            }
        };
        // The owner's setting: a failure to read it is a reason to wait,
        // not to mail someone who asked for no mail.
        if let Ok(owner) = &owner {
            match self.notify.get(&owner.owner).await {
                Ok(setting) => {
                    let wanted = setting
                        .and_then(|s| wire::decode::<NotifySetting>(&s).ok())
                        .map(|setting| setting.notify)
                        .unwrap_or_default();
                    if !wanted.wants(job.state == JobState::Completed) {
                        tracing::info!("the owner wants no email of this");
                        let _ = message.ack().await;
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the owner's setting; retrying");
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                        .await;
                    return;
                }
            }
        }
        let composer = Composer {
            from: &self.from,
            links: &self.links,
            public_url: &self.public_url,
        };
        let email = owner.and_then(|owner| composer.compose(&job, &owner.owner, &owner.email));
        let email = match email {
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
            // Webhooks go out beside the email, on tasks of their own.
            let mut delivering = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                self.webhooks.clone().run(shutdown.clone()),
            ));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = (&mut delivering).await;
                        return Ok(());
                    }
                    done = &mut delivering => return match done {
                        Ok(outcome) => outcome,
                        Err(err) => Err(WorkerError::new("webhook deliveries", err)),
                    },
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
