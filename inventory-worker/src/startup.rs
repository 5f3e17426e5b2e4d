//! Building and running the worker: migrations, pool, consumer, admin port, shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureProducer;
use shared::keys::Keyspace;
use tokio::sync::watch;

use crate::admin::{self, AdminState};
use crate::consumer::{OrderConsumer, Worker};
use crate::group::WorkerContext;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// A built worker: migrated, subscribed, admin port bound.
pub struct Application {
    admin_port: u16,
    admin: Server,
    worker: Worker,
}

/// The consumer configuration: manual offset store, auto-commit of stored offsets, and
/// the cooperative-sticky assignor.
///
/// Why cooperative-sticky rather than an eager assignor: when a worker joins or leaves
/// during a sale, an eager rebalance revokes every partition from every worker and writes
/// stop until the whole group has re-synced; cooperative-sticky moves only the partitions
/// that must move and the others are written throughout. Correctness does not depend on
/// the choice: offsets are stored only after PostgreSQL committed, a partition revoked
/// mid-batch refuses the store and its new owner re-reads those messages, and the write is
/// idempotent (`inventory-worker/tests/rebalance.rs`).
pub fn kafka_consumer(settings: &Settings, metrics: &Metrics) -> anyhow::Result<OrderConsumer> {
    let consumer: OrderConsumer = stores::client_config(&settings.kafka_brokers)
        .set("group.id", &settings.kafka_group)
        .set("client.id", "inventory-worker")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("allow.auto.create.topics", "false")
        .create_with_context(WorkerContext {
            metrics: metrics.clone(),
        })
        .context("cannot create the Kafka consumer")?;
    Ok(consumer)
}

/// The consumer, subscribed to the order topic. A missing topic is logged, not fatal:
/// the worker keeps running (readiness reports it), so a topic created later is picked
/// up.
async fn subscribed(settings: &Settings, metrics: &Metrics) -> anyhow::Result<Arc<OrderConsumer>> {
    let consumer = Arc::new(kafka_consumer(settings, metrics)?);
    let (c, topic) = (consumer.clone(), settings.kafka_topic.clone());
    let exists = tokio::task::spawn_blocking(move || admin::topic_exists(&c, &topic)).await?;
    if let Err(e) = exists {
        tracing::error!(topic = %settings.kafka_topic, error = %e, "order topic missing");
    }
    consumer
        .subscribe(&[&settings.kafka_topic])
        .context("cannot subscribe to the order topic")?;
    Ok(consumer)
}

/// The Redis connection of the `persisted` marks, if `REDIS_URL` or
/// `REDIS_CLUSTER_NODES` is set (on a cluster the URL only lends credentials).
fn status_marks(settings: &Settings) -> anyhow::Result<Option<stores::redis::Conn>> {
    let url = settings.redis_url.as_ref().map(|u| u.expose().as_str());
    if url.is_none() && settings.redis_cluster_nodes.is_empty() {
        return Ok(None);
    }
    let url = url.unwrap_or(shared::defaults::REDIS_URL);
    let target = stores::redis::Target::new(url, &settings.redis_cluster_nodes)
        .with_tls(stores::redis::Tls::from_env());
    let conn = stores::redis::manager(&target, Duration::from_millis(500))
        .context("REDIS_URL or REDIS_CLUSTER_NODES is not a valid Redis address")?;
    Ok(Some(conn))
}

/// The admin server: health, readiness, metrics.
fn admin_server(listener: TcpListener, state: AdminState) -> anyhow::Result<Server> {
    let state = web::Data::new(state);
    Ok(
        HttpServer::new(move || App::new().app_data(state.clone()).configure(admin::config))
            .disable_signals()
            .workers(1)
            .shutdown_timeout(1)
            .listen(listener)?
            .run(),
    )
}

impl Application {
    /// Migrates, connects and subscribes.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let url = settings.database_url.expose();
        if settings.migrate_on_start {
            let applied = stores::migrate(url)
                .await
                .context("applying migrations (is PostgreSQL up and DATABASE_URL right?)")?;
            tracing::info!(applied, "migrations up to date");
        }
        let pool = crate::db::pool(url, settings.db_pool_size)?;
        let metrics = Metrics::new();
        let consumer = subscribed(&settings, &metrics).await?;
        let dlq: FutureProducer = stores::idempotent_producer(&settings.kafka_brokers)
            .set("client.id", "inventory-worker-dlq")
            .create()
            .context("cannot create the dead-letter producer")?;
        let listener = TcpListener::bind(settings.admin_addr)
            .with_context(|| format!("cannot listen on ADMIN_ADDR {}", settings.admin_addr))?;
        let admin_port = listener.local_addr()?.port();
        let admin = admin_server(
            listener,
            AdminState {
                pool: pool.clone(),
                consumer: consumer.clone(),
                topic: settings.kafka_topic.clone(),
                metrics: metrics.clone(),
            },
        )?;
        tracing::info!(
            topic = %settings.kafka_topic, group = %settings.kafka_group,
            dlq = %settings.kafka_dlq_topic, admin_port, "inventory-worker built"
        );
        Ok(Self {
            admin_port,
            admin,
            worker: Worker {
                consumer,
                topic: settings.kafka_topic.clone(),
                dlq,
                dlq_topic: settings.kafka_dlq_topic.clone(),
                pool,
                redis: status_marks(&settings)?,
                keys: Keyspace::new(settings.redis_namespace.clone()),
                status_ttl_secs: settings.order_status_ttl_secs,
                batch_max: settings.batch_max,
                batch_linger: settings.batch_linger(),
                shutdown_grace: Duration::from_millis(settings.shutdown_grace_ms),
                metrics,
            },
        })
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Runs until SIGTERM/SIGINT.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shared::service::shutdown::signal()).await
    }

    /// Runs until `stop` resolves; the batch in hand is finished (or abandoned after the
    /// grace period) and stored offsets are committed.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self { admin, worker, .. } = self;
        let admin_handle = admin.handle();
        let admin_task = tokio::spawn(admin);
        let (stop_tx, stop_rx) = watch::channel(false);
        let lag_task = tokio::spawn(crate::lag::track(
            worker.consumer.clone(),
            worker.topic.clone(),
            worker.metrics.clone(),
            stop_rx.clone(),
        ));
        let run = worker.run(stop_rx);
        tokio::pin!(run);
        tokio::pin!(stop);
        let result = tokio::select! {
            r = &mut run => r,
            () = &mut stop => {
                tracing::info!("draining");
                let _ = stop_tx.send(true);
                run.await
            }
        };
        let _ = stop_tx.send(true);
        let _ = lag_task.await;
        admin_handle.stop(true).await;
        let _ = admin_task.await;
        tracing::info!("inventory-worker stopped");
        result
    }
}
