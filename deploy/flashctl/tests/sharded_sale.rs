//! A sharded sale (`sale open --shards 3`) through the whole pipeline: orders routed to
//! their users' home shards, shards refilled from the pool and, at the end, from each
//! other; exactly the stock sold, every cap exact, replays answered as first, the last
//! unit sold before `SOLD_OUT`, and PostgreSQL holding exactly what was accepted. Runs
//! on one Redis server (three key groups) and on the cluster (three masters).
#![allow(clippy::expect_used)] // a test may expect

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flashctl::{Verdict, insight, order, sale};
use stores::shards::Layout;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::client::Client;
use testkit::sales::SaleStack;
use testkit::worker::{RunningWorker, WorkerStack};

const STOCK: u32 = 301;
const CAP: u32 = 2;
const USERS: usize = 240;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sharded_sale_sells_its_stock_exactly_once_with_caps_exact() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sharded_sale("hot", STOCK, CAP, 3).await?;
    let (pg, mut redis, product) = (stack.pg().await?, stack.redis().await?, "hot".parse()?);
    let opened = sale::status(&pg, &mut redis, &stack.keys, &product).await?;
    let census = opened.sharded.as_ref().expect("a sharded status");
    assert_eq!(census.shards.len(), 3);
    assert!(
        census.shards.iter().all(|s| s.remaining > 0),
        "each shard has a first chunk: {census:?}"
    );
    assert_eq!(opened.redis_remaining, Some(i64::from(STOCK)));
    assert!(census.balanced, "{census:?}");

    let mut settings = stack.api_settings();
    settings.rate_limit_enabled = false;
    let api = RunningApi::start(settings).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    // 240 users, each trying 3 orders of 1 (720 asks for 301 units, caps of 2): eight
    // apps at once, and each accepted order sent again with its key.
    let mut placing = tokio::task::JoinSet::new();
    for app in 0..8 {
        let client = api.client.clone();
        placing.spawn(async move {
            let mut answers = Vec::new();
            for i in (app..USERS * 3).step_by(8) {
                let (user, key) = (format!("u-{}", i % USERS), format!("key-{i:06}"));
                let body = Client::body("hot", &user, 1);
                let first = client.place(&body, &key).await?;
                if first.status == 202 {
                    let again = client.place(&body, &key).await?;
                    anyhow::ensure!(
                        again.order_id() == first.order_id(),
                        "a replay answers as first: {} then {}",
                        first.code(),
                        again.code()
                    );
                }
                answers.push((user, first.status, first.code()));
            }
            anyhow::Ok(answers)
        });
    }
    let mut accepted: HashMap<String, u32> = HashMap::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for answers in placing.join_all().await {
        for (user, status, code) in answers? {
            *codes.entry(code).or_default() += 1;
            if status == 202 {
                *accepted.entry(user).or_default() += 1;
            }
        }
    }
    println!("answers: {codes:?}");
    let sold: u32 = accepted.values().sum();
    assert_eq!(sold, STOCK, "every unit sold once, none twice: {codes:?}");
    assert!(accepted.values().all(|&n| n <= CAP), "no user over the cap");
    assert_eq!(
        codes.len(),
        3,
        "only ACCEPTED, PURCHASE_LIMIT_REACHED, SOLD_OUT: {codes:?}"
    );

    let after = Client::body("hot", "late-comer", 1);
    let late = api.client.place(&after, "key-late").await?;
    assert_eq!(late.code(), "SOLD_OUT", "the census found nothing left");
    let status = settle(&pg, &mut redis, &stack, &product).await?;
    let census = status.sharded.as_ref().expect("a sharded status");
    assert_eq!(
        (census.pool, census.moving, status.redis_remaining),
        (0, 0, Some(0)),
        "nothing stranded: {status:?}"
    );
    assert!(
        census.balanced && census.taken == i64::from(STOCK),
        "{census:?}"
    );
    assert_eq!(status.persisted, i64::from(STOCK), "{status:?}");
    assert_eq!(status.orders, i64::from(STOCK));
    let over_cap: i64 = pg
        .query_one(
            "SELECT count(*) FROM (SELECT user_id FROM orders WHERE product_id = 'hot' \
             GROUP BY user_id HAVING sum(quantity) > $1) o",
            &[&(CAP as i64)],
        )
        .await?
        .get(0);
    assert_eq!(over_cap, 0);
    let r = insight::reconcile(&pg, &mut redis, &stack.keys, &product, 0).await?;
    assert_eq!(r.verdict, Verdict::Consistent, "{r:?}");

    // A cancel returns the unit to the shard that sold it, where its next buyer finds it.
    let (buyer, order_id): (String, uuid::Uuid) = {
        let row = pg
            .query_one(
                "SELECT user_id, order_id FROM orders WHERE product_id = 'hot' LIMIT 1",
                &[],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    order::cancel(&pg, &mut redis, &stack.keys, order_id, "test").await?;
    let back = wait_for(&pg, &mut redis, &stack, &product, |s| {
        s.redis_remaining == Some(1)
    })
    .await?;
    assert_eq!(back.returned, 1, "{back:?}");
    let again = api
        .client
        .place(&Client::body("hot", &buyer, 1), "key-buyer-again")
        .await?;
    assert_eq!(
        again.status,
        202,
        "the unit is on sale again: {}",
        again.code()
    );
    worker.stop().await?;
    api.stop().await
}

/// The sale once the pipeline has written everything accepted.
async fn settle(
    pg: &tokio_postgres::Client,
    redis: &mut stores::redis::Conn,
    stack: &TestStack,
    product: &shared::ProductId,
) -> anyhow::Result<sale::SaleStatus> {
    wait_for(pg, redis, stack, product, |s| {
        s.pending_handoff == 0 && s.in_transit == Some(0)
    })
    .await
}

async fn wait_for(
    pg: &tokio_postgres::Client,
    redis: &mut stores::redis::Conn,
    stack: &TestStack,
    product: &shared::ProductId,
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

/// The end game: the pool empty, the units left on shards nobody buys from go back to the
/// pool (the API's upkeep sweeps idle shards) and on to the shard whose users still buy,
/// and `SOLD_OUT` comes only after the last one is sold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_shards_units_reach_the_shard_with_demand() -> anyhow::Result<()> {
    const STOCK: u32 = 30;
    let stack = TestStack::new().await?;
    stack.open_sharded_sale("tail", STOCK, 1, 3).await?;
    let (pg, mut redis, product) = (stack.pg().await?, stack.redis().await?, "tail".parse()?);
    let Layout::Sharded(shards) = Layout::read(&mut redis, &stack.keys.sale(&product)).await?
    else {
        panic!("a sharded layout");
    };
    // Shoppers whose home is shard 0 only: shards 1 and 2 keep their first chunks.
    let homed: Vec<String> = (0..)
        .map(|i| format!("s0-{i}"))
        .filter(|u| {
            let user = shared::UserId::parse(u.as_str()).expect("valid");
            shards.home(&stack.keys, &product, &user).0 == 0
        })
        .take(STOCK as usize + 5)
        .collect();
    let mut settings = stack.api_settings();
    settings.rate_limit_enabled = false;
    let api = RunningApi::start(settings).await?;
    let mut codes = Vec::new();
    let buy = |i: usize| {
        let (client, user) = (api.client.clone(), homed[i].clone());
        async move {
            let a = client
                .place(&Client::body("tail", &user, 1), &format!("key-{i:04}"))
                .await?;
            anyhow::Ok(a.code())
        }
    };
    // Shard 0's own chunk and the whole pool: 20 units.
    for i in 0..20 {
        codes.push(buy(i).await?);
    }
    let swept = wait_for(&pg, &mut redis, &stack, &product, |s| {
        s.sharded.as_ref().is_some_and(|c| c.pool == 10)
    })
    .await?;
    let census = swept.sharded.as_ref().expect("sharded");
    assert_eq!(
        census
            .shards
            .iter()
            .map(|s| s.remaining)
            .collect::<Vec<_>>(),
        [0, 0, 0],
        "the idle shards' units swept back to the pool: {census:?}"
    );
    for i in 20..homed.len() {
        codes.push(buy(i).await?);
    }
    let accepted = codes.iter().filter(|c| *c == "ACCEPTED").count();
    assert_eq!(
        accepted, STOCK as usize,
        "every unit sold on shard 0: {codes:?}"
    );
    assert!(
        codes[..STOCK as usize].iter().all(|c| c == "ACCEPTED"),
        "no SOLD_OUT before the last unit: {codes:?}"
    );
    assert!(codes[STOCK as usize..].iter().all(|c| c == "SOLD_OUT"));
    let status = sale::status(&pg, &mut redis, &stack.keys, &product).await?;
    let census = status.sharded.as_ref().expect("sharded");
    assert!(
        census.balanced && census.shards.iter().all(|s| s.remaining == 0),
        "{census:?}"
    );
    api.stop().await
}

/// Without the upkeep, the on-demand path alone moves the idle shards' units: a shard
/// that cannot serve an order takes what it lacks from the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_short_of_units_takes_them_from_the_others() -> anyhow::Result<()> {
    const STOCK: u32 = 30;
    let stack = TestStack::new().await?;
    stack.open_sharded_sale("pull", STOCK, 0, 3).await?;
    let mut redis = stack.redis().await?;
    let product = "pull".parse()?;
    let Layout::Sharded(shards) = Layout::read(&mut redis, &stack.keys.sale(&product)).await?
    else {
        panic!("a sharded layout");
    };
    let user = (0..)
        .map(|i| format!("b-{i}"))
        .find(|u| {
            let user = shared::UserId::parse(u.as_str()).expect("valid");
            shards.home(&stack.keys, &product, &user).0 == 0
        })
        .expect("a user of shard 0");
    let mut settings = stack.api_settings();
    settings.rate_limit_enabled = false;
    let api = RunningApi::start(settings).await?;
    // One buyer of shard 0 takes 10 at a time: its chunk and the pool, then what the
    // other shards hold, sooner than any upkeep pass (which waits 2 s for idleness).
    let mut codes = Vec::new();
    for i in 0..4 {
        let a = api
            .client
            .place(
                &Client::body("pull", &user, 10),
                &format!("key-pull-{i:04}"),
            )
            .await?;
        codes.push(a.code());
    }
    assert_eq!(
        codes,
        ["ACCEPTED", "ACCEPTED", "ACCEPTED", "SOLD_OUT"],
        "{codes:?}"
    );
    api.stop().await
}

/// A sharded sale whose product hash Redis lost is not opened again over its shards'
/// buyers and units (that would add a fresh pool to them).
#[tokio::test]
async fn open_refuses_to_reopen_over_an_earlier_sales_shards() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sharded_sale("lost", 30, 1, 3).await?;
    let mut redis = stack.redis().await?;
    let product = "lost".parse()?;
    let sale_keys = stack.keys.sale(&product);
    let _: () = redis::cmd("DEL")
        .arg(sale_keys.sale())
        .query_async(&mut redis)
        .await?;
    let again = stack.open_sharded_sale("lost", 30, 1, 3).await;
    let refused = again.expect_err("refused").to_string();
    assert!(refused.contains("the sale itself is gone"), "{refused}");
    Ok(())
}
