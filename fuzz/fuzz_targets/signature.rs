//! The signature checks on attacker-chosen headers and bodies: `X-Request-Time`,
//! `X-Key-Id`, `X-Signature` through the API's verifier, and the payment webhook's
//! Standard Webhooks headers. Never a panic; a forged signature never passes; what the
//! signer produces always does.
#![no_main]

use ingest_api::order::front_door::{SignedRequest, Verifier};
use libfuzzer_sys::fuzz_target;
use shared::IdempotencyKey;
use flashsale_client::signing::sign;
use shared::auth::signing::Keyring;
use shared::auth::webhook::WebhookSecrets;

const NOW_MS: u64 = 1_700_000_000_000;

fuzz_target!(|input: (&str, &str, &str, &str, &[u8])| {
    let (time, key_id, signature, path, body) = input;
    let keyring =
        Keyring::parse("k1:fuzz-secret-0123456789,k2:other-secret-0123456789").expect("keyring");
    let verifier = Verifier::new(keyring, 30_000);
    let key = IdempotencyKey::parse("fuzz-key-0001").expect("key");
    let forged = SignedRequest {
        path,
        key_id: Some(key_id),
        request_time: Some(time),
        signature: Some(signature),
        idempotency_key: &key,
        body,
    };
    if verifier.verify(&forged, NOW_MS).is_ok() {
        // Only a genuine signature of exactly these parts, by a configured key, passes.
        let by = |secret: &[u8]| sign(secret, path, time, key.as_str(), body);
        let genuine = [
            by(b"fuzz-secret-0123456789"),
            by(b"other-secret-0123456789"),
        ];
        assert!(
            genuine.iter().any(|g| signature.trim() == g),
            "a forged signature passed"
        );
    }
    let genuine = sign(
        b"fuzz-secret-0123456789",
        path,
        "1700000000000",
        key.as_str(),
        body,
    );
    let honest = SignedRequest {
        key_id: Some("k1"),
        request_time: Some("1700000000000"),
        signature: Some(&genuine),
        ..forged
    };
    assert!(verifier.verify(&honest, NOW_MS).is_ok());

    let secrets = WebhookSecrets::parse("whsec_ZnV6ei13ZWJob29rLXNlY3JldA==").expect("secrets");
    let _ = secrets.verify(key_id, time, body, signature, NOW_MS / 1000);
});
