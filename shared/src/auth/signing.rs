//! Request signatures: HMAC-SHA256 over a canonical string.
//!
//! ```text
//! v1:{METHOD}:{path}:{X-Request-Time}:{Idempotency-Key without quotes}:{raw body}
//! ```
//!
//! The rules themselves are the client crate's (`flashsale_client::signing`), so the
//! API verifies exactly what clients sign; this module adds the API's side: the
//! configured keys ([`Keyring`]).

use std::collections::BTreeMap;

pub use flashsale_client::signing::{SIGNATURE_PREFIX, canonical_string, sign, unquoted, verify};

use crate::auth::secret::Secret;

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

    fn sign_order(secret: &[u8], time: &str, key: &str, body: &[u8]) -> String {
        sign(secret, "/order", time, key, body)
    }

    fn verify_order(secret: &[u8], time: &str, key: &str, body: &[u8], sig: &str) -> bool {
        verify(secret, "/order", time, key, body, sig)
    }

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
