//! Helpers shared by the worker's integration tests: the worker binary, events, raw
//! publishing, counts.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::worker::WorkerStack;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use shared::event::{SCHEMA_VERSION, now_ms};
use shared::{IdempotencyKey, OrderPlaced, ProductId, Quantity, UserId};
use testkit::TestStack;

/// A valid event for user `u-<i>` of `product`.
pub fn event(product: &str, i: usize) -> OrderPlaced {
    OrderPlaced {
        schema_version: SCHEMA_VERSION,
        order_id: uuid::Uuid::now_v7(),
        product_id: ProductId::parse(product).expect("valid"),
        user_id: UserId::parse(format!("u-{i}")).expect("valid"),
        quantity: Quantity::new(1).expect("valid"),
        idempotency_key: IdempotencyKey::parse(format!("key-{i:08}")).expect("valid"),
        accepted_at_ms: now_ms(),
        ip_hash: None,
        device_hash: None,
    }
}

/// An idempotent producer to the stack's broker.
pub fn producer(stack: &TestStack) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &stack.env.kafka_brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?)
}

/// Publishes raw payloads (None = no payload) to `topic`, in order, awaiting each.
pub async fn publish_raw(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, Option<Vec<u8>>)],
) -> anyhow::Result<()> {
    for (key, payload) in messages {
        let mut record = FutureRecord::<String, Vec<u8>>::to(topic).key(key);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// Publishes events concurrently and returns them.
pub async fn publish(
    stack: &TestStack,
    events: Vec<OrderPlaced>,
) -> anyhow::Result<Vec<OrderPlaced>> {
    let producer = producer(stack)?;
    let sends = events.iter().map(|e| {
        let key = e.order_id.to_string();
        let payload = e.to_json();
        let producer = producer.clone();
        let topic = stack.topics.orders.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
        }
    });
    for r in futures_util::future::join_all(sends).await {
        r?;
    }
    Ok(events)
}

/// (rows, distinct order ids, sales.sold) of a product.
pub async fn counts(pg: &tokio_postgres::Client, product: &str) -> anyhow::Result<(i64, i64, i64)> {
    let row = pg
        .query_one(
            "SELECT (SELECT count(*) FROM orders WHERE product_id = $1), \
                    (SELECT count(DISTINCT order_id) FROM orders WHERE product_id = $1), \
                    (SELECT sold::int8 FROM sales WHERE product_id = $1)",
            &[&product],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Polls until a product has at least `at_least` rows (or the timeout); returns the count.
pub async fn wait_for_rows(
    pg: &tokio_postgres::Client,
    product: &str,
    at_least: i64,
    timeout: Duration,
) -> anyhow::Result<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let (rows, _, _) = counts(pg, product).await?;
        if rows >= at_least || Instant::now() > deadline {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The real `inventory-worker` binary, running; killed when dropped, so a failing test
/// leaves no worker behind.
pub struct WorkerProcess(Child);

impl WorkerProcess {
    /// Starts it on the stack (admin port `admin_port`, 0 for any), with batches of at
    /// most `batch_max`.
    pub fn spawn(stack: &TestStack, batch_max: usize, admin_port: u16) -> anyhow::Result<Self> {
        let s = stack.worker_settings();
        Ok(Self(
            Command::new(env!("CARGO_BIN_EXE_inventory-worker"))
                .env("DATABASE_URL", s.database_url.expose())
                .env("KAFKA_BROKERS", &s.kafka_brokers)
                .env("KAFKA_TOPIC", &s.kafka_topic)
                .env("KAFKA_GROUP", &s.kafka_group)
                .env("KAFKA_DLQ_TOPIC", &s.kafka_dlq_topic)
                .env("REDIS_NAMESPACE", &s.redis_namespace)
                .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
                .env("BATCH_MAX", batch_max.to_string())
                .env("BATCH_LINGER_MS", "5")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()?,
        ))
    }

    /// SIGKILL: no drain, no commit.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.0.kill()?;
        self.0.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits for the exit; true if it exited with success.
    pub fn terminate(&mut self) -> anyhow::Result<bool> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()?;
        Ok(self.0.wait()?.success())
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
