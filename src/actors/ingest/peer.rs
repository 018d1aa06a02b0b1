//! Who the client is: the connection's address, or, behind a reverse proxy
//! the operator trusts, the address the proxy says it forwards for. Login
//! throttling counts by this address.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address or a network (`192.0.2.0/24`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Parses `address` or `address/prefix`.
pub fn parse_network(text: &str) -> Result<Network, String> {
    let text = text.trim();
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address or network"))?;
    let most = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => most,
        Some(prefix) => prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= most)
            .ok_or_else(|| format!("`{text}` has a bad prefix length"))?,
    };
    Ok(Network { address, prefix })
}

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
