//! Where Redis is ([`Target`]) and the files of a TLS connection to it ([`Tls`]).

use std::path::PathBuf;

use redis::cluster::ClusterClientBuilder;
use redis::{ClientTlsConfig, RedisResult, TlsCertificates};

/// Where Redis is.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS; on a cluster
    /// only its scheme and credentials count.
    pub url: String,
    /// Seed nodes of a cluster (`host:port`); empty for a single server.
    pub cluster_nodes: Vec<String>,
    /// The files of a TLS connection (for a `rediss://` URL).
    pub tls: Tls,
}

/// The PEM files of a TLS connection to Redis (`rediss://`): the CA that signed the
/// servers' certificates (`REDIS_TLS_CA`; unset, the system's roots) and, for mutual TLS,
/// a client certificate and its key (`REDIS_TLS_CERT`, `REDIS_TLS_KEY`, both or neither).
/// The servers' names are checked against their certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// `REDIS_TLS_CA`.
    pub ca: Option<PathBuf>,
    /// `REDIS_TLS_CERT`.
    pub cert: Option<PathBuf>,
    /// `REDIS_TLS_KEY`.
    pub key: Option<PathBuf>,
}

impl Tls {
    /// The files the tools' environment names (`REDIS_TLS_CA`, `REDIS_TLS_CERT`,
    /// `REDIS_TLS_KEY`; blank counts as unset).
    pub fn from_env() -> Self {
        let path = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            ca: path("REDIS_TLS_CA"),
            cert: path("REDIS_TLS_CERT"),
            key: path("REDIS_TLS_KEY"),
        }
    }

    /// The certificates for the redis client, read from the files; `None` when no file is
    /// set. Every error names the setting.
    fn certificates(&self, url: &str) -> RedisResult<Option<TlsCertificates>> {
        if *self == Self::default() {
            return Ok(None);
        }
        if !url.starts_with("rediss://") {
            return Err(invalid(
                "REDIS_TLS_CA, REDIS_TLS_CERT and REDIS_TLS_KEY need a rediss:// REDIS_URL",
            ));
        }
        let read = |name: &str, path: &Option<PathBuf>| -> RedisResult<Option<Vec<u8>>> {
            path.as_ref()
                .map(|p| {
                    std::fs::read(p)
                        .map_err(|e| invalid(&format!("{name}: cannot read {}: {e}", p.display())))
                })
                .transpose()
        };
        let client_tls = match (
            read("REDIS_TLS_CERT", &self.cert)?,
            read("REDIS_TLS_KEY", &self.key)?,
        ) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: cert,
                client_key: key,
            }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid(
                    "REDIS_TLS_CERT and REDIS_TLS_KEY go together: set both",
                ));
            }
        };
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert: read("REDIS_TLS_CA", &self.ca)?,
        }))
    }
}

/// A configuration error of the client, `detail` its one line.
fn invalid(detail: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "redis settings",
        detail.to_owned(),
    ))
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("Target")
            .field("cluster_nodes", &self.cluster_nodes)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A single server at `url`, or the cluster seeded by `cluster_nodes` (a
    /// comma-separated `host:port` list; empty or blank for none).
    pub fn new(url: &str, cluster_nodes: &str) -> Self {
        Self {
            url: url.to_owned(),
            cluster_nodes: cluster_nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
            tls: Tls::default(),
        }
    }

    /// The same target over TLS with `tls`'s files.
    pub fn with_tls(self, tls: Tls) -> Self {
        Self { tls, ..self }
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }

    /// The URL of each seed node, with the scheme and credentials of [`Target::url`].
    pub(super) fn node_urls(&self) -> Vec<String> {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("redis", &self.url));
        let auth = rest.rsplit_once('@').map_or("", |(a, _)| a);
        let auth = if auth.is_empty() {
            String::new()
        } else {
            format!("{auth}@")
        };
        self.cluster_nodes
            .iter()
            .map(|n| format!("{scheme}://{auth}{n}"))
            .collect()
    }

    /// A client for a single server.
    pub(super) fn client(&self) -> RedisResult<redis::Client> {
        match self.tls.certificates(&self.url)? {
            Some(certs) => redis::Client::build_with_tls(self.url.as_str(), certs),
            None => redis::Client::open(self.url.as_str()),
        }
    }

    /// A builder of a cluster client, seeded by the nodes.
    pub(super) fn cluster_builder(&self) -> RedisResult<ClusterClientBuilder> {
        let builder = ClusterClientBuilder::new(self.node_urls());
        Ok(match self.tls.certificates(&self.url)? {
            Some(certs) => builder.certs(certs),
            None => builder,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_borrow_the_urls_credentials() {
        let t = Target::new(
            "redis://api:s3cret@ignored:6379",
            " 10.0.0.1:7000, 10.0.0.2:7001 ,",
        );
        assert!(t.is_cluster());
        assert_eq!(
            t.node_urls(),
            [
                "redis://api:s3cret@10.0.0.1:7000",
                "redis://api:s3cret@10.0.0.2:7001"
            ]
        );
        assert!(!format!("{t:?}").contains("s3cret"));
        let single = Target::new("redis://127.0.0.1:6379", "");
        assert!(!single.is_cluster());
        assert_eq!(
            Target::new("redis://h:1", "n:2").node_urls(),
            ["redis://n:2"]
        );
    }
}
