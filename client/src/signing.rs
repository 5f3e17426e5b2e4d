//! The signing rules of the API (`ingest-api/API.md`, "Signing"): HMAC-SHA256 over a
//! canonical string.
//!
//! ```text
//! v1:{METHOD}:{path}:{X-Request-Time}:{Idempotency-Key without quotes}:{raw body}
//! ```
//!
//! The body enters verbatim, so the server verifies the bytes it received before parsing
//! them, and the idempotency key is signed, so a captured request cannot be replayed
//! under a fresh key. The API verifies with these same functions.
//!
//! ```
//! use flashsale_client::signing::sign;
//!
//! // The test vector of the contract.
//! let body = br#"{"productId":"iphone-15","userId":"u-1001","quantity":1}"#;
//! let signature = sign(b"example-secret", "/order", "1700000000000",
//!                      "0f8fad5b-d9cb-469f-a165-70867728950e", body);
//! assert_eq!(signature,
//!     "v1=5fdeb47c4b8aa33cd166d5e38016522fbfb88816e4830353c7f694d01298350c");
//! ```

use hmac::{KeyInit, Mac};
use sha2::Sha256;

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

/// The `X-Signature` value (`v1=` + lowercase hex) for a `POST` to `path`
/// (`/order`, `/order/{id}/cancel`, `/queue/…`).
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

/// An `Idempotency-Key` as signed: without the quotes it may be sent in (`"abc…"`).
pub fn unquoted(idempotency_key: &str) -> &str {
    idempotency_key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(idempotency_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_layout() {
        assert_eq!(
            canonical_string("POST", "/order", "1", "k", b"{}"),
            b"v1:POST:/order:1:k:{}".to_vec()
        );
    }

    #[test]
    fn signs_and_verifies_any_path() {
        let sig = sign(
            b"secret-0123456789",
            "/order/x/cancel",
            "5",
            "abcdefgh",
            b"{}",
        );
        assert!(verify(
            b"secret-0123456789",
            "/order/x/cancel",
            "5",
            "abcdefgh",
            b"{}",
            &sig
        ));
        assert!(!verify(
            b"secret-0123456789",
            "/order",
            "5",
            "abcdefgh",
            b"{}",
            &sig
        ));
        assert!(!verify(
            b"secret-0123456789",
            "/order",
            "5",
            "abcdefgh",
            b"{}",
            "v1=zz"
        ));
    }

    #[test]
    fn quotes_are_not_signed() {
        assert_eq!(unquoted("\"abcdefgh\""), "abcdefgh");
        assert_eq!(unquoted("abcdefgh"), "abcdefgh");
        assert_eq!(unquoted("\"abcdefgh"), "\"abcdefgh");
    }
}
