//! JetStream resources. Each actor ensures only the resources it uses, which
//! keeps the NATS permissions an actor needs as small as its work.

use std::time::Duration;

use async_nats::jetstream::{
    self, Context,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    stream::{self, RetentionPolicy, StorageType, Stream},
};

use crate::error::BoxError;
use crate::trace_context::{TRACEPARENT, TraceContext};
use crate::wire::{names, subject};

/// A JetStream resource could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up JetStream {kind} `{name}`")]
pub struct SetupError {
    kind: &'static str,
    name: String,
    #[source]
    source: BoxError,
}

impl SetupError {
    pub(crate) fn new(kind: &'static str, name: &str, err: impl Into<BoxError>) -> Self {
        SetupError {
            kind,
            name: name.to_string(),
            source: err.into(),
        }
    }
}

/// How long a transcoder may stay silent before its work item is redelivered.
/// Transcoders send progress acks at a third of this while encoding.
pub const WORK_ACK_WAIT: Duration = Duration::from_secs(30);
/// Attempts of one job that may fail for a reason on our side (NATS, disk,
/// a crashed tool) before the job fails and its work item is dead-lettered.
/// Counted in the job, not in deliveries: a work item handed back by a
/// transcoder that is stopping is delivered again as often as that happens,
/// and JetStream's own delivery limit would otherwise strand it, never
/// delivered again and its job never ended.
pub const WORK_MAX_RETRIES: u32 = 5;
/// The window in which JetStream drops a message whose id it has seen.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

async fn ensure_stream(js: &Context, config: stream::Config) -> Result<Stream, SetupError> {
    let name = config.name.clone();
    js.get_or_create_stream(config)
        .await
        .map_err(|err| SetupError::new("stream", &name, err))
}

/// The work-queue stream transcoders pull from: each item is delivered to one
/// transcoder and removed once acknowledged.
pub async fn work_stream(js: &Context, replicas: usize) -> Result<Stream, SetupError> {
    ensure_stream(
        js,
        stream::Config {
            name: names::WORK_STREAM.to_string(),
            subjects: vec![subject::WORK_TRANSCODE.to_string()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        },
    )
    .await
}

/// A work queue on `subject`: each item removed once acknowledged; an item
/// queued twice under one message id is dropped.
async fn work_queue(
    js: &Context,
    name: &str,
    subject: &str,
    replicas: usize,
) -> Result<Stream, SetupError> {
    ensure_stream(
        js,
        stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        },
    )
    .await
}

/// A work queue's consumer, shared by every process of the actor that
/// works it off; `max_deliver` -1 is no limit.
async fn work_queue_consumer(
    stream: &Stream,
    durable: &'static str,
    description: &str,
    max_deliver: i64,
) -> Result<PullConsumer, SetupError> {
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_string()),
            description: Some(description.to_string()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            max_deliver,
            max_ack_pending: 1000,
            ..Default::default()
        })
        .await
        .map_err(|err| SetupError::new("consumer", durable, err))
}

/// Imports to make (jobs whose input is a URL): a work queue Ingest both
/// fills and works off, each item removed once its input is stored (or the
/// job failed).
pub async fn imports_stream(js: &Context, replicas: usize) -> Result<Stream, SetupError> {
    work_queue(js, names::IMPORTS_STREAM, subject::WORK_IMPORT, replicas).await
}

/// Deliveries of one import: its job fails at the last.
pub const IMPORT_MAX_DELIVERIES: i64 = 5;

/// Ingest's consumer of imports. A fetch under way keeps its item with
/// progress acknowledgements, so the wait need only outlast a pause; an
/// import that keeps failing on the service's side fails its job at its
/// last delivery.
pub async fn importers_consumer(stream: &Stream) -> Result<PullConsumer, SetupError> {
    let durable = names::IMPORTERS_CONSUMER;
    let description = "URL imports, shared by every Ingest";
    work_queue_consumer(stream, durable, description, IMPORT_MAX_DELIVERIES).await
}

/// Webhook deliveries to make: a work queue, each item removed once it is
/// delivered or given up on. A delivery queued twice for the same event
/// and endpoint (a redelivered job event) is dropped by its message id.
pub async fn webhooks_stream(js: &Context, replicas: usize) -> Result<Stream, SetupError> {
    work_queue(
        js,
        names::WEBHOOKS_STREAM,
        subject::WEBHOOK_DELIVER,
        replicas,
    )
    .await
}

/// Mailer's consumer of webhook deliveries: many at once, so one slow
/// receiver holds up none of the others; longer to acknowledge than a
/// delivery's attempt may take. Its retries are counted by the deliveries.
pub async fn webhook_deliveries_consumer(stream: &Stream) -> Result<PullConsumer, SetupError> {
    let durable = names::WEBHOOK_DELIVERY_CONSUMER;
    work_queue_consumer(stream, durable, "webhook deliveries", -1).await
}

