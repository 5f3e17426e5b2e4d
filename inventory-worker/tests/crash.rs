//! The real `inventory-worker` binary under SIGKILL and SIGTERM: no duplicate, no
//! missing row, whatever moment it dies.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{counts, event, publish, wait_for_rows};
use loadtest::stack::TestStack;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_leaves_no_duplicate_and_no_gap() -> anyhow::Result<()> {
    const N: usize = 4_000;
    let stack = TestStack::new().await?;
    stack.open_sale("kill-me", N as u32, 0).await?;
    let events = publish(&stack, (0..N).map(|i| event("kill-me", i)).collect()).await?;
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
