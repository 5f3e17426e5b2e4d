//! `ingest-api` settings: environment variables (the table in `docs/configuration.md`),
//! optionally a TOML file.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use shared::Secret;
use shared::auth::signing::Keyring;
use shared::auth::webhook::WebhookSecrets;
use shared::client::Pseudonymizer;
use shared::keys::Keyspace;
use shared::limits::LimitSpec;
use shared::room::TokenKeys;
use shared::settings::SettingsError;

use crate::order::front_door::TrustedProxies;

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
    /// Seed nodes (`host:port,…`) of a Redis Cluster; when set, the cluster is used and
    /// `REDIS_URL` only lends its credentials.
    #[serde(default)]
    pub redis_cluster_nodes: String,
    /// Replicas that must hold an accepted admission before it is published and answered
    /// `202`; unset: 1 on a cluster with replicas, 0 otherwise.
    #[serde(default)]
    pub redis_min_replicas: Option<u32>,
    /// Longest `WAIT` for those replicas; past it the answer is 503 with the outcome
    /// unknown. Below `REDIS_TIMEOUT_MS`.
    #[serde(default = "defaults::redis_replica_wait_ms")]
    pub redis_replica_wait_ms: u64,
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
    /// How long the producer waits to batch orders into one request to Kafka
    /// (librdkafka's `linger.ms`): fewer, larger requests cost the broker and the API
    /// less CPU per order, at up to this much latency on each accepted order.
    #[serde(default = "defaults::kafka_linger_ms")]
    pub kafka_linger_ms: u64,
    /// How long an order's status record (`GET /order/{id}`) is kept (same as the
    /// worker's).
    #[serde(default = "defaults::order_status_ttl_secs")]
    pub order_status_ttl_secs: u64,
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
    /// Milliseconds an outbox entry may stay unconfirmed before the relay republishes it.
    #[serde(default = "defaults::relay_idle_ms")]
    pub relay_idle_ms: u64,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed; empty = none.
    #[serde(default)]
    pub trusted_proxies: String,
    /// Browser origins allowed by CORS (comma separated); required outside development.
    #[serde(default)]
    pub allowed_origins: String,
    /// Rate limits on or off; `false` is refused in production.
    #[serde(default = "defaults::yes")]
    pub rate_limit_enabled: bool,
    /// Per-network limit of this instance when the Redis limits are not consulted.
    #[serde(default = "defaults::fallback_ip_limit")]
    pub fallback_ip_limit: String,
    /// Key of the pseudonymous network/device hashes stored with orders; required
    /// outside development.
    #[serde(default)]
    pub ip_hash_key: Option<Secret<String>>,
    /// Longest wait for a request's head, and again for its body; a connection that
    /// misses either is answered 408 and closed.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Most open connections on the public port, all workers together; past it new
    /// connections wait in the listen queue until one closes.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Secrets of the payment webhook (`whsec_<base64>[,…]`, Standard Webhooks); unset:
    /// `POST /webhooks/payment` refuses every call.
    #[serde(default)]
    pub payment_webhook_secrets: Option<Secret<String>>,
    /// Keys of the waiting room's tickets and admissions (`kid:secret[,…]`, secrets of 32
    /// bytes or more; the first signs, all verify); required outside development.
    #[serde(default)]
    pub room_token_keys: Option<Secret<String>>,
}

/// `KAFKA_LINGER_MS` when unset: librdkafka's own default, and the Java producer's since
/// Kafka 4.0.
pub const DEFAULT_KAFKA_LINGER_MS: u64 = 5;

mod defaults {
    use super::*;
    pub fn listen_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }
    pub fn admin_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9090))
    }
    pub fn redis_url() -> Secret<String> {
        Secret::new(shared::defaults::REDIS_URL.into())
    }
    pub fn redis_namespace() -> String {
        shared::defaults::REDIS_NAMESPACE.into()
    }
    pub fn redis_timeout_ms() -> u64 {
        150
    }
    pub fn redis_replica_wait_ms() -> u64 {
        50
    }
    pub fn kafka_brokers() -> String {
        shared::defaults::KAFKA_BROKERS.into()
    }
    pub fn kafka_topic() -> String {
        shared::defaults::KAFKA_TOPIC.into()
    }
    pub fn kafka_publish_timeout_ms() -> u64 {
        5_000
    }
    pub fn kafka_linger_ms() -> u64 {
        super::DEFAULT_KAFKA_LINGER_MS
    }
    pub fn order_status_ttl_secs() -> u64 {
        shared::status::DEFAULT_TTL_SECS
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
    pub fn yes() -> bool {
        true
    }
    pub fn fallback_ip_limit() -> String {
        "10/s:20".into()
    }
    pub fn request_timeout_ms() -> u64 {
        5_000
    }
    pub fn max_connections() -> usize {
        10_000
    }
}

