//! `flashctl sale recover` of a sharded sale (`--shards 3`) after Redis lost it: refused
//! while a shard of the earlier placement is still in Redis, then rebuilt on shards placed
//! again. The pool holds exactly the stock not sold, each buyer's units and reservations
//! are on their new home shard, the census balances, caps hold, a restored reservation
//! can still be cancelled (its unit back on sale), and exactly the stock is sold in the
//! end. On a private Redis server (the test flushes it): three key groups.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::time::{Duration, Instant};

use flashctl::OpsError;
use flashctl::guard::Limits;
use flashctl::recover::{Pipeline, Recovered};
use flashctl::sale::{self, NewSale};
use shared::ProductId;
use shared::sale::SaleState;
use stores::shards::Layout;
use testkit::api::{ApiStack, RunningApi};
use testkit::client::Client;
use testkit::worker::{RunningWorker, WorkerStack};
use testkit::{PrivateRedis, TestStack};

const STOCK: u32 = 40;

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sharded_sale_is_rebuilt_from_postgresql_on_new_shards() -> anyhow::Result<()> {
    let redis_server = PrivateRedis::start().await?;
    let mut stack = TestStack::new().await?;
    stack.use_redis(redis_server.url());
    let mut settings = stack.api_settings();
    settings.rate_limit_enabled = false;
    settings.relay_idle_ms = 200; // the relay hands the cancel to Kafka
    let api = RunningApi::start(settings).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    let (mut pg, mut redis) = (stack.pg().await?, stack.redis().await?);
    let product: ProductId = "hot7".parse()?;
    let new = NewSale {
        product: product.clone(),
        stock: STOCK,
        per_user: 2,
        starts_at: None,
        ends_at: None,
        limits: Limits::off(),
        payment_window: Some(Duration::from_secs(600)),
        shards: 3,
    };
    sale::open(&pg, &mut redis, &stack.keys, &new).await?;
    let mut orders = Vec::new();
    for u in 0..12 {
        for _ in 0..2 {
            let a = api
                .client
                .place(&Client::body("hot7", &format!("b{u}"), 1), &key())
                .await?;
            assert_eq!(a.status, 202, "{}", a.code());
            orders.push(a.order_id().expect("an order id").parse::<uuid::Uuid>()?);
        }
    }
    wait_for(&pg, &mut redis, &stack, &product, |s| s.persisted == 24).await?;
    let before = Layout::read(&mut redis, &stack.keys.sale(&product)).await?;
    let before = before.shards().expect("a sharded layout").clone();

    // Redis loses everything but one shard of the placement PostgreSQL recorded: refused.
    redis::cmd("FLUSHALL").exec_async(&mut redis).await?;
    let kept = stack.keys.shard(&product, 1, before.salts[1]);
    redis::cmd("HSET")
        .arg(kept.sale())
        .arg("remaining")
        .arg(5)
        .exec_async(&mut redis)
        .await?;
    let live = recover(&pg, &mut redis, &stack, &product).await;
    assert!(
        matches!(&live, Err(OpsError::Conflict(m)) if m.contains("shard 1") && m.contains("still in Redis")),
        "{live:?}"
    );
    redis::cmd("DEL")
        .arg(kept.sale())
        .exec_async(&mut redis)
        .await?;

    let restored = recover(&pg, &mut redis, &stack, &product).await?;
    assert_eq!(
        (restored.shards, restored.sold, restored.remaining),
        (3, 24, i64::from(STOCK) - 24)
    );
    assert_eq!(restored.buyers, 12);
    let st = sale::status(&pg, &mut redis, &stack.keys, &product).await?;
    let census = st.sharded.as_ref().expect("a sharded status");
    assert!(census.balanced && census.taken == 24, "{census:?}");
    assert_eq!(st.redis_remaining, Some(i64::from(STOCK) - 24));
    let b0 = Client::body("hot7", "b0", 1);
    let capped = api.client.place(&b0, &key()).await?;
    assert_eq!(capped.code(), "PURCHASE_LIMIT_REACHED", "caps survive");

    // A reservation restored on its buyer's new home shard can still be cancelled, and so
    // can one whose buyer was erased since (PostgreSQL names a pseudonym, whose home is
    // most likely another shard): seven units back on sale.
    let mut ended = vec![orders[0]];
    for u in 1..=6 {
        flashctl::erase::erase_user(&mut pg, &mut redis, &stack.keys, &format!("b{u}").parse()?)
            .await?;
        ended.push(orders[2 * u]);
    }
    for order in ended {
        let cancelled = flashctl::order::cancel(&pg, &mut redis, &stack.keys, order, "t").await?;
        assert!(!cancelled.repeated, "{cancelled:?}");
    }
    let left = i64::from(STOCK) - 24 + 7;
    let back = wait_for(&pg, &mut redis, &stack, &product, |s| {
        s.redis_remaining == Some(left)
    })
    .await?;
    assert_eq!(back.redis_remaining, Some(left), "{back:?}");
    assert!(
        back.sharded.as_ref().is_some_and(|c| c.balanced),
        "{back:?}"
    );
    let mut accepted = 0;
    for u in 0..24 {
        let a = api
            .client
            .place(&Client::body("hot7", &format!("n{u}"), 1), &key())
            .await?;
        match a.status {
            202 => accepted += 1,
            _ => assert_eq!(a.code(), "SOLD_OUT"),
        }
    }
    assert_eq!(i64::from(accepted), left, "exactly the stock left is sold");
    let end = wait_for(&pg, &mut redis, &stack, &product, |s| {
        s.persisted == i64::from(STOCK)
    })
    .await?;
    assert_eq!(end.persisted, i64::from(STOCK), "{end:?}");
    worker.stop().await?;
    api.stop().await
}

/// `sale recover`, asked again while the worker or the relay still has something on
/// its way.
async fn recover(
    pg: &tokio_postgres::Client,
    redis: &mut stores::redis::Conn,
    stack: &TestStack,
    product: &ProductId,
) -> Result<Recovered, OpsError> {
    let pipeline = Pipeline {
        brokers: stack.env.kafka_brokers.clone(),
        topic: stack.topics.orders.clone(),
        group: stack.worker_settings().kafka_group,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = flashctl::recover::recover(
            pg,
            redis,
            &stack.keys,
            product,
            &pipeline,
            &Limits::off(),
            SaleState::Open,
        )
        .await;
        match r {
            Err(OpsError::Conflict(m))
                if (m.contains("not yet persisted") || m.contains("outbox"))
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

async fn wait_for(
    pg: &tokio_postgres::Client,
    redis: &mut stores::redis::Conn,
    stack: &TestStack,
    product: &ProductId,
    done: impl Fn(&sale::SaleStatus) -> bool,
) -> anyhow::Result<sale::SaleStatus> {
    let started = Instant::now();
    loop {
        let s = sale::status(pg, redis, &stack.keys, product).await?;
        if done(&s) || started.elapsed() > Duration::from_secs(30) {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
