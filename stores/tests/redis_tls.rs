//! TLS to Redis for real, on the TLS-only server of `deploy/local/up.sh --secure`
//! (`SECURE_REDIS_URL`, its CAs in `TLS_DIR`): a `rediss://` URL with the CA connects and
//! checks the server's name; plain text, another CA, a name the certificate does not cover
//! and a wrong password are each refused, with no secret in the error.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test may expect

use std::path::PathBuf;

use stores::redis::{Target, Tls, connect};

/// The secured server's URL; the test command starts it (`up.sh --secure`).
fn secure_url() -> String {
    std::env::var("SECURE_REDIS_URL").expect(
        "SECURE_REDIS_URL: run deploy/local/up.sh --secure and source .local/env (deploy/local/test.sh does)",
    )
}

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(
        std::env::var("TLS_DIR").expect("TLS_DIR: written by deploy/local/up.sh --secure"),
    )
    .join(name)
}

fn with_ca(url: &str, ca: &str) -> Target {
    Target::new(url, "").with_tls(Tls {
        ca: Some(tls_file(ca)),
        ..Tls::default()
    })
}

async fn ping(target: &Target) -> anyhow::Result<String> {
    let mut conn = connect(target).await?;
    Ok(redis::cmd("PING").query_async(&mut conn).await?)
}

/// Refused, with neither password nor key material in the message.
async fn refusal(target: &Target) -> String {
    let e = ping(target).await.expect_err("refused");
    let line = format!("{e:#}");
    assert!(!line.contains("flashsale"), "{line}");
    line
}

#[tokio::test]
async fn rediss_with_the_ca_connects() -> anyhow::Result<()> {
    assert_eq!(ping(&with_ca(&secure_url(), "ca.pem")).await?, "PONG");
    // Mutual TLS: a client certificate the CA signed.
    let target = Target::new(&secure_url(), "").with_tls(Tls {
        ca: Some(tls_file("ca.pem")),
        cert: Some(tls_file("client.pem")),
        key: Some(tls_file("client.key")),
    });
    assert_eq!(ping(&target).await?, "PONG");
    Ok(())
}

#[tokio::test]
async fn plain_text_is_refused() {
    let plain = secure_url().replacen("rediss://", "redis://", 1);
    refusal(&Target::new(&plain, "")).await;
}

#[tokio::test]
async fn another_ca_is_refused() {
    let line = refusal(&with_ca(&secure_url(), "other-ca.pem")).await;
    assert!(line.to_lowercase().contains("certificate"), "{line}");
}

#[tokio::test]
async fn a_name_the_certificate_does_not_cover_is_refused() {
    // The certificate names localhost, 127.0.0.1 and ::1; "127.0.0.2" reaches the same
    // server under a name it does not cover.
    let url = secure_url().replacen("localhost", "127.0.0.2", 1);
    refusal(&with_ca(&url, "ca.pem")).await;
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let url = secure_url().replacen(":flashsale@", ":wrong-s3cret@", 1);
    let line = refusal(&with_ca(&url, "ca.pem")).await;
    assert!(!line.contains("s3cret"), "{line}");
}

#[tokio::test]
async fn tls_files_need_rediss_and_name_their_setting() {
    let plain = secure_url().replacen("rediss://", "redis://", 1);
    let line = refusal(&with_ca(&plain, "ca.pem")).await;
    assert!(line.contains("REDIS_TLS_CA"), "{line}");
    let missing = Target::new(&secure_url(), "").with_tls(Tls {
        ca: Some(tls_file("no-such-ca.pem")),
        ..Tls::default()
    });
    let line = refusal(&missing).await;
    assert!(
        line.contains("REDIS_TLS_CA") && line.contains("no-such-ca.pem"),
        "{line}"
    );
    let half = Target::new(&secure_url(), "").with_tls(Tls {
        cert: Some(tls_file("server.pem")),
        ..Tls::default()
    });
    assert!(refusal(&half).await.contains("REDIS_TLS_KEY"));
}
