//! One test's private slice of the local stack, and the signing key its services use.

use crate::resources::{StackEnv, TestDatabase, TestTopics, database, topics, unique};

/// The signing key every test stack is configured with.
pub const TEST_KEY_ID: &str = "test";
/// Its secret.
pub const TEST_SECRET: &[u8] = b"test-secret-0123456789";

/// One test's private slice of the local stack: a key namespace, topics, a database.
/// The services build their settings from it (`ingest_api::testkit`,
/// `inventory_worker::testkit`).
#[derive(Debug, Clone)]
pub struct TestStack {
    /// Server addresses.
    pub env: StackEnv,
    /// The Redis key namespace.
    pub keys: shared::keys::Keyspace,
    /// The topics.
    pub topics: TestTopics,
    /// The database.
    pub db: TestDatabase,
}

impl TestStack {
    /// Creates a namespace, a topic pair and a migrated database.
    pub async fn new() -> anyhow::Result<Self> {
        let env = StackEnv::from_env();
        let (topics, db) = tokio::try_join!(topics(&env, 6), database(&env))?;
        Ok(Self {
            keys: shared::keys::Keyspace::new(unique("t")),
            env,
            topics,
            db,
        })
    }

    /// `id:secret` of the test key, as `SIGNING_KEYS` takes it.
    pub fn signing_keys(&self) -> String {
        format!("{TEST_KEY_ID}:{}", String::from_utf8_lossy(TEST_SECRET))
    }

    /// A PostgreSQL connection to this stack's database.
    pub async fn pg(&self) -> anyhow::Result<tokio_postgres::Client> {
        Ok(stores::postgres::connect(&self.db.url).await?)
    }

    /// Points this stack at a Redis server of the test's own (a [`crate::PrivateRedis`],
    /// say), whatever topology the shared stack runs.
    pub fn use_redis(&mut self, url: String) {
        self.env.redis_url = url;
        self.env.redis_cluster_nodes.clear();
    }

    /// Where this stack's Redis is (a single server or a cluster).
    pub fn redis_target(&self) -> stores::redis::Target {
        stores::redis::Target::new(&self.env.redis_url, &self.env.redis_cluster_nodes)
            .with_tls(stores::redis::Tls::from_env())
    }

    /// A Redis connection (to the cluster when `REDIS_CLUSTER_NODES` is set).
    pub async fn redis(&self) -> anyhow::Result<stores::redis::Conn> {
        Ok(stores::redis::connect(&self.redis_target()).await?)
    }
}
