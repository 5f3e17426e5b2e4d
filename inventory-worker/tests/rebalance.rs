//! The worker on Apache Kafka's group coordinator: workers join and leave while orders
//! keep arriving, and every order ends as exactly one row.
//!
//! One worker runs; a second joins (partitions move to it); the first leaves cleanly
//! (SIGTERM: its partitions move to the second); a third joins; the second is killed
//! while its write waits on PostgreSQL (SIGKILL: its partitions move only after the
//! session timeout, and whatever it had read but not committed is delivered again). All the while a producer publishes
//! orders. At the end every published order is one row, `sales.sold` counts each once,
//! and the group has committed everything.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testkit::sales::SaleStack;
use testkit::worker::WorkerStack;

use common::{WorkerProcess, counts, event, producer, wait_for_rows};
use rdkafka::producer::FutureRecord;
use testkit::TestStack;

/// Orders per second while the group changes (one every 3 ms).
const RATE: u64 = 333;

/// A free loopback port for a worker's admin server.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `worker_assigned_partitions` of the worker whose admin server is on `port` (0 while
/// it is not up).
async fn assigned(port: u16) -> f64 {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("worker_assigned_partitions "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until every worker on `ports` owns at least one partition and together they own
/// `total`; fails after `timeout`.
async fn wait_assignment(ports: &[u16], total: f64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut owned = Vec::new();
        for &p in ports {
            owned.push(assigned(p).await);
        }
        if owned.iter().all(|&n| n > 0.0) && owned.iter().sum::<f64>() == total {
            println!("assignment settled: {ports:?} own {owned:?}");
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the group did not settle within {timeout:?}: {ports:?} own {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_join_and_leave_under_load_without_loss_or_double() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let product = "rebalance";
    stack.open_sale(product, 1_000_000, 0).await?;
    let pg = stack.pg().await?;

    // The producer: RATE orders a second until told to stop; returns the order ids.
    let stop = Arc::new(AtomicBool::new(false));
    let producing = {
        let (stop, producer, topic) =
            (stop.clone(), producer(&stack)?, stack.topics.orders.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
            let mut pending = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let e = event(product, ids.len());
                ids.push(e.order_id.to_string());
                let (producer, topic) = (producer.clone(), topic.clone());
                pending.push(tokio::spawn(async move {
                    let key = e.order_id.to_string();
                    producer
                        .send(
                            FutureRecord::to(&topic).key(&key).payload(&e.to_json()),
                            Duration::from_secs(30),
                        )
                        .await
                        .map(|_| ())
                        .map_err(|(e, _)| e)
                }));
            }
            for p in pending {
                p.await??;
            }
            anyhow::Ok(ids)
        })
    };

    let ports = [free_port()?, free_port()?, free_port()?];
    let mut a = WorkerProcess::spawn(&stack, 50, ports[0])?;
    wait_assignment(&ports[..1], 6.0, Duration::from_secs(30)).await?;
    wait_for_rows(&pg, product, 300, Duration::from_secs(30)).await?;

    // B joins: some of A's partitions move to B while both write.
    let mut b = WorkerProcess::spawn(&stack, 50, ports[1])?;
    wait_assignment(&ports[..2], 6.0, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A leaves cleanly: it finishes its batch, commits, and its partitions go to B.
    assert!(a.terminate()?, "SIGTERM must stop worker A cleanly");
    wait_assignment(&ports[1..2], 6.0, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // C joins, then B dies without a word in the middle of a write: the sale's row is
    // locked, so B's next batch waits on PostgreSQL for longer than the auto-commit
    // interval. Its partitions reach C after the session timeout, from the last
    // committed offsets, which must not include the batch B never wrote.
    let mut c = WorkerProcess::spawn(&stack, 50, ports[2])?;
    wait_assignment(&ports[1..], 6.0, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut locker = stack.pg().await?;
    let lock = locker.transaction().await?;
    lock.execute(
        "SELECT 1 FROM sales WHERE product_id = $1 FOR UPDATE",
        &[&product],
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rows_at_kill, _, _) = counts(&pg, product).await?;
    b.kill()?;
    // PostgreSQL notices a vanished client only when it next writes to it, so B's
    // statement would still complete once the lock is gone: end it as a crash would.
    // (C's waiting write ends too; C retries it.)
    let ended = pg
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await?;
    assert!(
        ended >= 1,
        "no write was waiting on the lock: the kill was not mid-write"
    );
    lock.rollback().await?;
    println!("worker B killed mid-write with {rows_at_kill} rows written");
    wait_assignment(&ports[2..], 6.0, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, Ordering::Relaxed);
    let ids = producing.await??;
    let n = ids.len() as i64;
    let done = wait_for_rows(&pg, product, n, Duration::from_secs(60)).await?;
    // Give redelivered batches a moment to (not) add anything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(c.terminate()?, "SIGTERM must stop worker C cleanly");

    let (rows, distinct, sold) = counts(&pg, product).await?;
    println!("{n} orders published, {done} rows");
    assert_eq!(
        rows, n,
        "every published order is exactly one row (lost or doubled)"
    );
    assert_eq!(distinct, n);
    assert_eq!(sold, n, "sales.sold counts each order once");
    let persisted: HashSet<String> = pg
        .query(
            "SELECT order_id::text FROM orders WHERE product_id = $1",
            &[&product],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        ids.iter().all(|id| persisted.contains(id)),
        "an order is missing"
    );

    // Everything read was committed by the group: nothing left for a next worker.
    let lag = flashctl::topics::lag(
        &stack.env.kafka_brokers,
        &stack.topics.orders,
        &stack.worker_settings().kafka_group,
    )
    .await?;
    assert_eq!(lag.total(), 0, "uncommitted messages left: {lag:?}");
    Ok(())
}

/// A worker started before its topic exists keeps running (`startup.rs` logs the missing
/// topic), and once the topic is created its orders reach the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_the_worker_started_reaches_it() -> anyhow::Result<()> {
    const N: usize = 20;
    let stack = TestStack::new().await?;
    let product = "late-topic";
    stack.open_sale(product, N as u32, 0).await?;
    let mut settings = stack.worker_settings();
    settings.kafka_topic = format!("{}-later", stack.topics.orders);
    settings.kafka_group = format!("{}-worker", settings.kafka_topic);
    let worker = testkit::worker::RunningWorker::start(settings.clone()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    stores::create_topics(&stack.env.kafka_brokers, &[&settings.kafka_topic], 2, 1).await?;
    let messages: Vec<(String, Option<Vec<u8>>)> = (0..N)
        .map(|i| {
            let e = event(product, i);
            (e.order_id.to_string(), Some(e.to_json().into_bytes()))
        })
        .collect();
    common::publish_raw(&producer(&stack)?, &settings.kafka_topic, &messages).await?;
    let started = Instant::now();
    let pg = stack.pg().await?;
    let rows = wait_for_rows(&pg, product, N as i64, Duration::from_secs(30)).await?;
    println!(
        "{rows} of {N} rows {:?} after publishing",
        started.elapsed()
    );
    worker.stop().await?;
    stores::delete_topics(&stack.env.kafka_brokers, &[&settings.kafka_topic]).await?;
    assert_eq!(rows, N as i64, "the later topic never reached the worker");
    Ok(())
}
