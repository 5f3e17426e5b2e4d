//! How a client is named in rate-limit and block keys, the same way in the API and in
//! `flashctl block`.
//!
//! An IPv4 address stands for itself; an IPv6 address stands for its /64, because one
//! subscriber usually gets a whole /64 and can pick any address in it. A device
//! fingerprint is hashed (its value is opaque and may hold any printable character);
//! requests without one share the `unknown` bucket of the product.

use std::net::IpAddr;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::auth::secret::Secret;
use crate::domain::Fingerprint;

/// The network a client address stands for: `203.0.113.7` or `2001:db8:1:2::/64`.
/// IPv4-mapped IPv6 addresses count as IPv4.
pub fn network_id(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

/// The id of the "no fingerprint sent" bucket.
pub const UNKNOWN_DEVICE: &str = "unknown";

/// Key id of a fingerprint: 32 hex digits of its SHA-256, or [`UNKNOWN_DEVICE`].
pub fn fingerprint_id(fingerprint: Option<&Fingerprint>) -> String {
    match fingerprint {
        Some(fp) => hex::encode(&Sha256::digest(fp.as_str().as_bytes())[..16]),
        None => UNKNOWN_DEVICE.to_owned(),
    }
}

/// Keyed hashes that let operators group orders by network or device without storing
/// either: `HMAC-SHA256(IP_HASH_KEY, value)`, 32 hex digits. Without the key, the hash
/// cannot be reversed by trying all 2³² IPv4 addresses.
#[derive(Clone, Debug)]
pub struct Pseudonymizer {
    key: Secret<Vec<u8>>,
}

impl Pseudonymizer {
    /// Uses `key` (at least 16 bytes in production).
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: Secret::new(key.to_vec()),
        }
    }

    fn hash(&self, domain: &str, value: &str) -> String {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(domain.as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Pseudonym of a client network ([`network_id`]).
    pub fn network(&self, network: &str) -> String {
        self.hash("ip", network)
    }

    /// Pseudonym of a device fingerprint.
    pub fn device(&self, fingerprint: &Fingerprint) -> String {
        self.hash("fp", fingerprint.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("valid");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("valid");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("valid");
        assert_eq!(network_id(a), "2001:db8:1:2::/64");
        assert_eq!(network_id(a), network_id(b));
        assert_ne!(network_id(a), network_id(c));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().expect("valid");
        assert_eq!(network_id(mapped), "203.0.113.7");
    }

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = Pseudonymizer::new(b"key-one-0123456789");
        let b = Pseudonymizer::new(b"key-two-0123456789");
        assert_eq!(a.network("203.0.113.7"), a.network("203.0.113.7"));
        assert_ne!(a.network("203.0.113.7"), b.network("203.0.113.7"));
        assert_ne!(a.network("203.0.113.7"), a.network("203.0.113.8"));
        assert!(!a.network("203.0.113.7").contains("203"));
        assert!(!format!("{a:?}").contains("key-one"));
    }

    #[test]
    fn fingerprints_are_hashed() {
        let fp = Fingerprint::parse("device {one}: ok").expect("valid");
        let id = fingerprint_id(Some(&fp));
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(fingerprint_id(None), UNKNOWN_DEVICE);
    }
}
