//! TLS to PostgreSQL for real, on the TLS-only cluster of `deploy/local/up.sh --secure`
//! (`SECURE_DATABASE_URL`, its CAs in `TLS_DIR`): `verify-full` connects encrypted; plain
//! text, another CA, a name the certificate does not cover and a wrong password are each
//! refused with one line that names the setting and holds no secret.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test may expect

use stores::postgres::{ConnectError, Target, connect};

/// The secured cluster's URL; the test command starts it (`up.sh --secure`).
fn secure_url() -> String {
    std::env::var("SECURE_DATABASE_URL").expect(
        "SECURE_DATABASE_URL: run deploy/local/up.sh --secure and source .local/env (deploy/local/test.sh does)",
    )
}

fn tls_dir() -> String {
    std::env::var("TLS_DIR").expect("TLS_DIR: written by deploy/local/up.sh --secure")
}

/// The secure URL with `sslmode` and `sslrootcert` replaced.
fn with_tls(mode: &str, root: Option<&str>) -> String {
    let base = secure_url();
    let base = base
        .split_once('?')
        .map_or(base.as_str(), |(b, _)| b)
        .to_owned();
    match root {
        Some(root) => format!("{base}?sslmode={mode}&sslrootcert={root}"),
        None => format!("{base}?sslmode={mode}"),
    }
}

/// One line, no password in it.
fn refusal(result: Result<tokio_postgres::Client, ConnectError>) -> String {
    let e = result.map(|_| ()).expect_err("refused");
    let line = format!("{:#}", anyhow::Error::from(e));
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(
        !line.contains("flashsale:flashsale") && !line.contains("s3cret"),
        "{line}"
    );
    line
}

#[tokio::test]
async fn verify_full_connects_encrypted() -> anyhow::Result<()> {
    let client = connect(&secure_url()).await?;
    let (ssl, version): (bool, String) = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))?;
    assert!(ssl, "{version}");
    // require without a CA encrypts too (libpq: unchecked).
    let client = connect(&with_tls("require", None)).await?;
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?
        .get(0);
    assert!(ssl);
    // The migrations run over it, as the worker's do at start-up.
    stores::migrate(&secure_url()).await?;
    Ok(())
}

#[tokio::test]
async fn plain_text_is_refused() {
    let line = refusal(connect(&with_tls("disable", None)).await);
    assert!(
        line.contains("sslmode=disable") && line.contains("no encryption"),
        "{line}"
    );
}

#[tokio::test]
async fn another_ca_is_refused_under_verify_full() {
    let other = format!("{}/other-ca.pem", tls_dir());
    let line = refusal(connect(&with_tls("verify-full", Some(&other))).await);
    assert!(
        line.contains("sslmode=verify-full") && line.contains("UnknownIssuer"),
        "{line}"
    );
}

#[tokio::test]
async fn a_name_the_certificate_does_not_cover_is_refused_under_verify_full_only() {
    let ca = format!("{}/ca.pem", tls_dir());
    let port = Target::parse(&secure_url()).unwrap().config.get_ports()[0];
    let at = |mode: &str| {
        format!(
            "host=db.example.invalid hostaddr=127.0.0.1 port={port} user=flashsale password=flashsale \
             dbname=flashsale sslmode={mode} sslrootcert={ca}"
        )
    };
    let line = refusal(connect(&at("verify-full")).await);
    assert!(line.contains("not valid for name"), "{line}");
    connect(&at("verify-ca"))
        .await
        .expect("verify-ca checks the chain only");
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let url = secure_url().replacen("flashsale:flashsale@", "flashsale:s3cret@", 1);
    let line = refusal(connect(&url).await);
    assert!(line.contains("password authentication failed"), "{line}");
}
