//! `inventory-worker` settings: environment variables (the table in
//! `docs/configuration.md`), optionally a TOML file.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use shared::Secret;
use shared::settings::SettingsError;

/// Everything the worker reads at start-up.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Admin listener for `/healthz`, `/readyz`, `/metrics`.
    #[serde(default = "defaults::admin_addr")]
    pub admin_addr: SocketAddr,
    /// PostgreSQL, e.g. `postgres://worker@127.0.0.1:5432/flashsale`.
    #[serde(default = "defaults::database_url")]
    pub database_url: Secret<String>,
    /// Kafka bootstrap servers.
    #[serde(default = "defaults::kafka_brokers")]
    pub kafka_brokers: String,
    /// Topic of accepted orders.
    #[serde(default = "defaults::kafka_topic")]
    pub kafka_topic: String,
    /// Consumer group; every worker instance of one deployment uses the same.
    #[serde(default = "defaults::kafka_group")]
    pub kafka_group: String,
    /// Where poison messages go.
    #[serde(default = "defaults::kafka_dlq_topic")]
    pub kafka_dlq_topic: String,
    /// Optional Redis, only to mark orders `persisted` for `GET /order/{id}`.
    #[serde(default)]
    pub redis_url: Option<Secret<String>>,
    /// Seed nodes (`host:port,…`) of a Redis Cluster (same as the API's); when set, the
    /// cluster is used (with or without `REDIS_URL`, which then only lends credentials).
    #[serde(default)]
    pub redis_cluster_nodes: String,
    /// Prefix of Redis keys (same as the API's).
    #[serde(default = "defaults::redis_namespace")]
    pub redis_namespace: String,
    /// How long an order's status record is kept (same as the API's).
    #[serde(default = "defaults::order_status_ttl_secs")]
    pub order_status_ttl_secs: u64,
    /// Most messages written in one transaction.
    #[serde(default = "defaults::batch_max")]
    pub batch_max: usize,
    /// Longest wait to fill a batch once its first message arrived.
    #[serde(default = "defaults::batch_linger_ms")]
    pub batch_linger_ms: u64,
    /// Time allowed to finish the batch in hand after SIGTERM.
    #[serde(default = "defaults::shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// PostgreSQL connections.
    #[serde(default = "defaults::db_pool_size")]
    pub db_pool_size: usize,
    /// Apply pending migrations at start-up (turn off when a separate job migrates as the
    /// schema owner and the worker runs with a role that may not change the schema).
    #[serde(default = "defaults::yes")]
    pub migrate_on_start: bool,
}

mod defaults {
    use super::*;
    pub fn admin_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9091))
    }
    pub fn database_url() -> Secret<String> {
        Secret::new(shared::defaults::DATABASE_URL.into())
    }
    pub fn kafka_brokers() -> String {
        shared::defaults::KAFKA_BROKERS.into()
    }
    pub fn kafka_topic() -> String {
        shared::defaults::KAFKA_TOPIC.into()
    }
    pub fn kafka_group() -> String {
        shared::defaults::KAFKA_GROUP.into()
    }
    pub fn kafka_dlq_topic() -> String {
        shared::defaults::KAFKA_DLQ_TOPIC.into()
    }
    pub fn redis_namespace() -> String {
        shared::defaults::REDIS_NAMESPACE.into()
    }
    pub fn order_status_ttl_secs() -> u64 {
        shared::status::DEFAULT_TTL_SECS
    }
    pub fn batch_max() -> usize {
        2_000
    }
    pub fn batch_linger_ms() -> u64 {
        20
    }
    pub fn shutdown_grace_ms() -> u64 {
        10_000
    }
    pub fn db_pool_size() -> usize {
        4
    }
    pub fn yes() -> bool {
        true
    }
}

/// The secret settings, each of which may come from the file `<NAME>_FILE` names.
pub const SECRETS: &[&str] = &["DATABASE_URL", "REDIS_URL"];

impl Settings {
    /// Loads and validates.
    pub fn load() -> Result<Self, SettingsError> {
        shared::settings::load::<Settings>(SECRETS)?.validate()
    }

    /// Checks what serde cannot.
    pub fn validate(self) -> Result<Self, SettingsError> {
        let invalid = |m: &str| Err(SettingsError::Invalid(m.to_owned()));
        if !(1..=10_000).contains(&self.batch_max) {
            return invalid("BATCH_MAX must be 1..=10000");
        }
        if self.kafka_topic.is_empty() || self.kafka_dlq_topic.is_empty() {
            return invalid("KAFKA_TOPIC and KAFKA_DLQ_TOPIC must not be empty");
        }
        if self.kafka_topic == self.kafka_dlq_topic {
            return invalid("KAFKA_DLQ_TOPIC must differ from KAFKA_TOPIC");
        }
        if self.db_pool_size == 0 {
            return invalid("DB_POOL_SIZE must be positive");
        }
        if !(60..=30 * 24 * 3600).contains(&self.order_status_ttl_secs) {
            return invalid("ORDER_STATUS_TTL_SECS must be 60..=2592000");
        }
        // The connection string and its TLS (sslmode, sslrootcert): the message names the
        // setting, never the password.
        if let Err(e) = stores::postgres::Target::parse(self.database_url.expose()) {
            return invalid(&e.to_string());
        }
        Ok(self)
    }

    /// Batch linger as a duration.
    pub fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }
}
