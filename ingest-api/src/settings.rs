//! `ingest-api` settings: environment variables (CONTRACT.md), optionally a TOML file.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use shared::Secret;
use shared::keys::Keyspace;
use shared::settings::SettingsError;
use shared::signing::Keyring;

/// Where the process runs; stricter checks apply outside development.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A developer's machine or CI.
    #[default]
    Development,
    /// A production-like rehearsal.
    Staging,
    /// The real sale.
    Production,
}

/// Everything `ingest-api` reads at start-up.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Public listener for `/order`.
    #[serde(default = "defaults::listen_addr")]
    pub listen_addr: SocketAddr,
    /// Admin listener for `/healthz`, `/readyz`, `/metrics`.
    #[serde(default = "defaults::admin_addr")]
    pub admin_addr: SocketAddr,
    /// Redis holding sales, limits and the outbox.
    #[serde(default = "defaults::redis_url")]
    pub redis_url: Secret<String>,
    /// Prefix of every Redis key (lets deployments or tests share a server).
    #[serde(default = "defaults::redis_namespace")]
    pub redis_namespace: String,
    /// Redis command timeout; past it an order fails closed with 503.
    #[serde(default = "defaults::redis_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// Kafka bootstrap servers, comma separated.
    #[serde(default = "defaults::kafka_brokers")]
    pub kafka_brokers: String,
    /// Topic accepted orders are published to.
    #[serde(default = "defaults::kafka_topic")]
    pub kafka_topic: String,
    /// How long a request waits for Kafka's acknowledgement before answering 503.
    #[serde(default = "defaults::kafka_publish_timeout_ms")]
    pub kafka_publish_timeout_ms: u64,
    /// `id:secret[,id:secret…]` HMAC keys.
    pub signing_keys: Secret<String>,
    /// Accepted clock skew of `X-Request-Time`, both ways.
    #[serde(default = "defaults::signature_window_ms")]
    pub signature_window_ms: u64,
    /// How long an accepted order's answer is kept for replay.
    #[serde(default = "defaults::idempotency_ttl_secs")]
    pub idempotency_ttl_secs: u64,
    /// Deployment stage.
    #[serde(default)]
    pub environment: Environment,
    /// HTTP worker threads (default: one per core).
    #[serde(default)]
    pub http_workers: Option<usize>,
    /// Seconds an outbox entry may stay unconfirmed before the relay republishes it.
    #[serde(default = "defaults::relay_idle_ms")]
    pub relay_idle_ms: u64,
}

mod defaults {
    use super::*;
    pub fn listen_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }
    pub fn admin_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9090))
    }
    pub fn redis_url() -> Secret<String> {
        Secret::new("redis://127.0.0.1:6379".into())
    }
    pub fn redis_namespace() -> String {
        "fs".into()
    }
    pub fn redis_timeout_ms() -> u64 {
        150
    }
    pub fn kafka_brokers() -> String {
        "127.0.0.1:9092".into()
    }
    pub fn kafka_topic() -> String {
        "orders".into()
    }
    pub fn kafka_publish_timeout_ms() -> u64 {
        5_000
    }
    pub fn signature_window_ms() -> u64 {
        30_000
    }
    pub fn idempotency_ttl_secs() -> u64 {
        24 * 3600
    }
    pub fn relay_idle_ms() -> u64 {
        5_000
    }
}

/// Settings after validation: parsed keyring, typed durations.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The raw settings.
    pub raw: Settings,
    /// Signing keys by id.
    pub keyring: Keyring,
    /// Key namespace.
    pub keyspace: Keyspace,
}

impl Settings {
    /// Loads from the environment (and `CONFIG_FILE`).
    pub fn load() -> Result<Validated, SettingsError> {
        shared::settings::load::<Settings>()?.validate()
    }

    /// Checks what serde cannot.
    pub fn validate(self) -> Result<Validated, SettingsError> {
        let invalid = |m: String| Err(SettingsError::Invalid(m));
        let keyring = match Keyring::parse(self.signing_keys.expose()) {
            Ok(k) => k,
            Err(e) => return invalid(e.to_string()),
        };
        if self.redis_namespace.is_empty() || self.redis_namespace.contains(['{', '}', ' ']) {
            return invalid("REDIS_NAMESPACE must be non-empty, without braces or spaces".into());
        }
        if self.kafka_topic.is_empty() {
            return invalid("KAFKA_TOPIC must not be empty".into());
        }
        if self.signature_window_ms == 0 || self.signature_window_ms > 300_000 {
            return invalid("SIGNATURE_WINDOW_MS must be 1..=300000".into());
        }
        if self.redis_timeout_ms == 0 {
            return invalid("REDIS_TIMEOUT_MS must be positive".into());
        }
        let keyspace = Keyspace::new(self.redis_namespace.clone());
        Ok(Validated {
            raw: self,
            keyring,
            keyspace,
        })
    }

    /// Redis command timeout.
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }
}
