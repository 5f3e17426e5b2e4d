//! The API on a test's slice of the local stack, in the test's process.

use flashsale_client::Client;
use ingest_api::Settings;
use ingest_api::settings::{DEFAULT_KAFKA_LINGER_MS, Environment};

use crate::{Running, TEST_KEY_ID, TEST_SECRET, TestStack};

/// Settings of the API on a [`TestStack`].
pub trait ApiStack {
    /// The API on this stack: free ports, the test signing key, two HTTP workers.
    fn api_settings(&self) -> Settings;
}

/// The waiting room's token keys every test API is configured with.
pub const TEST_ROOM_TOKEN_KEYS: &str = "t1:test-room-token-key-0123456789abcdef";

/// The payment webhook secret every test API is configured with.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0wMTIz";

impl ApiStack for TestStack {
    fn api_settings(&self) -> Settings {
        Settings {
            listen_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            admin_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            redis_url: shared::Secret::new(self.env.redis_url.clone()),
            redis_cluster_nodes: self.env.redis_cluster_nodes.clone(),
            redis_namespace: self.keys.namespace().to_owned(),
            redis_timeout_ms: 500,
            redis_min_replicas: None,
            redis_replica_wait_ms: 200,
            kafka_brokers: self.env.kafka_brokers.clone(),
            kafka_topic: self.topics.orders.clone(),
            kafka_publish_timeout_ms: 5_000,
            kafka_linger_ms: DEFAULT_KAFKA_LINGER_MS,
            order_status_ttl_secs: shared::status::DEFAULT_TTL_SECS,
            signing_keys: shared::Secret::new(self.signing_keys()),
            signature_window_ms: 30_000,
            idempotency_ttl_secs: 3_600,
            environment: Environment::Development,
            http_workers: Some(2),
            relay_idle_ms: 2_000,
            trusted_proxies: String::new(),
            allowed_origins: String::new(),
            rate_limit_enabled: true,
            fallback_ip_limit: "10/s:20".into(),
            ip_hash_key: None,
            request_timeout_ms: 5_000,
            max_connections: 10_000,
            payment_webhook_secrets: Some(shared::Secret::new(TEST_WEBHOOK_SECRET.into())),
            room_token_keys: Some(shared::Secret::new(TEST_ROOM_TOKEN_KEYS.into())),
        }
    }
}

/// An API running in this process on a free port.
pub struct RunningApi {
    /// Public port.
    pub port: u16,
    /// Admin port.
    pub admin_port: u16,
    /// A client signing with the test key.
    pub client: Client,
    running: Running,
}

impl RunningApi {
    /// Builds and starts the API with `settings`.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = ingest_api::Application::build(settings.validate()?).await?;
        let (port, admin_port) = (app.port(), app.admin_port());
        Ok(Self {
            port,
            admin_port,
            client: Client::new(
                format!("http://127.0.0.1:{port}"),
                Some(TEST_KEY_ID),
                TEST_SECRET,
            ),
            running: Running::spawn(|stop| app.run_until(stop)),
        })
    }

    /// Drains and stops it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}