/// The pseudonym key used in development when `IP_HASH_KEY` is not set.
const DEVELOPMENT_IP_HASH_KEY: &str = "development-only-ip-hash-key";

/// The room's token key used in development when `ROOM_TOKEN_KEYS` is not set.
const DEVELOPMENT_ROOM_TOKEN_KEYS: &str = "dev:development-only-room-token-key-0123456789";

/// Settings after validation: parsed keyring, typed durations.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The raw settings.
    pub raw: Settings,
    /// Signing keys by id.
    pub keyring: Keyring,
    /// Key namespace.
    pub keyspace: Keyspace,
    /// Parsed `TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
    /// Parsed `ALLOWED_ORIGINS` (empty in development means any origin).
    pub allowed_origins: Vec<String>,
    /// Parsed `FALLBACK_IP_LIMIT`.
    pub fallback_ip_limit: LimitSpec,
    /// Keyed hashes for order rows.
    pub pseudonymizer: Pseudonymizer,
    /// Parsed `PAYMENT_WEBHOOK_SECRETS`.
    pub webhook_secrets: WebhookSecrets,
    /// Parsed `ROOM_TOKEN_KEYS`.
    pub room_tokens: TokenKeys,
}

/// The secret settings, each of which may come from the file `<NAME>_FILE` names.
#[rustfmt::skip]
pub const SECRETS: &[&str] =
    &["REDIS_URL", "SIGNING_KEYS", "IP_HASH_KEY", "PAYMENT_WEBHOOK_SECRETS", "ROOM_TOKEN_KEYS"];

impl Settings {
    /// Loads from the environment (and `CONFIG_FILE`).
    pub fn load() -> Result<Validated, SettingsError> {
        shared::settings::load::<Settings>(SECRETS)?.validate()
    }

    /// Checks what serde cannot.
    pub fn validate(self) -> Result<Validated, SettingsError> {
        self.validated().map_err(SettingsError::Invalid)
    }

