//! The headers of `POST /order` as the API reads them before the body (media type,
//! declared size, idempotency key, signing headers, device fingerprint): any bytes a
//! client can put in a header value give an answer, never a panic, and the idempotency
//! key read is one the key parser accepts.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use ingest_api::order::front_door::Client;
use ingest_api::routes::request::signed_headers as headers;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 8] = [
    "content-type",
    "content-length",
    "idempotency-key",
    "x-idempotency-key",
    "x-request-time",
    "x-key-id",
    "x-signature",
    "x-device-fingerprint",
];

fuzz_target!(|data: &[u8]| {
    // The input is up to eight values separated by 0xFF, one per header in NAMES order
    // (an empty value leaves the header out).
    let mut map = HeaderMap::new();
    let mut fingerprint = None;
    for (name, value) in NAMES.iter().zip(data.split(|b| *b == 0xFF)) {
        if value.is_empty() {
            continue;
        }
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        if *name == "x-device-fingerprint" {
            fingerprint = value.to_str().ok().map(str::to_owned);
        }
        map.insert(HeaderName::from_static(name), value);
    }
    if let Ok(parsed) = headers(&map) {
        let key = parsed.idempotency_key.as_str();
        assert!(shared::IdempotencyKey::parse(key).is_ok(), "{key:?}");
    }
    let client = Client::new("203.0.113.7".parse().expect("ip"), fingerprint.as_deref());
    assert_eq!(client.network, "203.0.113.7");
});
