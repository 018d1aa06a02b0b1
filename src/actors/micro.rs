//! The NATS micro services actors serve (`$SRV` discoverable): started with
//! a group of endpoints whose requests arrive as one stream, and stopped once
//! the requests already received are answered.

use std::future::Future;

use async_nats::service::{Request, Service, ServiceExt};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use tokio::task::JoinSet;

use super::WorkerError;
use crate::trace_context::TraceContext;

/// A running micro service: the requests to all of its endpoints, each with
/// the name of the endpoint it came to, and the answers being given.
pub struct Served {
    service: Service,
    requests: BoxStream<'static, (&'static str, Request)>,
    answering: JoinSet<()>,
}

/// Starts service `name` with `endpoints` in subject group `group`.
pub async fn start(
    client: &async_nats::Client,
    name: &str,
    description: &str,
    group: &str,
    endpoints: &[&'static str],
) -> Result<Served, WorkerError> {
    let service = client
        .service_builder()
        .description(description)
        .start(name, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| WorkerError::new(&format!("cannot start the {name} service"), e))?;
    let group = service.group(group);
    let mut streams = Vec::new();
    for &endpoint in endpoints {
        let requests = group
            .endpoint(endpoint)
            .await
            .map_err(|e| WorkerError::new(&format!("cannot add the {endpoint} endpoint"), e))?;
        streams.push(requests.map(move |request| (endpoint, request)).boxed());
    }
    Ok(Served {
        service,
        requests: futures::stream::select_all(streams).boxed(),
        answering: JoinSet::new(),
    })
}

impl Served {
    /// The next request and the endpoint it came to, while the answers
    /// already started go on; `None` once the subscriptions have ended.
    pub async fn next(&mut self) -> Option<(&'static str, Request)> {
        loop {
            tokio::select! {
                next = self.requests.next() => return next,
                Some(_) = self.answering.join_next(), if !self.answering.is_empty() => {}
            }
        }
    }

    /// Answers a request in a task of its own.
    pub fn answer(&mut self, answer: impl Future<Output = ()> + Send + 'static) {
        self.answering.spawn(answer);
    }

    /// Finishes the answers already started, then unsubscribes the
    /// service. A NATS that is gone has nothing left to unsubscribe from,
    /// so giving up after `SERVICE_STOP` is no failure.
    pub async fn stop(mut self) -> Result<(), WorkerError> {
        while self.answering.join_next().await.is_some() {}
        match tokio::time::timeout(crate::shutdown::SERVICE_STOP, self.service.stop()).await {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(err)) => Err(WorkerError::new("cannot stop a service", err)),
        }
    }
}

/// The span a request to `endpoint` is answered in, and the trace it
/// belongs to: the one its `traceparent` header names, or a new one. The
/// span's `job` is filled in once the request names or makes a job.
pub fn request_span(endpoint: &str, request: &Request) -> (tracing::Span, TraceContext) {
    let trace = TraceContext::from_nats(request.message.headers.as_ref());
    let span = tracing::info_span!(
        "nats",
        endpoint,
        trace_id = %trace.trace_id(),
        job = tracing::field::Empty,
    );
    (span, trace)
}

/// A request's failure, as a micro service answers it.
pub trait ServiceError: std::fmt::Display {
    /// The HTTP-like status and the stable code of the error reply.
    fn status_and_code(&self) -> (u16, &str);

    /// Logs the failure when it is the service's, not the caller's.
    fn log(&self, endpoint: &str);
}

/// Answers `request` to `actor`'s `endpoint` with `result`: the reply body,
/// or an error reply (`Nats-Service-Error-Code` header and a JSON
/// `{"error": …}` body).
pub async fn respond<E: ServiceError>(
    actor: &'static str,
    request: Request,
    endpoint: &str,
    result: Result<Bytes, E>,
) {
    let sent = match result {
        Ok(body) => {
            crate::metrics::nats_request(actor, endpoint, 200);
            request.respond(Ok(body)).await
        }
        Err(err) => {
            err.log(endpoint);
            let (status, code) = err.status_and_code();
            crate::metrics::nats_request(actor, endpoint, status);
            let (headers, body) = crate::wire::error_reply(status, code, &err.to_string());
            request.respond_with_headers(Ok(body), headers).await
        }
    };
    if let Err(err) = sent {
        tracing::warn!(endpoint, error = %err, "cannot send a reply");
    }
}
