//! Signature and freshness of a signed request (`POST /order`, `POST
//! /order/{id}/cancel`), checked on the raw bytes before the body is parsed.

use shared::IdempotencyKey;
use shared::auth::signing::{Keyring, verify};

/// The signed parts of a request, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The request path, as signed (`/order`, `/order/{id}/cancel`).
    pub path: &'a str,
    /// `X-Key-Id`, optional when one key is configured.
    pub key_id: Option<&'a str>,
    /// `X-Request-Time`, Unix milliseconds, verbatim.
    pub request_time: Option<&'a str>,
    /// `X-Signature`.
    pub signature: Option<&'a str>,
    /// The idempotency key (signed).
    pub idempotency_key: &'a IdempotencyKey,
    /// The raw body.
    pub body: &'a [u8],
}

/// Why a request is not authentic or not fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `X-Request-Time` missing, not an integer, or outside the window.
    #[error("X-Request-Time missing or outside the accepted window")]
    Expired,
    /// No `X-Signature`.
    #[error("X-Signature is missing")]
    Missing,
    /// `X-Key-Id` names no configured key (or is required and absent).
    #[error("X-Key-Id does not name a configured key")]
    UnknownKey,
    /// The signature does not match.
    #[error("signature does not match")]
    Mismatch,
}

/// Verifies signatures with the configured keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    keyring: Keyring,
    window_ms: u64,
}

impl Verifier {
    /// Keys and the accepted clock skew (both ways).
    pub fn new(keyring: Keyring, window_ms: u64) -> Self {
        Self { keyring, window_ms }
    }

    /// Checks freshness, then the HMAC in constant time.
    pub fn verify(&self, req: &SignedRequest<'_>, now_ms: u64) -> Result<(), SignatureError> {
        let time = req.request_time.ok_or(SignatureError::Expired)?;
        let sent: u64 = time.trim().parse().map_err(|_| SignatureError::Expired)?;
        if sent.abs_diff(now_ms) > self.window_ms {
            return Err(SignatureError::Expired);
        }
        let signature = req.signature.ok_or(SignatureError::Missing)?;
        let secret = self
            .keyring
            .get(req.key_id)
            .ok_or(SignatureError::UnknownKey)?;
        if verify(
            secret,
            req.path,
            time,
            req.idempotency_key.as_str(),
            req.body,
            signature,
        ) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::auth::signing::sign;

    fn verifier() -> Verifier {
        Verifier::new(
            Keyring::parse("k1:0123456789abcdef,k2:fedcba9876543210").expect("valid"),
            30_000,
        )
    }

    #[test]
    fn window_and_keys() {
        let v = verifier();
        let key = IdempotencyKey::parse("abcdefgh").expect("valid");
        let body = b"{}";
        let now = 1_700_000_000_000u64;
        let sig = sign(
            b"fedcba9876543210",
            "/order",
            &now.to_string(),
            key.as_str(),
            body,
        );
        let t = now.to_string();
        let req = SignedRequest {
            path: "/order",
            key_id: Some("k2"),
            request_time: Some(&t),
            signature: Some(&sig),
            idempotency_key: &key,
            body,
        };
        assert_eq!(v.verify(&req, now + 30_000), Ok(()));
        assert_eq!(v.verify(&req, now - 30_000), Ok(()));
        assert_eq!(v.verify(&req, now + 30_001), Err(SignatureError::Expired));
        assert_eq!(
            v.verify(
                &SignedRequest {
                    key_id: Some("k1"),
                    ..req
                },
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(
                &SignedRequest {
                    key_id: None,
                    ..req
                },
                now
            ),
            Err(SignatureError::UnknownKey),
            "with two keys the id is required"
        );
        assert_eq!(
            v.verify(
                &SignedRequest {
                    signature: None,
                    ..req
                },
                now
            ),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            v.verify(
                &SignedRequest {
                    request_time: Some("soon"),
                    ..req
                },
                now
            ),
            Err(SignatureError::Expired)
        );
    }
}
