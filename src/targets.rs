//! Where the service connects on a user's behalf (webhook receivers, the
//! `notify_url` of jobs, URLs imported): only to public addresses, unless
//! the operator allows private ones (all with `--allow-private-targets`,
//! or some with `--allow-target-networks`), so that a user cannot make it
//! reach into the network it runs in. A name is
//! resolved once and the connection made to the very address that was
//! checked, so a name that changes its answer between check and use gains
//! nothing; every redirect is checked the same way ([`follow`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use reqwest::Url;

use crate::domain::Network;

/// Longest URL taken.
pub const MAX_URL: usize = 2048;
/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the URL is not an http or https URL with a host, at most {MAX_URL} bytes")]
    Malformed,
    #[error("the URL may not carry a user name or password")]
    Credentials,
    #[error("{0} is not a public address")]
    Private(IpAddr),
    #[error("the host's name does not resolve")]
    Unresolved(#[source] std::io::Error),
}

/// Which addresses besides public ones may be reached.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Any address at all.
    pub any: bool,
    /// Addresses in these networks.
    pub networks: Vec<Network>,
}

impl Policy {
    fn allowed(&self, ip: IpAddr) -> Result<(), TargetError> {
        match self.any || is_public(ip) || self.networks.iter().any(|net| net.contains(ip)) {
            true => Ok(()),
            false => Err(TargetError::Private(ip)),
        }
    }
}

/// A URL a user gave, if it can be a target at all.
pub fn parse(text: &str) -> Result<Url, TargetError> {
    if text.len() > MAX_URL {
        return Err(TargetError::Malformed);
    }
    let url = Url::parse(text).map_err(|_| TargetError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(TargetError::Malformed);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    Ok(url)
}

/// Refuses a URL whose host is a private address written out, as soon as
/// it is given (a name is checked when it is resolved).
pub fn check_literal(url: &Url, policy: &Policy) -> Result<(), TargetError> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    policy.allowed(ip)
}

/// The address to connect to for `url`: the first its host resolves to,
/// once every one it resolves to is allowed.
pub async fn resolve(url: &Url, policy: &Policy) -> Result<SocketAddr, TargetError> {
    let host = url.host_str().ok_or(TargetError::Malformed)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().ok_or(TargetError::Malformed)?;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(TargetError::Unresolved)?
        .collect();
    for address in &addresses {
        policy.allowed(address.ip())?;
    }
    addresses
        .first()
        .copied()
        .ok_or_else(|| TargetError::Unresolved(std::io::Error::other("the name has no address")))
}

/// Why a request to a target got no answer to use.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("cannot make an HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("timed out")]
    Timeout(#[source] reqwest::Error),
    #[error("no answer: {}", crate::error::chain(.0))]
    NoAnswer(#[source] reqwest::Error),
    #[error("a redirect ({0}) without a usable Location")]
    BadRedirect(u16),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

/// Sends the request `request` makes for `url`, and again for each redirect
/// (at most [`MAX_REDIRECTS`]), every address checked before it is
/// connected to; returns the first answer that is no redirect, and the URL
/// that gave it. `client` is the builder each hop's client starts from
/// (timeouts, user agent).
pub async fn follow(
    mut url: Url,
    policy: &Policy,
    client: impl Fn() -> reqwest::ClientBuilder,
    request: impl Fn(&reqwest::Client, Url) -> reqwest::RequestBuilder,
) -> Result<(Url, reqwest::Response), FollowError> {
    for _ in 0..=MAX_REDIRECTS {
        let address = resolve(&url, policy).await?;
        let host = url.host_str().ok_or(TargetError::Malformed)?.to_string();
        let hop = client()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, address)
            .build()
            .map_err(FollowError::Client)?;
        let response = request(&hop, url.clone())
            .send()
            .await
            // The URL stays out of the message: it may carry a secret
            // (a presigned query), and the message goes to logs.
            .map_err(|err| match err.is_timeout() {
                true => FollowError::Timeout(err.without_url()),
                false => FollowError::NoAnswer(err.without_url()),
            })?;
        let status = response.status();
        if !status.is_redirection() {
            return Ok((url, response));
        }
        url = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .and_then(|next| parse(next.as_str()).ok())
            .ok_or(FollowError::BadRedirect(status.as_u16()))?;
    }
    Err(FollowError::TooManyRedirects)
}

/// Whether `ip` is reachable on the public internet: not loopback,
/// private, link-local (cloud metadata lives there), shared, multicast,
/// documentation or otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_public_v4(mapped),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Protocol assignments and benchmarking, 192.0.0.0/24, 198.18.0.0/15.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_targets() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public(ip), "{private}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn only_http_urls_with_a_host_and_no_credentials_are_taken() {
        assert!(parse("https://example.com/hook").is_ok());
        for bad in [
            "file:///etc/passwd",
            "gopher://example.com/",
            "ftp://example.com/",
            "http://",
            "not a url",
        ] {
            assert!(matches!(parse(bad), Err(TargetError::Malformed)), "{bad}");
        }
        assert!(matches!(
            parse("https://user:pass@example.com/"),
            Err(TargetError::Credentials)
        ));
        let literal = parse("http://169.254.169.254/latest").unwrap();
        assert!(check_literal(&literal, &Policy::default()).is_err());
        let any = Policy {
            any: true,
            networks: Vec::new(),
        };
        assert!(check_literal(&literal, &any).is_ok());
        let some = Policy {
            any: false,
            networks: vec![crate::domain::parse_network("169.254.0.0/16").unwrap()],
        };
        assert!(check_literal(&literal, &some).is_ok());
        let other = parse("http://10.0.0.1/").unwrap();
        assert!(check_literal(&other, &some).is_err());
    }
}
