//! Request signatures: HMAC-SHA256 over a canonical string.
//!
//! ```text
//! v1:{METHOD}:{path}:{X-Request-Time}:{Idempotency-Key without quotes}:{raw body}
//! ```
//!
//! The body enters verbatim, so the server verifies the bytes it received before parsing
//! them, and the idempotency key is signed, so a captured request cannot be replayed
//! under a fresh key. One implementation serves the API, the tests, the demo client and
//! the load generator.

use std::collections::BTreeMap;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Prefix of the `X-Signature` header value; names the canonical-string version.
pub const SIGNATURE_PREFIX: &str = "v1=";

/// The bytes that are signed.
pub fn canonical_string(
    method: &str,
    path: &str,
    request_time: &str,
    idempotency_key: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        12 + method.len() + path.len() + request_time.len() + idempotency_key.len() + body.len(),
    );
    for part in ["v1", method, path, request_time, idempotency_key] {
        out.extend_from_slice(part.as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(body);
    out
}

fn mac(secret: &[u8], canonical: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(canonical);
    mac
}

/// The `X-Signature` value (`v1=` + lowercase hex) for a `POST` to `path`.
pub fn sign(
    secret: &[u8],
    path: &str,
    request_time: &str,
    idempotency_key: &str,
    body: &[u8],
) -> String {
    let canonical = canonical_string("POST", path, request_time, idempotency_key, body);
    let tag = mac(secret, &canonical).finalize().into_bytes();
    format!("{SIGNATURE_PREFIX}{}", hex::encode(tag))
}

/// The `X-Signature` value for a `POST /order`.
pub fn sign_order(secret: &[u8], request_time: &str, idempotency_key: &str, body: &[u8]) -> String {
    sign(secret, "/order", request_time, idempotency_key, body)
}

/// Checks an `X-Signature` value for a `POST` to `path` in constant time. Anything that
/// is not `v1=` followed by 64 hex digits is simply a wrong signature.
pub fn verify(
    secret: &[u8],
    path: &str,
    request_time: &str,
    idempotency_key: &str,
    body: &[u8],
    signature: &str,
) -> bool {
    let Some(hex_tag) = signature.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let mut tag = [0u8; 32];
    if hex::decode_to_slice(hex_tag, &mut tag).is_err() {
        return false;
    }
    let canonical = canonical_string("POST", path, request_time, idempotency_key, body);
    mac(secret, &canonical).verify_slice(&tag).is_ok()
}

/// [`verify`] for a `POST /order`.
pub fn verify_order(
    secret: &[u8],
    request_time: &str,
    idempotency_key: &str,
    body: &[u8],
    signature: &str,
) -> bool {
    verify(
        secret,
        "/order",
        request_time,
        idempotency_key,
        body,
        signature,
    )
}

/// Why a `SIGNING_KEYS` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No key configured at all.
    #[error("SIGNING_KEYS is empty: configure at least one id:secret pair")]
    Empty,
    /// An entry is not `id:secret`, or a part is empty.
    #[error("SIGNING_KEYS entry #{0} is not of the form id:secret")]
    Malformed(usize),
    /// The same id twice.
    #[error("SIGNING_KEYS names key id {0:?} twice")]
    Duplicate(String),
    /// A secret shorter than 16 bytes is too easy to guess.
    #[error("SIGNING_KEYS secret for key id {0:?} is shorter than 16 bytes")]
    TooShort(String),
}

/// The configured signing keys, by key id. Several keys allow rotation without downtime:
/// add the new key, move clients over, remove the old one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: BTreeMap<String, Secret<Vec<u8>>>,
}

