//! The worker on a test's slice of the local stack, in the test's process.

use inventory_worker::Settings;

use crate::{Running, TestStack};

/// Settings of the worker on a [`TestStack`].
pub trait WorkerStack {
    /// The worker on this stack: a free admin port, its own consumer group.
    fn worker_settings(&self) -> Settings;
}

impl WorkerStack for TestStack {
    fn worker_settings(&self) -> Settings {
        Settings {
            admin_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            database_url: shared::Secret::new(self.db.url.clone()),
            kafka_brokers: self.env.kafka_brokers.clone(),
            kafka_topic: self.topics.orders.clone(),
            kafka_group: format!("{}-worker", self.topics.orders),
            kafka_dlq_topic: self.topics.dlq.clone(),
            redis_url: Some(shared::Secret::new(self.env.redis_url.clone())),
            redis_cluster_nodes: self.env.redis_cluster_nodes.clone(),
            redis_namespace: self.keys.namespace().to_owned(),
            order_status_ttl_secs: shared::status::DEFAULT_TTL_SECS,
            batch_max: 500,
            batch_linger_ms: 20,
            shutdown_grace_ms: 5_000,
            db_pool_size: 2,
            migrate_on_start: true,
        }
    }
}

/// A worker running in this process.
pub struct RunningWorker {
    /// Admin port.
    pub admin_port: u16,
    running: Running,
}

impl RunningWorker {
    /// Builds and starts the worker with `settings`.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = inventory_worker::Application::build(settings.validate()?).await?;
        Ok(Self {
            admin_port: app.admin_port(),
            running: Running::spawn(|stop| app.run_until(stop)),
        })
    }

    /// Finishes the batch in hand, commits and stops.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}
