//! The real `inventory-worker` binary under SIGKILL and SIGTERM: no duplicate, no
//! missing row, whatever moment it dies.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadtest::stack::TestStack;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use shared::event::{SCHEMA_VERSION, now_ms};
use shared::{IdempotencyKey, OrderPlaced, ProductId, Quantity, UserId};

fn event(product: &str, i: usize) -> OrderPlaced {
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

/// Publishes `n` orders for `product` (each once) and returns them.
async fn publish(stack: &TestStack, product: &str, n: usize) -> anyhow::Result<Vec<OrderPlaced>> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.env.kafka_brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    let events: Vec<OrderPlaced> = (0..n).map(|i| event(product, i)).collect();
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

fn spawn_worker(stack: &TestStack, batch_max: usize) -> anyhow::Result<Child> {
    let s = stack.worker_settings();
    Ok(Command::new(env!("CARGO_BIN_EXE_inventory-worker"))
        .env("DATABASE_URL", s.database_url.expose())
        .env("KAFKA_BROKERS", &s.kafka_brokers)
        .env("KAFKA_TOPIC", &s.kafka_topic)
        .env("KAFKA_GROUP", &s.kafka_group)
        .env("KAFKA_DLQ_TOPIC", &s.kafka_dlq_topic)
        .env("REDIS_NAMESPACE", &s.redis_namespace)
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("BATCH_MAX", batch_max.to_string())
        .env("BATCH_LINGER_MS", "5")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?)
}

async fn counts(pg: &tokio_postgres::Client, product: &str) -> anyhow::Result<(i64, i64, i64)> {
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

async fn wait_for_rows(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_leaves_no_duplicate_and_no_gap() -> anyhow::Result<()> {
    const N: usize = 4_000;
    let stack = TestStack::new().await?;
    stack.open_sale("kill-me", N as u32, 0).await?;
    let events = publish(&stack, "kill-me", N).await?;
    let pg = stack.pg().await?;

    let mut worker = spawn_worker(&stack, 20)?;
    let seen = wait_for_rows(&pg, "kill-me", 200, Duration::from_secs(60)).await?;
    worker.kill()?; // SIGKILL: no drain, no commit
    worker.wait()?;
    let (at_kill, _, _) = counts(&pg, "kill-me").await?;
    println!("killed with {at_kill} of {N} rows written (saw {seen})");
    assert!(
        at_kill > 0 && at_kill < N as i64,
        "the kill must land mid-run, got {at_kill}"
    );

    let mut worker = spawn_worker(&stack, 200)?;
    let done = wait_for_rows(&pg, "kill-me", N as i64, Duration::from_secs(120)).await?;
    // Give redelivered batches a moment to (not) add anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill")
        .arg("-TERM")
        .arg(worker.id().to_string())
        .status()?;
    let status = worker.wait()?;
    assert!(
        status.success(),
        "SIGTERM must stop the worker cleanly: {status}"
    );

    let (rows, distinct, sold) = counts(&pg, "kill-me").await?;
    assert_eq!(done, N as i64);
    assert_eq!(rows, N as i64, "missing or duplicated rows");
    assert_eq!(distinct, N as i64);
    assert_eq!(sold, N as i64, "sales.sold must count each order once");
    let ids: std::collections::HashSet<String> = pg
        .query(
            "SELECT order_id::text FROM orders WHERE product_id = 'kill-me'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(events.iter().all(|e| ids.contains(&e.order_id.to_string())));
    Ok(())
}