    fn validated(self) -> Result<Validated, String> {
        let keyring = Keyring::parse(self.signing_keys.expose()).map_err(|e| e.to_string())?;
        self.check_ranges()?;
        let allowed_origins = self.allowed_origins()?;
        let fallback_ip_limit = self
            .fallback_ip_limit
            .parse::<LimitSpec>()
            .map_err(|e| format!("FALLBACK_IP_LIMIT: {e}"))?;
        if self.environment == Environment::Production && !self.rate_limit_enabled {
            return Err("RATE_LIMIT_ENABLED=false is refused in production".into());
        }
        let webhook_secrets = match &self.payment_webhook_secrets {
            Some(raw) => WebhookSecrets::parse(raw.expose()).map_err(|e| e.to_string())?,
            None => WebhookSecrets::default(),
        };
        let pseudonymizer = self.pseudonymizer()?;
        Ok(Validated {
            room_tokens: self.room_tokens()?,
            trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)?,
            pseudonymizer,
            keyspace: Keyspace::new(self.redis_namespace.clone()),
            raw: self,
            keyring,
            allowed_origins,
            fallback_ip_limit,
            webhook_secrets,
        })
    }

    /// Names, numbers and the relations between them.
    fn check_ranges(&self) -> Result<(), String> {
        let within = |ok: bool, message: &str| if ok { Ok(()) } else { Err(message.to_owned()) };
        within(
            !self.redis_namespace.is_empty() && !self.redis_namespace.contains(['{', '}', ' ']),
            "REDIS_NAMESPACE must be non-empty, without braces or spaces",
        )?;
        within(
            !self.kafka_topic.is_empty(),
            "KAFKA_TOPIC must not be empty",
        )?;
        within(
            (1..=300_000).contains(&self.signature_window_ms),
            "SIGNATURE_WINDOW_MS must be 1..=300000",
        )?;
        within(
            self.redis_timeout_ms > 0,
            "REDIS_TIMEOUT_MS must be positive",
        )?;
        within(
            self.redis_replica_wait_ms > 0 && self.redis_replica_wait_ms < self.redis_timeout_ms,
            "REDIS_REPLICA_WAIT_MS must be positive and below REDIS_TIMEOUT_MS",
        )?;
        within(
            (60..=7 * 24 * 3600).contains(&self.idempotency_ttl_secs),
            "IDEMPOTENCY_TTL_SECS must be 60..=604800 (retries must find the answer)",
        )?;
        within(
            (100..=600_000).contains(&self.relay_idle_ms),
            "RELAY_IDLE_MS must be 100..=600000",
        )?;
        within(
            (1..=60_000).contains(&self.kafka_publish_timeout_ms),
            "KAFKA_PUBLISH_TIMEOUT_MS must be 1..=60000",
        )?;
        within(
            self.kafka_linger_ms <= 1_000,
            "KAFKA_LINGER_MS must be 0..=1000",
        )?;
        within(
            (100..=60_000).contains(&self.request_timeout_ms),
            "REQUEST_TIMEOUT_MS must be 100..=60000",
        )?;
        within(
            (1..=1_000_000).contains(&self.max_connections),
            "MAX_CONNECTIONS must be 1..=1000000",
        )?;
        within(
            (60..=30 * 24 * 3600).contains(&self.order_status_ttl_secs),
            "ORDER_STATUS_TTL_SECS must be 60..=2592000",
        )
    }

    /// Parsed `ALLOWED_ORIGINS`: origins only, and at least one outside development.
    fn allowed_origins(&self) -> Result<Vec<String>, String> {
        let origins: Vec<String> = self
            .allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = origins
            .iter()
            .find(|o| !(o.starts_with("https://") || o.starts_with("http://")))
        {
            return Err(format!(
                "ALLOWED_ORIGINS entry {bad:?} must be an origin such as https://shop.example.com"
            ));
        }
        if self.environment != Environment::Development && origins.is_empty() {
            return Err(format!(
                "ALLOWED_ORIGINS must list the allowed browser origins in {:?}",
                self.environment
            ));
        }
        Ok(origins)
    }

    /// The keys of `ROOM_TOKEN_KEYS` (required outside development).
    fn room_tokens(&self) -> Result<TokenKeys, String> {
        let raw = match &self.room_token_keys {
            Some(k) => k.expose().as_str(),
            None if self.environment != Environment::Development => {
                return Err(format!(
                    "ROOM_TOKEN_KEYS is required in {:?}",
                    self.environment
                ));
            }
            None => DEVELOPMENT_ROOM_TOKEN_KEYS,
        };
        match TokenKeys::parse(raw) {
            Ok(k) if k.is_empty() => Err("ROOM_TOKEN_KEYS names no key".into()),
            Ok(k) => Ok(k),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The keyed hashes of `IP_HASH_KEY` (required outside development).
    fn pseudonymizer(&self) -> Result<Pseudonymizer, String> {
        match &self.ip_hash_key {
            Some(k) if k.expose().len() >= 16 => Ok(Pseudonymizer::new(k.expose().as_bytes())),
            Some(_) => Err("IP_HASH_KEY must be at least 16 bytes".into()),
            None if self.environment != Environment::Development => {
                Err(format!("IP_HASH_KEY is required in {:?}", self.environment))
            }
            None => Ok(Pseudonymizer::new(DEVELOPMENT_IP_HASH_KEY.as_bytes())),
        }
    }

    /// Longest wait for a request body.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Redis command timeout.
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// The longest wait for replicas.
    pub fn redis_replica_wait(&self) -> Duration {
        Duration::from_millis(self.redis_replica_wait_ms)
    }

    /// Where Redis is (`REDIS_CLUSTER_NODES`, else `REDIS_URL`; TLS files: `Tls::from_env`).
    pub fn redis_target(&self) -> stores::redis::Target {
        stores::redis::Target::new(self.redis_url.expose(), &self.redis_cluster_nodes)
            .with_tls(stores::redis::Tls::from_env())
    }
}

#[cfg(test)]
mod tests;
