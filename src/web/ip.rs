//! The client IP for throttling, network filtering and the audit log.
//!
//! The peer address is the client unless the peer is one of `[server] trusted_proxies`. Then
//! `X-Forwarded-For` is walked **from the right**: each proxy appends the address it received
//! the request from, so the rightmost hops are written by proxies we trust and everything to
//! the left of the first untrusted hop was written by the client and proves nothing.

use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::config::Network;

/// `[server] trusted_proxies`, for the extractors below: any state that can lend it
/// (`FromRef`) gets [`ClientIp`] and [`ClientAddr`].
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<[Network]>);

/// Hops walked at most: more would only come from a client padding the header.
const MAX_HOPS: usize = 32;

/// The client IP as text (the audit log's form). See [`ClientAddr`] for the address itself.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// The client IP after `trusted_proxies`; `None` when the connection's peer is unknown (a
/// server driven without connection info, as in unit tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn from_parts(parts: &Parts, trusted_proxies: &[Network]) -> ClientAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip());
        ClientAddr(peer.map(|peer| client_ip(peer, &parts.headers, trusted_proxies)))
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

impl<S> FromRequestParts<S> for ClientAddr
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let proxies = TrustedProxies::from_ref(state);
        Ok(ClientAddr::from_parts(parts, &proxies.0))
    }
}

impl<S> FromRequestParts<S> for ClientIp
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let addr = ClientAddr::from_request_parts(parts, state).await?;
        Ok(ClientIp(addr.to_string()))
    }
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a dual-stack socket reports) is the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

pub(super) fn trusted(ip: IpAddr, proxies: &[Network]) -> bool {
    proxies.iter().any(|n| n.contains(ip))
}

/// One `X-Forwarded-For` entry: an IPv4 or IPv6 address, IPv6 optionally in brackets. Ports,
/// `unknown`, obfuscated identifiers and anything else are malformed.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    let ip: IpAddr = bare.parse().ok()?;
    // Brackets belong to IPv6 only.
    if bare.len() != entry.len() && ip.is_ipv4() {
        return None;
    }
    Some(canonical(ip))
}

/// The client of a request that reached us from `peer` with these headers.
///
/// All `X-Forwarded-For` header lines count, in order, as one comma-separated list (RFC 9110
/// §5.3). A malformed entry, or a non-ASCII header, stops the walk at the last trusted hop:
/// what lies beyond it cannot be told apart from a value the client made up.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[Network]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, trusted_proxies) {
        return peer;
    }
    let mut lines = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(text) => lines.push(text),
            Err(_) => return peer,
        }
    }
    let mut current = peer;
    let hops = lines.iter().rev().flat_map(|line| line.rsplit(','));
    for (walked, entry) in hops.enumerate() {
        if walked >= MAX_HOPS {
            break;
        }
        let Some(hop) = parse_hop(entry) else {
            break;
        };
        if !trusted(hop, trusted_proxies) {
            return hop;
        }
        current = hop;
    }
    current
}

