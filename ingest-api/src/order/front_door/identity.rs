//! Who is asking: the client's network and device, as the limits and blocks see them.
//!
//! The client address is the TCP peer, unless the peer is one of `TRUSTED_PROXIES`; then
//! it is the rightmost `X-Forwarded-For` hop that is not a trusted proxy. Anything a
//! client writes into `X-Forwarded-For` in front of our proxies is ignored, so a forged
//! header cannot move a client out of its own rate-limit bucket.

use std::net::IpAddr;

use ipnet::IpNet;
use shared::Fingerprint;
use shared::client::{Pseudonymizer, fingerprint_id, network_id};

/// The proxies whose `X-Forwarded-For` we believe.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs or addresses (`10.0.0.0/8, 192.0.2.1`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("TRUSTED_PROXIES: {s:?} is not an address or CIDR"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address for a request from `peer` carrying these `X-Forwarded-For`
    /// values (in header order).
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443` or
/// `203.0.113.7:443`; anything else (an unclosed bracket, junk after it) is no address.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return if port_ok { ip.parse().ok() } else { None };
    }
    let (ip, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client as the admission script and the logs see it.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client address (for logs only; never stored in PostgreSQL).
    pub ip: IpAddr,
    /// Its network: the IPv4 address or the IPv6 /64 (rate-limit and block key).
    pub network: String,
    /// The device fingerprint, if a valid one was sent.
    pub fingerprint: Option<Fingerprint>,
    /// Key id of the fingerprint (hash, or the shared `unknown` bucket).
    pub fingerprint_id: String,
}

impl Client {
    /// Builds the identity from the client address and the raw fingerprint header. An
    /// invalid fingerprint counts as none (the shared, stricter bucket).
    pub fn new(ip: IpAddr, fingerprint_header: Option<&str>) -> Self {
        let fingerprint = fingerprint_header.and_then(|f| Fingerprint::parse(f).ok());
        Self {
            ip,
            network: network_id(ip),
            fingerprint_id: fingerprint_id(fingerprint.as_ref()),
            fingerprint,
        }
    }

    /// Pseudonyms for the order row: network hash and device hash.
    pub fn pseudonyms(&self, p: &Pseudonymizer) -> (String, Option<String>) {
        (
            p.network(&self.network),
            self.fingerprint.as_ref().map(|f| p.device(f)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("valid")
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let got = trusted.client_ip(ip("198.51.100.9"), ["1.2.3.4"].into_iter());
        assert_eq!(got, ip("198.51.100.9"));
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("10.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn hops_are_read_strictly() {
        for (hop, want) in [
            ("203.0.113.7", Some("203.0.113.7")),
            ("203.0.113.7:443", Some("203.0.113.7")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            // Found by the fuzzer (fuzz/fuzz_targets/forwarded_for.rs): an unclosed
            // bracket was read as an address.
            ("[B::", None),
            ("[2001:db8::1]junk", None),
            ("[2001:db8::1]:http", None),
            ("203.0.113.7:http", None),
            ("unknown", None),
        ] {
            assert_eq!(parse_hop(hop), want.map(ip), "{hop}");
        }
    }

    #[test]
    fn rightmost_untrusted_hop_wins() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").expect("valid");
        // The client forged "6.6.6.6"; the edge proxy appended the real client.
        let got = trusted.client_ip(
            ip("10.0.0.5"),
            ["6.6.6.6, 203.0.113.7", "192.0.2.1"].into_iter(),
        );
        assert_eq!(got, ip("203.0.113.7"));
        // Every hop trusted: the leftmost.
        let got = trusted.client_ip(ip("10.0.0.5"), ["10.1.1.1, 10.2.2.2"].into_iter());
        assert_eq!(got, ip("10.1.1.1"));
        // Garbage stops the walk at the last good hop.
        let got = trusted.client_ip(ip("10.0.0.5"), ["203.0.113.7, garbage"].into_iter());
        assert_eq!(got, ip("10.0.0.5"));
        let got = trusted.client_ip(ip("10.0.0.5"), ["[2001:db8::7]:443"].into_iter());
        assert_eq!(got, ip("2001:db8::7"));
        let got = trusted.client_ip(ip("::ffff:10.0.0.5"), ["203.0.113.8:1234"].into_iter());
        assert_eq!(got, ip("203.0.113.8"));
    }

    #[test]
    fn parse_errors_name_the_entry() {
        let e = TrustedProxies::parse("10.0.0.0/8, nonsense").expect_err("invalid");
        assert!(e.contains("nonsense"));
    }

    #[test]
    fn invalid_fingerprints_share_the_unknown_bucket() {
        let c = Client::new(ip("203.0.113.7"), Some(&"x".repeat(200)));
        assert!(c.fingerprint.is_none());
        assert_eq!(c.fingerprint_id, "unknown");
        let c = Client::new(ip("2001:db8:1:2::9"), Some("dev-1"));
        assert_eq!(c.network, "2001:db8:1:2::/64");
        assert_eq!(c.fingerprint_id.len(), 32);
    }
}
