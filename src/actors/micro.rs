//! The NATS micro services actors serve (`$SRV` discoverable): started with
//! a group of endpoints whose requests arrive as one stream, and stopped once
//! the requests already received are answered.

use std::time::Duration;

use async_nats::service::{Request, Service, ServiceExt};
use futures::stream::{BoxStream, StreamExt};

use super::WorkerError;

/// A running micro service and the requests to all of its endpoints,
/// each with the name of the endpoint it came to.
pub struct Served {
    service: Service,
    pub requests: BoxStream<'static, (&'static str, Request)>,
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
    })
}

impl Served {
    /// Unsubscribes the service. A NATS that is gone has nothing left to
    /// unsubscribe from, so giving up after five seconds is no failure.
    pub async fn stop(self) -> Result<(), WorkerError> {
        match tokio::time::timeout(Duration::from_secs(5), self.service.stop()).await {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(err)) => Err(WorkerError::new("cannot stop a service", err)),
        }
    }
}
