//! Client addresses behind load balancers: with `[server] trusted_proxies`, a request whose peer is
//! one of them is taken to come from the address its `X-Forwarded-For` names — the right-most entry
//! that is not itself a trusted proxy (entries further left were written by the client and prove
//! nothing) — and to have arrived over TLS when the proxy says `X-Forwarded-Proto: https`. The
//! address then stands everywhere the peer address would: `aws:SourceIp`, rate limits, audit events.
//! Without trusted proxies both headers are ignored.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// Marks a request that a trusted proxy received over TLS.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedHttps;

/// The client behind `peer` as trusted proxies report it, and whether the client used https.
/// `None` when `peer` is not a trusted proxy (nothing to believe).
pub fn client_behind(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<(IpAddr, bool)> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return None;
    }
    let mut client = peer;
    // Every X-Forwarded-For header, in order, as one list; walked from the right.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for e in entries.iter().rev() {
        let Some(ip) = parse_entry(e) else {
            // Garbage: the hop that wrote it is the last one we can name.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next_back())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    Some((canonical(client), https))
}

/// An IPv4-mapped IPv6 address as IPv4, so that `10.0.0.0/8` matches `::ffff:10.1.2.3`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, optionally `[v6]` or with a `:port` on IPv4.
fn parse_entry(e: &str) -> Option<IpAddr> {
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = e.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = e.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str], proto: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", p.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_up_to_the_first_untrusted_hop() {
        let lb = nets(&["10.0.0.0/8"]);
        let via = |peer: &str, xff: &[&str], proto: Option<&str>| {
            client_behind(ip(peer), &headers(xff, proto), &lb)
        };
        // An untrusted peer's header is ignored.
        assert_eq!(via("203.0.113.9", &["198.51.100.1"], None), None);
        // One hop.
        assert_eq!(
            via("10.0.0.5", &["198.51.100.1"], Some("https")),
            Some((ip("198.51.100.1"), true))
        );
        // The client prepended a lie; the load balancer appended the truth.
        assert_eq!(
            via("10.0.0.5", &["1.2.3.4, 198.51.100.1"], None),
            Some((ip("198.51.100.1"), false))
        );
        // Two trusted hops, over two header lines.
        assert_eq!(
            via("10.0.0.5", &["198.51.100.1", "10.9.9.9"], None),
            Some((ip("198.51.100.1"), false))
        );
        // Garbage stops the walk at the last hop we can name.
        assert_eq!(
            via("10.0.0.5", &["198.51.100.1, unknown"], None),
            Some((ip("10.0.0.5"), false))
        );
        // No header: the proxy itself.
        assert_eq!(via("10.0.0.5", &[], None), Some((ip("10.0.0.5"), false)));
        // Ports and brackets; a mapped address counts as its IPv4.
        assert_eq!(
            via("::ffff:10.0.0.5", &["198.51.100.1:4711"], None),
            Some((ip("198.51.100.1"), false))
        );
        assert_eq!(
            via("10.0.0.5", &["[2001:db8::1]:443"], None),
            Some((ip("2001:db8::1"), false))
        );
        // Only the last X-Forwarded-Proto value (the nearest proxy's) counts.
        assert_eq!(
            via("10.0.0.5", &["198.51.100.1"], Some("https, http")),
            Some((ip("198.51.100.1"), false))
        );
    }
}
