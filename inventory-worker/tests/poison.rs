//! Poison messages and PostgreSQL outages: a bad message is dead-lettered (topic and
//! table, with its reason) and never blocks the partition; an outage pauses the worker,
//! commits nothing, and it resumes by itself.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::{Duration, Instant};
use testkit::sales::SaleStack;
use testkit::worker::WorkerStack;

use common::{counts, event, producer, publish, publish_raw, wait_for_rows};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use testkit::worker::RunningWorker;
use testkit::{FaultProxy, TestStack, host_port, via_port};

/// Reads `n` messages (or until the timeout) from the start of `topic`.
async fn read_topic(
    stack: &TestStack,
    topic: &str,
    n: usize,
) -> anyhow::Result<Vec<(Vec<u8>, String)>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.env.kafka_brokers)
        .set("group.id", testkit::unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "reason").and_then(|h| h.value))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), reason));
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letters_and_the_partition_moves_on() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale("tiny", 1, 0).await?;
    stack.open_sale("fine", 10, 0).await?;
    let pg = stack.pg().await?;

    let mut v2 = serde_json::to_value(event("fine", 1))?;
    v2["schema_version"] = 2.into();
    let ghost = event("ghost", 2); // no such sale: the foreign key refuses it
    let (tiny_a, tiny_b) = (event("tiny", 3), event("tiny", 4)); // stock 1: CHECK refuses one
    let good = event("fine", 5);
    let bad: Vec<(String, Option<Vec<u8>>)> = vec![
        ("k-json".into(), Some(b"{not json".to_vec())),
        ("k-empty".into(), None),
        ("k-v2".into(), Some(v2.to_string().into_bytes())),
        (
            ghost.order_id.to_string(),
            Some(ghost.to_json().into_bytes()),
        ),
        (
            tiny_a.order_id.to_string(),
            Some(tiny_a.to_json().into_bytes()),
        ),
        (
            tiny_b.order_id.to_string(),
            Some(tiny_b.to_json().into_bytes()),
        ),
    ];
    // All on one partition, in this order, then the good message behind them.
    let p = producer(&stack)?;
    let one_key: Vec<(String, Option<Vec<u8>>)> = bad
        .into_iter()
        .map(|(_, payload)| ("same-partition".to_owned(), payload))
        .collect();
    publish_raw(&p, &stack.topics.orders, &one_key).await?;
    publish_raw(
        &p,
        &stack.topics.orders,
        &[("same-partition".into(), Some(good.to_json().into_bytes()))],
    )
    .await?;

    let worker = RunningWorker::start(stack.worker_settings()).await?;
    assert_eq!(
        wait_for_rows(&pg, "fine", 1, Duration::from_secs(30)).await?,
        1,
        "the good message behind the poison is persisted"
    );
    assert_eq!(
        counts(&pg, "tiny").await?,
        (1, 1, 1),
        "exactly one unit of tiny, sold = stock"
    );
    let ghost_rows: i64 = pg
        .query_one(
            "SELECT count(*) FROM orders WHERE product_id = 'ghost'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(ghost_rows, 0);

    let deadline = Instant::now() + Duration::from_secs(10);
    let rejected = loop {
        let rows = pg
            .query(
                "SELECT reason, kafka_offset FROM rejected_orders ORDER BY kafka_offset",
                &[],
            )
            .await?;
        if rows.len() >= 5 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reasons: Vec<String> = rejected.iter().map(|r| r.get(0)).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].contains("malformed"), "{reasons:?}");
    assert!(reasons[1].contains("empty payload"), "{reasons:?}");
    assert!(reasons[2].contains("schema_version 2"), "{reasons:?}");
    assert!(reasons[3].contains("23503"), "foreign key: {reasons:?}");
    assert!(
        reasons[4].contains("23514"),
        "check constraint: {reasons:?}"
    );

    // Only what was written is reported as persisted to `GET /order`.
    let redis = stack.redis().await?;
    let status = |id: uuid::Uuid| {
        let key = stack.keys.order_status(&id);
        let mut redis = redis.clone();
        async move {
            redis::cmd("HGET")
                .arg(key)
                .arg("status")
                .query_async::<Option<String>>(&mut redis)
                .await
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(good.order_id).await?.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(good.order_id).await?.as_deref(), Some("persisted"));
    assert_eq!(status(tiny_a.order_id).await?.as_deref(), Some("persisted"));
    assert_eq!(
        status(tiny_b.order_id).await?,
        None,
        "a dead-lettered order is not persisted"
    );
    assert_eq!(status(ghost.order_id).await?, None);

    let dlq = read_topic(&stack, &stack.topics.dlq, 5).await?;
    assert_eq!(dlq.len(), 5);
    assert!(dlq.iter().all(|(_, reason)| !reason.is_empty()));
    assert!(dlq.iter().any(|(payload, _)| payload == b"{not json"));

    // Offsets move past the poison: nothing left to consume for the group.
    let deadline = Instant::now() + Duration::from_secs(15);
    let probe = flashctl::topics::LagProbe::new(
        &stack.env.kafka_brokers,
        &stack.topics.orders,
        &stack.worker_settings().kafka_group,
    )?;
    loop {
        let lag = probe.read().await?;
        if lag.total() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "offsets not committed: {lag:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_pauses_commits_nothing_and_heals() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale("steady", 1_000, 0).await?;
    let pg = stack.pg().await?;
    let proxy = FaultProxy::start(host_port(&stack.db.url)).await?;
    let mut settings = stack.worker_settings();
    settings.database_url = shared::Secret::new(via_port(&stack.db.url, proxy.port));
    let worker = RunningWorker::start(settings).await?;
    let group = stack.worker_settings().kafka_group;

    publish(&stack, (0..100).map(|i| event("steady", i)).collect()).await?;
    assert_eq!(
        wait_for_rows(&pg, "steady", 100, Duration::from_secs(30)).await?,
        100
    );

    proxy.down();
    publish(&stack, (100..200).map(|i| event("steady", i)).collect()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        counts(&pg, "steady").await?.0,
        100,
        "nothing written while PostgreSQL is away"
    );
    let lag = flashctl::topics::lag(&stack.env.kafka_brokers, &stack.topics.orders, &group).await?;
    assert!(
        lag.total() >= 100,
        "nothing committed for unwritten messages: {lag:?}"
    );

    proxy.restore();
    assert_eq!(
        wait_for_rows(&pg, "steady", 200, Duration::from_secs(60)).await?,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        counts(&pg, "steady").await?,
        (200, 200, 200),
        "each order once, sold counted once"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", worker.admin_port))
        .await?
        .text()
        .await?;
    let retries: f64 = metrics
        .lines()
        .find(|l| l.starts_with("worker_transient_errors_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        retries >= 1.0,
        "the outage shows in worker_transient_errors_total"
    );
    worker.stop().await
}
