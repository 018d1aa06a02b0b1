//! Who the client is: the connection's address, or, behind a reverse proxy
//! the operator trusts, the address the proxy says it forwards for. Login
//! throttling counts by this address.

use std::net::IpAddr;

use axum::http::HeaderMap;

pub use crate::domain::{Network, parse_network};

/// Longest `X-Forwarded-For` looked at; a longer one is ignored.
const MAX_FORWARDED: usize = 1024;

/// The client's address: `peer`, unless `peer` is a trusted proxy, in
/// which case the right-most address in `X-Forwarded-For` that is not a
/// trusted proxy itself (addresses further left were written by the client
/// and prove nothing).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Network]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if forwarded.len() > MAX_FORWARDED {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) if is_trusted(address) => client = address,
            Ok(address) => return address,
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    #[test]
    fn only_a_trusted_proxy_may_name_the_client() {
        let trusted = [
            parse_network("10.0.0.0/8").unwrap(),
            parse_network("::1").unwrap(),
        ];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        let spoofed = headers("203.0.113.9, 192.0.2.1");
        assert_eq!(client_address(stranger, &spoofed, &trusted), stranger);
        assert_eq!(
            client_address(proxy, &spoofed, &trusted),
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "the right-most untrusted hop"
        );
        let through_two = headers("192.0.2.1, 10.9.9.9");
        assert_eq!(
            client_address(proxy, &through_two, &trusted),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_address(proxy, &headers("garbage"), &trusted), proxy);
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("nonsense").is_err());
        assert!(parse_network("0.0.0.0/0").unwrap().contains(stranger));
    }
}