/// The throttle's network key: an IPv4 address, or the /64 an IPv6 address belongs to (one
/// subscriber's allocation; counting single IPv6 addresses would be free to evade).
pub fn network_key(ip: IpAddr) -> ipnet::IpNet {
    match canonical(ip) {
        IpAddr::V4(v4) => ipnet::IpNet::V4(ipnet::Ipv4Net::from(v4)),
        IpAddr::V6(v6) => ipnet::IpNet::V6(
            ipnet::Ipv6Net::new(v6, 64)
                .map(|n| n.trunc())
                .unwrap_or_else(|_| ipnet::Ipv6Net::from(v6)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let h = headers(&["203.0.113.9"]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        // Nor from a peer that is not a listed proxy.
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &proxies),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_wins_over_spoofed_leftmost_values() {
        let proxies = nets(&["10.0.0.0/8"]);
        // The client sent "1.2.3.4"; our proxy appended the address it saw.
        let h = headers(&["1.2.3.4, 198.51.100.7"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.7"));
        // Two proxies of ours in a row are skipped.
        let h = headers(&["6.6.6.6, 198.51.100.7, 10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.7"));
        // Whatever the client puts on the left, the answer does not move.
        for spoof in ["127.0.0.1", "10.9.9.9", "203.0.113.1, 203.0.113.2", "::1"] {
            let h = headers(&[&format!("{spoof}, 198.51.100.7")]);
            assert_eq!(
                client_ip(ip("10.0.0.2"), &h, &proxies),
                ip("198.51.100.7"),
                "{spoof}"
            );
        }
    }

    #[test]
    fn several_header_lines_are_one_list_in_order() {
        let proxies = nets(&["10.0.0.0/8"]);
        let h = headers(&["6.6.6.6", "198.51.100.7", "10.2.2.2"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.7"));
        let h = headers(&["6.6.6.6, 7.7.7.7", "10.2.2.2, 10.3.3.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("7.7.7.7"));
    }

    #[test]
    fn only_proxies_in_the_header_means_the_leftmost_proxy() {
        let proxies = nets(&["10.0.0.0/8"]);
        let h = headers(&["10.5.5.5, 10.6.6.6"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("10.5.5.5"));
        // No header at all: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let proxies = nets(&["10.0.0.0/8"]);
        for bad in [
            "198.51.100.7, garbage",
            "198.51.100.7, unknown",
            "198.51.100.7, 203.0.113.5:443",
            "198.51.100.7, ",
            "198.51.100.7,,",
            "198.51.100.7, [203.0.113.5]",
            "198.51.100.7, _hidden",
            "198.51.100.7, 999.1.1.1",
        ] {
            assert_eq!(
                client_ip(ip("10.0.0.2"), &headers(&[bad]), &proxies),
                ip("10.0.0.2"),
                "{bad}"
            );
        }
        // Garbage further left than the first untrusted hop does not matter.
        let h = headers(&["garbage, 198.51.100.7, 10.3.3.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.7"));
        // Garbage right after a trusted hop: that hop is the answer.
        let h = headers(&["198.51.100.7, nonsense, 10.3.3.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("10.3.3.3"));
    }

    #[test]
    fn a_non_ascii_header_is_not_believed() {
        let proxies = nets(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.7, \xff").unwrap(),
        );
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_and_mapped_ipv4() {
        let proxies = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // A dual-stack socket reports the IPv4 proxy as ::ffff:10.0.0.2.
        let h = headers(&["2001:db8:1::5"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &h, &proxies),
            ip("2001:db8:1::5")
        );
        let h = headers(&["[2001:db8:1::5], 2001:db8:ffff::1"]);
        assert_eq!(
            client_ip(ip("2001:db8:ffff::9"), &h, &proxies),
            ip("2001:db8:1::5")
        );
        // A mapped client address is reported as IPv4; a mapped proxy address is trusted.
        let h = headers(&["::ffff:198.51.100.7, ::ffff:10.3.3.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.7"));
        // Without a header, a mapped peer is its IPv4 form.
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.1"), &HeaderMap::new(), &[]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_padded_header_stops_after_max_hops() {
        let proxies = nets(&["10.0.0.0/8"]);
        let mut list = vec!["198.51.100.7".to_string()];
        list.extend((0..100).map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1)));
        let h = headers(&[&list.join(", ")]);
        let got = client_ip(ip("10.0.0.2"), &h, &proxies);
        assert!(proxies[0].contains(got), "stays on a trusted hop: {got}");
    }

    #[test]
    fn network_keys_group_ipv6_by_64() {
        assert_eq!(
            network_key(ip("2001:db8:1:2:aaaa::1")),
            network_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            network_key(ip("2001:db8:1:2::1")),
            network_key(ip("2001:db8:1:3::1"))
        );
        assert_ne!(network_key(ip("192.0.2.1")), network_key(ip("192.0.2.2")));
        assert_eq!(
            network_key(ip("::ffff:192.0.2.1")),
            network_key(ip("192.0.2.1"))
        );
    }
}