impl Keyring {
    /// Parses `id:secret[,id:secret…]`. Secrets may contain `:`; only the first one splits.
    pub fn parse(raw: &str) -> Result<Self, KeyringError> {
        let mut keys = BTreeMap::new();
        for (i, entry) in raw.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (id, secret) = entry
                .split_once(':')
                .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
                .ok_or(KeyringError::Malformed(i + 1))?;
            if secret.len() < 16 {
                return Err(KeyringError::TooShort(id.to_owned()));
            }
            if keys
                .insert(id.to_owned(), Secret::new(secret.as_bytes().to_vec()))
                .is_some()
            {
                return Err(KeyringError::Duplicate(id.to_owned()));
            }
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Self { keys })
    }

    /// The secret for `key_id`; without an id, the only key if exactly one is configured.
    pub fn get(&self, key_id: Option<&str>) -> Option<&[u8]> {
        match key_id {
            Some(id) => self.keys.get(id),
            None if self.keys.len() == 1 => self.keys.values().next(),
            None => None,
        }
        .map(|s| s.expose().as_slice())
    }

    /// The configured key ids (never the secrets), for start-up logs.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The worked example of `ingest-api/API.md`.
    #[test]
    fn matches_the_contract_test_vector() {
        let body = br#"{"productId":"iphone-15","userId":"u-1001","quantity":1}"#;
        let sig = sign_order(
            b"example-secret",
            "1700000000000",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            body,
        );
        assert_eq!(
            sig,
            "v1=5fdeb47c4b8aa33cd166d5e38016522fbfb88816e4830353c7f694d01298350c"
        );
    }

    #[test]
    fn canonical_string_layout() {
        assert_eq!(
            canonical_string("POST", "/order", "1", "k", b"{}"),
            b"v1:POST:/order:1:k:{}".to_vec()
        );
    }

    #[test]
    fn keyring_parsing() {
        let ring = Keyring::parse("old:0123456789abcdef, new:fedcba9876543210:x").expect("valid");
        assert_eq!(ring.get(Some("new")), Some(&b"fedcba9876543210:x"[..]));
        assert_eq!(ring.get(None), None, "two keys: the id is required");
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["new", "old"]);
        let one = Keyring::parse("k1:0123456789abcdef").expect("valid");
        assert_eq!(one.get(None), Some(&b"0123456789abcdef"[..]));
        assert_eq!(Keyring::parse(""), Err(KeyringError::Empty));
        assert_eq!(Keyring::parse("nokey"), Err(KeyringError::Malformed(1)));
        assert!(matches!(
            Keyring::parse("a:short"),
            Err(KeyringError::TooShort(_))
        ));
        assert!(matches!(
            Keyring::parse("a:0123456789abcdef,a:0123456789abcdef"),
            Err(KeyringError::Duplicate(_))
        ));
        assert!(!format!("{ring:?}").contains("0123456789abcdef"));
    }

    proptest! {
        #[test]
        fn any_body_and_key_verify(
            secret in proptest::collection::vec(any::<u8>(), 1..80),
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            key in "[A-Za-z0-9_-]{8,128}",
            time in any::<u64>(),
        ) {
            let time = time.to_string();
            let sig = sign_order(&secret, &time, &key, &body);
            prop_assert!(sig.starts_with(SIGNATURE_PREFIX));
            prop_assert_eq!(sig.len(), 3 + 64);
            prop_assert!(verify_order(&secret, &time, &key, &body, &sig));
        }

        #[test]
        fn any_change_breaks_the_signature(
            secret in proptest::collection::vec(any::<u8>(), 1..80),
            body in proptest::collection::vec(any::<u8>(), 1..512),
            key in "[A-Za-z0-9_-]{8,64}",
            flip in any::<proptest::sample::Index>(),
        ) {
            let sig = sign_order(&secret, "1700000000000", &key, &body);
            let mut tampered = body.clone();
            let i = flip.index(tampered.len());
            tampered[i] ^= 0x01;
            prop_assert!(!verify_order(&secret, "1700000000000", &key, &tampered, &sig));
            prop_assert!(!verify_order(&secret, "1700000000001", &key, &body, &sig));
            let other_key = format!("{key}x");
            prop_assert!(!verify_order(&secret, "1700000000000", &other_key, &body, &sig));
            // (Appending a zero byte would not do: HMAC pads short keys with zeros.)
            let mut wrong_secret = secret.clone();
            wrong_secret[0] ^= 0x01;
            prop_assert!(!verify_order(&wrong_secret, "1700000000000", &key, &body, &sig));
        }

        #[test]
        fn garbage_signatures_never_panic(sig in ".{0,100}") {
            let _ = verify_order(b"secret", "1", "abcdefgh", b"{}", &sig);
        }
    }
}
