//! PostgreSQL: the migrations (`sql/V{n}__{name}.sql`, embedded at build time) and
//! connections, with TLS as `DATABASE_URL` asks for it ([`tls`]).

pub mod tls;

use tokio_postgres_rustls::MakeRustlsConnect;

pub use tls::SslMode;

mod embedded {
    refinery::embed_migrations!("../sql");
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `DATABASE_URL` or a file it names is wrong (the message names the setting, never a
    /// secret).
    #[error("{0}")]
    Setting(String),
    /// The server refused or could not be reached.
    #[error("PostgreSQL (DATABASE_URL, sslmode={mode})")]
    Postgres {
        /// The `sslmode` asked for.
        mode: &'static str,
        /// What failed.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// A `DATABASE_URL` read for connecting: the connection's settings and the TLS its
/// `sslmode` and `sslrootcert` (or `PGSSLROOTCERT`) ask for.
#[derive(Clone)]
pub struct Target {
    /// The settings, `sslmode` and `sslrootcert` taken out.
    pub config: tokio_postgres::Config,
    /// What `sslmode` asks for (`prefer` when absent).
    pub mode: SslMode,
    /// The TLS connector for it.
    pub tls: MakeRustlsConnect,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio_postgres::Config's Debug redacts the password.
        f.debug_struct("Target")
            .field("config", &self.config)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Reads `url`, a URL (`postgres://…?sslmode=…`) or key-value (`host=… sslmode=…`)
    /// connection string.
    pub fn parse(url: &str) -> Result<Self, ConnectError> {
        let (rest, mode, root) = split_tls(url);
        let mode = mode.as_deref().map_or(Ok(SslMode::Prefer), SslMode::parse);
        let mode = mode.map_err(ConnectError::Setting)?;
        let root = root.or_else(|| {
            std::env::var("PGSSLROOTCERT")
                .ok()
                .filter(|r| !r.is_empty())
        });
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| ConnectError::Setting(format!("DATABASE_URL: {e}")))?;
        config.ssl_mode(mode.wire());
        let tls = tls::connector(mode, root.as_deref()).map_err(ConnectError::Setting)?;
        Ok(Self { config, mode, tls })
    }

    /// A connection, driven by a task of its own (a broken connection ends that task;
    /// the next query on the client fails).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, ConnectError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|source| self.failed(source))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(client)
    }

    /// `source`, said with the `sslmode` it happened under.
    pub fn failed(&self, source: tokio_postgres::Error) -> ConnectError {
        ConnectError::Postgres {
            mode: self.mode.as_str(),
            source,
        }
    }
}

/// `url` without its `sslmode` and `sslrootcert`, and their values.
fn split_tls(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    let mut take = |key: &str, value: String| match key {
        "sslmode" => mode = Some(value),
        "sslrootcert" => root = Some(value),
        _ => {}
    };
    let tls = |key: &str| key == "sslmode" || key == "sslrootcert";
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), None, None);
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if tls(key) {
                take(key, percent_decoded(value));
            } else {
                kept.push(pair);
            }
        }
        let rest = match kept.is_empty() {
            true => base.to_owned(),
            false => format!("{base}?{}", kept.join("&")),
        };
        return (rest, mode, root);
    }
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        match word.split_once('=') {
            Some((key, value)) if tls(key) => take(key, value.trim_matches('\'').to_owned()),
            _ => kept.push(word),
        }
    }
    (kept.join(" "), mode, root)
}

/// `%XX` escapes of a URL's query value decoded (`+` stays).
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Applies pending migrations. Concurrent callers (several workers starting at once,
/// `flashctl migrate`) serialize on an advisory lock. Returns how many were applied.
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let target = Target::parse(url)?;
    let (mut client, connection) = target
        .config
        .connect(target.tls.clone())
        .await
        .map_err(|e| target.failed(e))?;
    let conn_task = tokio::spawn(connection);
    const LOCK: i64 = 0x666c_6173_6873_616c; // "flashsal"
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    drop(client);
    let _ = conn_task.await;
    let applied = report?.applied_migrations().len();
    Ok(applied)
}

/// A connection to `url` ([`Target::parse`], [`Target::connect`]).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, ConnectError> {
    Target::parse(url)?.connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_come_out_of_either_form() {
        let (rest, mode, root) = split_tls(
            "postgres://u:p@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u:p@db:5432/x?application_name=a");
        assert_eq!(
            (mode.as_deref(), root.as_deref()),
            (Some("verify-full"), Some("/etc/ca.pem"))
        );
        let (rest, mode, root) = split_tls("host=db user=u sslmode=require sslrootcert='/ca.pem'");
        assert_eq!(rest, "host=db user=u");
        assert_eq!(
            (mode.as_deref(), root.as_deref()),
            (Some("require"), Some("/ca.pem"))
        );
        assert_eq!(split_tls("postgres://db/x").0, "postgres://db/x");
    }

    #[test]
    fn bad_settings_name_the_setting_and_no_secret() {
        let url = "postgres://app:s3cret@db/x?sslmode=verify-full";
        let err = Target::parse(url).map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains("sslrootcert") && !err.contains("s3cret"),
            "{err}"
        );
        let err = Target::parse("postgres://app:s3cret@db/x?sslmode=allow")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sslmode=allow") && !err.contains("s3cret"),
            "{err}"
        );
        let url = "postgres://app:s3cret@db/x?sslmode=verify-ca&sslrootcert=/nonexistent.pem";
        let err = Target::parse(url).map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains("sslrootcert /nonexistent.pem") && !err.contains("s3cret"),
            "{err}"
        );
        let target =
            Target::parse("postgres://app:s3cret@db/x?sslmode=require").map_err(|e| e.to_string());
        assert!(!format!("{target:?}").contains("s3cret"));
    }
}
