//! The `ingest-api` binary refuses bad configuration with exit code 64 and a message
//! that names the setting, before touching any network.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::process::Command;

fn run(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingest-api"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_exit_64_and_name_the_setting() {
    let (code, err) = run(&[]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("signing_keys"), "{err}");

    let (code, err) = run(&[
        ("SIGNING_KEYS", "k:0123456789abcdef"),
        ("ENVIRONMENT", "production"),
    ]);
    assert_eq!(code, Some(64));
    assert!(err.contains("ALLOWED_ORIGINS"), "{err}");

    let (code, err) = run(&[
        ("SIGNING_KEYS", "k:0123456789abcdef"),
        ("LISTEN_ADDR", "not-an-address"),
    ]);
    assert_eq!(code, Some(64));
    assert!(err.to_lowercase().contains("listen_addr"), "{err}");

    let (code, err) = run(&[
        ("SIGNING_KEYS", "k:0123456789abcdef"),
        ("RATE_LIMIT_ENABLED", "maybe"),
    ]);
    assert_eq!(code, Some(64));
    assert!(err.to_lowercase().contains("rate_limit_enabled"), "{err}");
}

/// A secret setting may come from a file (`<NAME>_FILE`, Docker and Kubernetes secrets): read
/// without its line end, refused next to the setting itself, and its content never in a
/// message.
#[test]
fn settings_come_from_files() {
    let dir = std::env::temp_dir().join(format!("ingest-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let keys = dir.join("signing-keys");
    std::fs::write(&keys, "k:0123456789abcdef\n").expect("written");
    let keys = keys.display().to_string();
    // The keys from the file pass; the next bad setting is the one named.
    let (code, err) = run(&[
        ("SIGNING_KEYS_FILE", &keys),
        ("LISTEN_ADDR", "not-an-address"),
    ]);
    assert_eq!(code, Some(64));
    assert!(err.to_lowercase().contains("listen_addr"), "{err}");

    let both = [
        ("SIGNING_KEYS_FILE", keys.as_str()),
        ("SIGNING_KEYS", "k:0123456789abcdef"),
    ];
    let (code, err) = run(&both);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("SIGNING_KEYS and SIGNING_KEYS_FILE are both set"),
        "{err}"
    );

    let (code, err) = run(&[("SIGNING_KEYS_FILE", "/nonexistent/signing-keys")]);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("SIGNING_KEYS_FILE: cannot read /nonexistent/signing-keys"),
        "{err}"
    );

    let bad = dir.join("bad-keys");
    std::fs::write(&bad, "k:s3cr\n").expect("written");
    let (code, err) = run(&[("SIGNING_KEYS_FILE", &bad.display().to_string())]);
    assert_eq!(code, Some(64));
    assert!(!err.contains("s3cr"), "no secret in the message: {err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A misconfigured store connection ends the start with one line naming the setting: a
/// librdkafka property passed through (`KAFKA_PROPERTY_<NAME>`) that the client refuses,
/// and Redis TLS files next to a plain-text `REDIS_URL`.
#[test]
fn store_settings_are_named_when_refused() {
    let (code, err) = run(&[
        ("SIGNING_KEYS", "k:0123456789abcdef"),
        ("KAFKA_PROPERTY_SECURITY_PROTOCOL", "no-such-protocol"),
    ]);
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(err.contains("security.protocol"), "{err}");

    let (code, err) = run(&[
        ("SIGNING_KEYS", "k:0123456789abcdef"),
        ("REDIS_URL", "redis://:s3cret@127.0.0.1:1"),
        ("REDIS_TLS_CA", "/nonexistent/ca.pem"),
    ]);
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(
        err.contains("REDIS_TLS_CA") && err.contains("rediss://"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}
