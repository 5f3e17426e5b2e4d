//! `Settings::validate`: defaults, production's refusals, named errors, bounds, and
//! secrets kept out of `Debug`.

use super::*;

fn base() -> Settings {
    serde_json::from_value(serde_json::json!({
        "signing_keys": "k:0123456789abcdef",
    }))
    .expect("defaults fill the rest")
}

#[test]
fn defaults_validate_in_development() {
    let v = base().validate().expect("valid");
    assert_eq!(v.fallback_ip_limit.to_string(), "10/s:20");
    assert!(v.allowed_origins.is_empty());
    assert_eq!(v.raw.listen_addr.port(), 8080);
}

#[test]
fn production_refuses_what_development_allows() {
    let mut s = base();
    s.environment = Environment::Production;
    let e = s
        .clone()
        .validate()
        .expect_err("origins required")
        .to_string();
    assert!(e.contains("ALLOWED_ORIGINS"), "{e}");
    s.allowed_origins = "https://shop.example".into();
    let e = s
        .clone()
        .validate()
        .expect_err("hash key required")
        .to_string();
    assert!(e.contains("IP_HASH_KEY"), "{e}");
    s.ip_hash_key = Some(Secret::new("0123456789abcdef0123".into()));
    s.rate_limit_enabled = false;
    let e = s
        .clone()
        .validate()
        .expect_err("limits required")
        .to_string();
    assert!(e.contains("RATE_LIMIT_ENABLED"), "{e}");
    s.rate_limit_enabled = true;
    let e = s
        .clone()
        .validate()
        .expect_err("room token keys required")
        .to_string();
    assert!(e.contains("ROOM_TOKEN_KEYS"), "{e}");
    s.room_token_keys = Some(Secret::new("k1:0123456789abcdef0123456789abcdef".into()));
    assert!(s.validate().is_ok());
    let mut short = base();
    short.room_token_keys = Some(Secret::new("k1:short".into()));
    let e = short.validate().expect_err("too short").to_string();
    assert!(e.contains("ROOM_TOKEN_KEYS"), "{e}");
}

#[test]
fn bad_values_are_named() {
    for (field, value, needle) in [
        ("trusted_proxies", "10.0.0.0/8, bogus", "TRUSTED_PROXIES"),
        ("fallback_ip_limit", "fast", "FALLBACK_IP_LIMIT"),
        ("allowed_origins", "shop.example", "ALLOWED_ORIGINS"),
        ("signing_keys", "k:short", "SIGNING_KEYS"),
    ] {
        let mut v = serde_json::to_value(serde_json::json!({
            "signing_keys": "k:0123456789abcdef",
        }))
        .expect("json");
        v[field] = value.into();
        let s: Settings = serde_json::from_value(v).expect("parses");
        let e = s.validate().expect_err(field).to_string();
        assert!(e.contains(needle), "{field}: {e}");
    }
}

#[test]
fn durations_are_bounded() {
    let mut s = base();
    s.idempotency_ttl_secs = 0;
    let e = s.clone().validate().expect_err("ttl").to_string();
    assert!(e.contains("IDEMPOTENCY_TTL_SECS"), "{e}");
    s.idempotency_ttl_secs = 3600;
    s.relay_idle_ms = 0;
    let e = s.clone().validate().expect_err("relay").to_string();
    assert!(e.contains("RELAY_IDLE_MS"), "{e}");
    s.relay_idle_ms = 5_000;
    s.kafka_linger_ms = 1_001;
    let e = s.clone().validate().expect_err("linger").to_string();
    assert!(e.contains("KAFKA_LINGER_MS"), "{e}");
    s.kafka_linger_ms = 5;
    s.request_timeout_ms = 0;
    let e = s.clone().validate().expect_err("timeout").to_string();
    assert!(e.contains("REQUEST_TIMEOUT_MS"), "{e}");
    s.request_timeout_ms = 5_000;
    s.max_connections = 0;
    let e = s.validate().expect_err("connections").to_string();
    assert!(e.contains("MAX_CONNECTIONS"), "{e}");
}

#[test]
fn secrets_stay_out_of_debug() {
    let mut s = base();
    s.redis_url = Secret::new("redis://:hunter2@cache:6379".into());
    s.ip_hash_key = Some(Secret::new("super-secret-hash-key".into()));
    let dbg = format!("{:?}", s.validate().expect("valid"));
    for secret in ["hunter2", "0123456789abcdef", "super-secret-hash-key"] {
        assert!(!dbg.contains(secret), "{secret} leaked into Debug");
    }
}