/// The job event stream (`mediajet.events.job.<id>.<state>`), kept a week.
pub async fn events_stream(js: &Context, replicas: usize) -> Result<Stream, SetupError> {
    ensure_stream(
        js,
        stream::Config {
            name: names::EVENTS_STREAM.to_string(),
            subjects: vec![subject::JOB_EVENTS.to_string()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        },
    )
    .await
}

/// Work items that failed for good, kept a month for an operator to inspect.
pub async fn dead_letter_stream(js: &Context, replicas: usize) -> Result<Stream, SetupError> {
    ensure_stream(
        js,
        stream::Config {
            name: names::DEAD_STREAM.to_string(),
            subjects: vec![subject::DEAD_TRANSCODE.to_string()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age: Duration::from_secs(30 * 24 * 3600),
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await
}

/// The durable pull consumer shared by every transcoder.
pub async fn transcoders_consumer(stream: &Stream) -> Result<PullConsumer, SetupError> {
    stream
        .create_consumer(pull::Config {
            durable_name: Some(names::TRANSCODERS_CONSUMER.to_string()),
            description: Some("transcode work, shared by all transcoders".to_string()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: WORK_ACK_WAIT,
            // Unlimited: see WORK_MAX_RETRIES.
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .map_err(|err| SetupError::new("consumer", names::TRANSCODERS_CONSUMER, err))
}

/// A durable consumer of job events matching `filter` (Mailer, history
/// projector).
pub async fn events_consumer(
    stream: &Stream,
    durable: &'static str,
    filter: Vec<String>,
) -> Result<PullConsumer, SetupError> {
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_string()),
            description: Some(format!("job events for {durable}")),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            filter_subjects: filter,
            ..Default::default()
        })
        .await
        .map_err(|err| SetupError::new("consumer", durable, err))
}

/// How a process authenticates to NATS.
#[derive(Debug, Clone, Default)]
pub enum NatsAuth {
    #[default]
    None,
    UserPassword(String, String),
    CredsFile(std::path::PathBuf),
}

/// Connects to NATS. Once connected, the client reconnects on its own for as
/// long as the process lives; a first connection that fails is an error, so a
/// misconfigured process stops at once instead of waiting silently.
pub async fn connect(
    urls: &str,
    name: &str,
    auth: &NatsAuth,
    inbox_prefix: &str,
    tls_ca: Option<&std::path::Path>,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let options = match auth {
        NatsAuth::None => async_nats::ConnectOptions::new(),
        NatsAuth::UserPassword(user, password) => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        NatsAuth::CredsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| {
                async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Io, e)
            })?,
    };
    let servers = server_addrs(urls).map_err(|e| {
        async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::ServerParse, e)
    })?;
    // With a CA, the connection must be TLS and the server's certificate
    // must chain to it.
    let options = match tls_ca {
        Some(ca) => options
            .add_root_certificates(ca.to_path_buf())
            .require_tls(true),
        None => options,
    };
    options
        .name(name)
        .custom_inbox_prefix(inbox_prefix)
        .connection_timeout(Duration::from_secs(5))
        .connect(servers)
        .await
}

/// Parses a comma-separated list of NATS URLs (the client itself takes only
/// one URL per string).
pub fn server_addrs(urls: &str) -> Result<Vec<async_nats::ServerAddr>, std::io::Error> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<async_nats::ServerAddr>, _>>()?;
    if servers.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no NATS server URL given",
        ));
    }
    Ok(servers)
}

/// JetStream context with a request timeout generous enough for R3 writes.
pub fn context(client: async_nats::Client) -> Context {
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(10));
    js
}

/// Publishes a job's state as an event on `mediajet.events.job.<id>.<state>`.
/// The message id makes a repeated publish of the same transition (a retry
/// after a crash) a no-op within the duplicate window. The event carries the
/// next hop of the job's trace.
pub async fn publish_job_event(
    js: &Context,
    job: &crate::wire::Job,
    trace: &TraceContext,
) -> Result<(), jetstream::context::PublishError> {
    let publish = jetstream::message::PublishMessage::build()
        .payload(crate::wire::encode(job))
        .message_id(format!("{}.{}", job.id, job.state.as_str()))
        .header(TRACEPARENT, trace.child().header().as_str());
    match js
        .send_publish(subject::job_event(job.id.as_str(), job.state), publish)
        .await
    {
        Ok(ack) => ack.await.map(|_| ()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_nats_urls_are_split_on_commas() {
        let servers = server_addrs("nats://a:4222, nats://b:4223,").unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].port(), 4223);
        assert!(server_addrs(" , ").is_err());
        assert!(server_addrs("nats://a:notaport").is_err());
    }
}
