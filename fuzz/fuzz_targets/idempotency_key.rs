//! `Idempotency-Key` header values: never a panic; an accepted key is 8–128 characters
//! of `[A-Za-z0-9_-]`, reads the same quoted, and is what the canonical string signs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::IdempotencyKey;

fuzz_target!(|raw: &str| {
    let Ok(key) = IdempotencyKey::parse_header(raw) else {
        return;
    };
    let k = key.as_str();
    assert!((8..=128).contains(&k.len()), "{k:?}");
    assert!(
        k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    );
    let quoted = IdempotencyKey::parse_header(&format!("\"{k}\"")).expect("quoted form");
    assert_eq!(quoted.as_str(), k);
    assert!(raw.contains(k));
});
