//! The client's address, for keys limited to source networks (`keysmith_core::sources`).
//!
//! The verifier sees its proxy's connection, not the client's. It believes a forwarded
//! address only from a peer inside `--trusted-proxy`: from such a peer it reads
//! `X-Forwarded-For` (every field line, in order, as one list, RFC 9110 §5.3) from the
//! right and takes the first address that is not itself a trusted proxy, the last hop
//! nobody it trusts could have forged (MDN, "X-Forwarded-For: Selecting an IP address";
//! OWASP). A client's own `X-Forwarded-For` only adds entries to the left of that, so it
//! changes nothing. From any other peer the header is ignored and the peer is the client.
//!
//! Pure functions of the headers and the peer, so they are tested and fuzzed on their own.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// `X-Forwarded-For`, the de-facto header proxies append the client's address to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// [`X_FORWARDED_FOR`] as a header name, so the per-request look-up does not parse it.
const X_FORWARDED_FOR_NAME: HeaderName = HeaderName::from_static(X_FORWARDED_FOR);

/// Most `X-Forwarded-For` entries read (from the right); a longer chain leaves the client
/// unknown.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// The proxies whose `X-Forwarded-For` the verifier believes (`--trusted-proxy CIDR`).
/// Empty by default: the header is then never read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses networks or addresses, as `AllowedSources` does (same canonical forms, same
    /// errors).
    ///
    /// # Errors
    /// `keysmith_core::Error::InvalidAddress` naming the bad value.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> keysmith_core::Result<TrustedProxies> {
        let parsed = keysmith_core::sources::AllowedSources::parse(items)?;
        Ok(TrustedProxies(parsed.networks().to_vec()))
    }

    /// Whether `addr` is a trusted proxy.
    pub fn holds(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|n| n.contains(&addr))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client's address: `peer` itself unless it is a trusted proxy; then the rightmost
/// `X-Forwarded-For` entry that is not a trusted proxy (or the leftmost, when every entry
/// is one). `None` when that entry is not an address, when a trusted proxy sent no
/// header, or when the chain is longer than [`MAX_FORWARDED_HOPS`]: a key limited to
/// networks is then refused.
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.holds(peer) {
        return Some(peer);
    }
    // Two passes over the field lines, no allocation on this per-request path: every line
    // readable and the chain within bounds, then the walk from the right.
    let lines = headers.get_all(&X_FORWARDED_FOR_NAME);
    let mut hops = 0;
    for value in &lines {
        hops += value.to_str().ok()?.split(',').count();
        if hops > MAX_FORWARDED_HOPS {
            return None;
        }
    }
    let mut last = None;
    for value in lines.iter().rev() {
        for entry in value.to_str().ok()?.rsplit(',') {
            let addr = forwarded_address(entry.trim())?;
            if !trusted.holds(addr) {
                return Some(addr);
            }
            last = Some(addr);
        }
    }
    last
}

/// One `X-Forwarded-For` entry: an address, a bracketed IPv6 address, or either with a port
/// (some proxies add one). Anything else (`unknown`, obfuscated names of RFC 7239) is not an
/// address.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    if let Ok(addr) = IpAddr::from_str(entry) {
        return Some(addr.to_canonical());
    }
    if let Some(inner) = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
        return std::net::Ipv6Addr::from_str(inner)
            .ok()
            .map(|a| IpAddr::V6(a).to_canonical());
    }
    SocketAddr::from_str(entry)
        .ok()
        .map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(t: &str) -> IpAddr {
        IpAddr::from_str(t).expect(t)
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn the_client_is_the_last_hop_no_trusted_proxy_vouches_for() {
        let trusted = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8", "::1"]).expect("parse");
        let table: &[(&str, &[&str], Option<&str>)] = &[
            // Not a trusted peer: the header is ignored, whatever it says.
            ("203.0.113.9", &["10.0.0.1"], Some("203.0.113.9")),
            ("203.0.113.9", &[], Some("203.0.113.9")),
            ("::ffff:203.0.113.9", &["1.1.1.1"], Some("203.0.113.9")),
            // A trusted peer: the rightmost untrusted entry.
            ("127.0.0.1", &["198.51.100.7"], Some("198.51.100.7")),
            ("::1", &["198.51.100.7"], Some("198.51.100.7")),
            ("::ffff:127.0.0.1", &["198.51.100.7"], Some("198.51.100.7")),
            // A client's own header only adds entries on the left.
            (
                "127.0.0.1",
                &["192.0.2.66, 198.51.100.7"],
                Some("198.51.100.7"),
            ),
            (
                "127.0.0.1",
                &["192.0.2.66", "198.51.100.7"],
                Some("198.51.100.7"),
            ),
            // Trusted hops on the right are skipped.
            (
                "127.0.0.1",
                &["198.51.100.7, 10.1.1.1, 10.2.2.2"],
                Some("198.51.100.7"),
            ),
            // Every hop trusted: the leftmost is the client.
            ("127.0.0.1", &["10.9.9.9, 10.1.1.1"], Some("10.9.9.9")),
            // Forms proxies write.
            ("127.0.0.1", &["[2001:db8::7]"], Some("2001:db8::7")),
            ("127.0.0.1", &["[2001:db8::7]:4711"], Some("2001:db8::7")),
            ("127.0.0.1", &["198.51.100.7:4711"], Some("198.51.100.7")),
            ("127.0.0.1", &["  198.51.100.7  "], Some("198.51.100.7")),
            ("127.0.0.1", &["::ffff:198.51.100.7"], Some("198.51.100.7")),
            // Unknown: refused for keys with an allowlist.
            ("127.0.0.1", &[], None),
            ("127.0.0.1", &[""], None),
            ("127.0.0.1", &["unknown"], None),
            ("127.0.0.1", &["198.51.100.7, _hidden"], None),
            ("127.0.0.1", &["198.51.100.7,"], None),
            ("127.0.0.1", &["198.51.100.7 10.1.1.1"], None),
            ("127.0.0.1", &["fe80::1%eth0"], None),
            ("127.0.0.1", &["0x7f.0.0.1"], None),
        ];
        for (peer, xff, want) in table {
            let got = client_address(&headers(xff), Some(ip(peer)), &trusted);
            assert_eq!(got, want.map(ip), "peer {peer}, X-Forwarded-For {xff:?}");
        }
        assert_eq!(
            client_address(&headers(&["198.51.100.7"]), None, &trusted),
            None
        );
    }

    #[test]
    fn with_no_trusted_proxy_the_header_is_never_read() {
        let none = TrustedProxies::default();
        let got = client_address(&headers(&["198.51.100.7"]), Some(ip("127.0.0.1")), &none);
        assert_eq!(got, Some(ip("127.0.0.1")));
    }

    #[test]
    fn an_overlong_chain_leaves_the_client_unknown() {
        let trusted = TrustedProxies::parse(&["127.0.0.1"]).expect("parse");
        let chain = vec!["192.0.2.1"; MAX_FORWARDED_HOPS + 1].join(", ");
        assert_eq!(
            client_address(&headers(&[&chain]), Some(ip("127.0.0.1")), &trusted),
            None
        );
        let chain = vec!["192.0.2.1"; MAX_FORWARDED_HOPS].join(", ");
        assert_eq!(
            client_address(&headers(&[&chain]), Some(ip("127.0.0.1")), &trusted),
            Some(ip("192.0.2.1"))
        );
    }

    #[test]
    fn bad_trusted_proxies_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.1/8"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.internal"]).is_err());
        assert!(TrustedProxies::parse(&Vec::<String>::new())
            .expect("empty")
            .is_empty());
    }
}
