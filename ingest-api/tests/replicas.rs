//! Acceptance that survives a failover: nothing is published or answered `202` before the
//! admission is on `REDIS_MIN_REPLICAS` replicas; short of them the answer is 503 with the
//! outcome unknown, the entry waits in the outbox and the same key learns the outcome.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::{Duration, Instant};

use common::{body, expect, key, metrics, remaining, sample};
use flashctl::guard::Limits;
use redis::Value;
use shared::keys::OUTBOX_GROUP;
use stores::Replicas;
use stores::redis::Conn;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::client::{Answer, Client};
use testkit::sales::SaleStack;

const SHORTFALLS: &str = "ingest_redis_replica_shortfalls_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_short_of_replicas_is_held_back_until_they_have_it() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale_with("drum", 10, 0, Limits::off()).await?;
    let mut short = stack.api_settings();
    // More replicas than either local topology has: WAIT always falls short.
    short.redis_min_replicas = Some(5);
    short.redis_replica_wait_ms = 100;
    short.relay_idle_ms = 200;
    let api = RunningApi::start(short).await?;
    let (k, b) = (key(), body("drum", "ola"));

    let held = api.client.place(&b, &k).await?;
    expect(&held, 503, "UNAVAILABLE");
    assert_eq!(held.json()["outcomeUnknown"], true, "the unit is taken");
    assert_eq!(remaining(&stack, "drum").await?, 9);
    assert_eq!(
        outbox_pending(&stack, "drum").await?,
        1,
        "kept for the relay"
    );
    // The relay obeys the same rule: a second later the order is still not handed off.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    expect(
        &api.client.place(&b, &k).await?,
        409,
        "IDEMPOTENCY_IN_FLIGHT",
    );
    let text = metrics(&api).await?;
    assert!(
        sample(&text, SHORTFALLS, "") >= 2.0,
        "the answer and at least one relay pass held back: {text}"
    );
    api.stop().await?;

    // With replicas enough (the default for this topology), the relay hands it off and
    // the same key learns the acceptance; the unit was taken once.
    let mut healthy = stack.api_settings();
    healthy.relay_idle_ms = 200;
    let api = RunningApi::start(healthy).await?;
    let outcome = retry_while_in_flight(&api.client, &b, &k).await?;
    expect(&outcome, 202, "ACCEPTED");
    assert_eq!(outcome.header("idempotent-replayed"), Some("true"));
    assert_eq!(remaining(&stack, "drum").await?, 9);
    assert_eq!(outbox_pending(&stack, "drum").await?, 0);
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_202_waits_for_the_replica_of_the_products_master() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let conn = stack.redis().await?;
    let default = Replicas::new(None, Duration::from_millis(100))
        .required(&conn)
        .await?;
    if !conn.is_cluster() {
        assert_eq!(default, 0, "a single server has no replica to wait for");
        return Ok(());
    }
    assert_eq!(default, 1, "the local cluster has a replica per master");

    stack.open_sale_with("gong", 10, 0, Limits::off()).await?;
    let mut settings = stack.api_settings();
    settings.redis_replica_wait_ms = 200;
    settings.relay_idle_ms = 200;
    let api = RunningApi::start(settings).await?;
    expect(
        &api.client.place(&body("gong", "al"), &key()).await?,
        202,
        "ACCEPTED",
    );

    // The replica stops acknowledging (stopped for 1 s, below the cluster's node
    // timeout, so no failover starts): the acceptance is not promised.
    let product_key = stack.keys.sale(&"gong".parse()?).sale();
    let replica = ReplicaProcess::of_master_of(&conn, &product_key).await?;
    let (k, b) = (key(), body("gong", "bo"));
    replica.signal("STOP")?;
    let held = api.client.place(&b, &k).await;
    replica.signal("CONT")?;
    let held = held?;
    expect(&held, 503, "UNAVAILABLE");
    assert_eq!(held.json()["outcomeUnknown"], true);

    // Back: the relay hands the order off and the same key learns it.
    let outcome = retry_while_in_flight(&api.client, &b, &k).await?;
    expect(&outcome, 202, "ACCEPTED");
    assert_eq!(remaining(&stack, "gong").await?, 8);
    api.stop().await
}

/// Retries `body` with key `k` while the answer is `409 IDEMPOTENCY_IN_FLIGHT` (10 s).
async fn retry_while_in_flight(client: &Client, b: &[u8], k: &str) -> anyhow::Result<Answer> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = client.place(b, k).await?;
        if a.status != 409 || Instant::now() > deadline {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Entries of `product`'s outbox not yet confirmed.
async fn outbox_pending(stack: &TestStack, product: &str) -> anyhow::Result<i64> {
    let mut redis = stack.redis().await?;
    let summary: Value = redis::cmd("XPENDING")
        .arg(stack.keys.sale(&product.parse()?).outbox())
        .arg(OUTBOX_GROUP)
        .query_async(&mut redis)
        .await?;
    Ok(match summary {
        Value::Array(parts) => match parts.first() {
            Some(Value::Int(n)) => *n,
            _ => 0,
        },
        _ => 0,
    })
}

/// The process of the replica of the master that owns a key's slot (local cluster).
struct ReplicaProcess {
    pid: u32,
}

impl ReplicaProcess {
    async fn of_master_of(conn: &Conn, key: &str) -> anyhow::Result<Self> {
        let mut conn = conn.clone();
        let master = match conn
            .route_to_slot_of(key, &redis::cmd("CLUSTER").arg("MYID").to_owned())
            .await?
        {
            Value::BulkString(id) => String::from_utf8(id)?,
            other => anyhow::bail!("CLUSTER MYID answered {other:?}"),
        };
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await?;
        let address = nodes
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[3] == master && f[2].contains("slave"))
            .and_then(|f| f[1].split('@').next().map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("no replica of {master}: {nodes}"))?;
        let mut replica = redis::Client::open(format!("redis://{address}"))?
            .get_multiplexed_async_connection()
            .await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut replica)
            .await?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .ok_or_else(|| anyhow::anyhow!("no process_id in INFO"))?
            .trim()
            .parse()?;
        Ok(Self { pid })
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {} failed", self.pid);
        Ok(())
    }
}
