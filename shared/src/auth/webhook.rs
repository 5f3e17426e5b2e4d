//! Payment webhooks signed per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>): headers `webhook-id`, `webhook-timestamp` (Unix
//! seconds) and `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, keyed by secrets written `whsec_<base64>`. Several
//! secrets may be configured at once (rotation): a signature by any of them is accepted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::auth::secret::Secret;

type HmacSha256 = hmac::Hmac<Sha256>;

/// How far `webhook-timestamp` may be from now, either way: five minutes.
pub const TOLERANCE_SECS: u64 = 5 * 60;

/// Why `PAYMENT_WEBHOOK_SECRETS` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    /// An entry does not start with `whsec_`.
    #[error("PAYMENT_WEBHOOK_SECRETS entry #{0} does not start with whsec_")]
    Prefix(usize),
    /// An entry is not base64 after the prefix, or decodes to fewer than 16 bytes.
    #[error("PAYMENT_WEBHOOK_SECRETS entry #{0} is not base64 of at least 16 bytes")]
    Malformed(usize),
}

/// The configured webhook secrets (none: the endpoint refuses every call).
#[derive(Clone, Debug, Default)]
pub struct WebhookSecrets {
    keys: Vec<Secret<Vec<u8>>>,
}

impl WebhookSecrets {
    /// Parses `whsec_<base64>[,whsec_<base64>…]`; blank means none.
    pub fn parse(raw: &str) -> Result<Self, WebhookSecretError> {
        let mut keys = Vec::new();
        for (i, entry) in raw.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let b64 = entry
                .strip_prefix("whsec_")
                .ok_or(WebhookSecretError::Prefix(i + 1))?;
            let key = STANDARD
                .decode(b64)
                .ok()
                .filter(|k| k.len() >= 16)
                .ok_or(WebhookSecretError::Malformed(i + 1))?;
            keys.push(Secret::new(key));
        }
        Ok(Self { keys })
    }

    /// Whether any secret is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `signatures` (the `webhook-signature` header) holds a `v1` signature of
    /// this message by any configured secret, compared in constant time, and
    /// `timestamp` is within [`TOLERANCE_SECS`] of `now_secs`.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        body: &[u8],
        signatures: &str,
        now_secs: u64,
    ) -> bool {
        let Ok(sent) = timestamp.trim().parse::<u64>() else {
            return false;
        };
        if sent.abs_diff(now_secs) > TOLERANCE_SECS {
            return false;
        }
        let tags: Vec<Vec<u8>> = signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .collect();
        self.keys.iter().any(|key| {
            tags.iter().any(|tag| {
                mac(key.expose(), id, timestamp, body)
                    .verify_slice(tag)
                    .is_ok()
            })
        })
    }
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value (`v1,<base64>`) of a message under `secret`
/// (`whsec_<base64>`), as a payment service sends it; `None` for a malformed secret.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let tag = mac(&key, id, timestamp, body).finalize().into_bytes();
    Some(format!("v1,{}", STANDARD.encode(tag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_reference_example() {
        assert_eq!(sign(SECRET, ID, TS, BODY).as_deref(), Some(EXPECTED));
        let secrets = WebhookSecrets::parse(&format!("whsec_AAAAAAAAAAAAAAAAAAAAAAAA, {SECRET}"))
            .expect("valid");
        let now = 1_614_265_330;
        let header = format!("v1,bm90IGl0 {EXPECTED}");
        assert!(
            secrets.verify(ID, TS, BODY, &header, now),
            "any listed signature"
        );
        assert!(secrets.verify(ID, TS, BODY, EXPECTED, now + TOLERANCE_SECS));
        assert!(!secrets.verify(ID, TS, BODY, EXPECTED, now + TOLERANCE_SECS + 1));
        assert!(!secrets.verify("msg_other", TS, BODY, EXPECTED, now));
        assert!(!secrets.verify(ID, TS, b"{}", EXPECTED, now));
        assert!(!secrets.verify(ID, TS, BODY, "v2,whatever", now));
        assert!(!WebhookSecrets::default().verify(ID, TS, BODY, EXPECTED, now));
    }

    #[test]
    fn refuses_bad_secrets() {
        assert_eq!(
            WebhookSecrets::parse("secret").err(),
            Some(WebhookSecretError::Prefix(1))
        );
        assert_eq!(
            WebhookSecrets::parse("whsec_!!!").err(),
            Some(WebhookSecretError::Malformed(1))
        );
        assert!(WebhookSecrets::parse(" ").expect("blank").is_empty());
        assert!(!format!("{:?}", WebhookSecrets::parse(SECRET).expect("ok")).contains("MfKQ"));
    }
}
