//! One Redis round trip per order, and the sold-out answers that need none.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::{Duration, Instant};
use stores::records::sale::field as sale_field;
use testkit::api::ApiStack;
use testkit::sales::SaleStack;

use common::{body, expect, key, metrics, sample};
use flashctl::guard::Limits;
use testkit::api::RunningApi;
use testkit::client::loopback_ip;
use testkit::{PrivateRedis, TestStack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_redis_round_trip_per_order() -> anyhow::Result<()> {
    let redis_server = PrivateRedis::start().await?;
    let mut stack = TestStack::new().await?;
    stack.use_redis(redis_server.url());
    stack.open_sale_with("pen", 5, 0, Limits::off()).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    // Warm up (the first call loads the scripts).
    expect(
        &api.client.place(&body("pen", "warm"), &key()).await?,
        202,
        "ACCEPTED",
    );

    let mut redis = stack.redis().await?;
    let evalsha = |info: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with("cmdstat_evalsha:"))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await?;
    let metrics_before = metrics(&api).await?;
    // 4 acceptances (stock 5, one taken by the warm-up), then 6 refusals, some of them
    // possibly answered from memory by the sold-out fast path.
    let mut accepted = 0;
    for i in 0..10 {
        let a = api
            .client
            .place(&body("pen", &format!("p{i}")), &key())
            .await?;
        if a.status == 202 {
            accepted += 1;
        }
    }
    let after: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await?;
    let metrics_after = metrics(&api).await?;
    let calls = sample(
        &metrics_after,
        "ingest_redis_admission_duration_seconds_count",
        "",
    ) - sample(
        &metrics_before,
        "ingest_redis_admission_duration_seconds_count",
        "",
    );
    let fast = sample(&metrics_after, "ingest_sold_out_fast_path_total", "")
        - sample(&metrics_before, "ingest_sold_out_fast_path_total", "");
    assert_eq!(accepted, 4);
    // One admission script call per request that was not answered from memory…
    assert_eq!(calls, 10.0 - fast, "admission calls");
    // …and, counted by Redis itself, exactly one more script call per accepted order
    // (the hand-off confirmation, pipelined with the status write).
    assert_eq!(
        evalsha(&after) - evalsha(&before),
        (10.0 - fast) as u64 + accepted
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sold_out_is_answered_from_memory_but_never_for_a_buyer() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale_with("vinyl", 2, 0, Limits::off()).await?;
    let buyer_key = key();
    let first = api.client.place(&body("vinyl", "max"), &buyer_key).await?;
    expect(&first, 202, "ACCEPTED");
    expect(
        &api.client.place(&body("vinyl", "ned"), &key()).await?,
        202,
        "ACCEPTED",
    );
    expect(
        &api.client.place(&body("vinyl", "oli"), &key()).await?,
        409,
        "SOLD_OUT",
    );

    // Within a refresh the fast path answers for non-buyers without Redis.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let m = metrics(&api).await?;
        let before_calls = sample(&m, "ingest_redis_admission_duration_seconds_count", "");
        expect(
            &api.client.place(&body("vinyl", "pat"), &key()).await?,
            409,
            "SOLD_OUT",
        );
        let m = metrics(&api).await?;
        if sample(&m, "ingest_redis_admission_duration_seconds_count", "") == before_calls {
            break;
        }
        assert!(Instant::now() < deadline, "the fast path never engaged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (Answers from memory are limited per address by the in-process limiter, so the
    // crowd comes from many addresses, as it would.)
    let m = metrics(&api).await?;
    let calls = sample(&m, "ingest_redis_admission_duration_seconds_count", "");
    for i in 0..20 {
        let shopper = api.client.bound_to(loopback_ip(100 + i));
        let a = shopper
            .place(&body("vinyl", &format!("q{i}")), &key())
            .await?;
        expect(&a, 409, "SOLD_OUT");
    }
    let m = metrics(&api).await?;
    assert_eq!(
        sample(&m, "ingest_redis_admission_duration_seconds_count", ""),
        calls
    );
    assert!(sample(&m, "ingest_sold_out_fast_path_total", "") >= 20.0);

    // A buyer's retry still reaches Redis and replays the 202.
    let retry = api.client.place(&body("vinyl", "max"), &buyer_key).await?;
    expect(&retry, 202, "ACCEPTED");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, first.body);

    // Stock put back is seen within a second.
    let mut redis = stack.redis().await?;
    redis::cmd("HINCRBY")
        .arg(stack.keys.sale(&"vinyl".parse()?).sale())
        .arg(sale_field::REMAINING)
        .arg(1)
        .exec_async(&mut redis)
        .await?;
    let restocked = Instant::now();
    loop {
        let a = api.client.place(&body("vinyl", "ray"), &key()).await?;
        if a.status == 202 {
            break;
        }
        assert!(
            restocked.elapsed() < Duration::from_secs(1),
            "restock not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.stop().await
}

/// Units put back on sale and resold between two refreshes: the fast path must learn the
/// new buyer (whose retry may be of the very order it bought) before answering for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resale_between_refreshes_reloads_the_buyers() -> anyhow::Result<()> {
    use ingest_api::order::admission::SoldOut;
    let stack = TestStack::new().await?;
    stack.open_sale_with("lens", 1, 1, Limits::off()).await?;
    let product = "lens".parse()?;
    let keys = stack.keys.sale(&product);
    let mut redis = stack.redis().await?;
    // Ann holds the only unit; the product is sold out and the buyers are loaded.
    redis::pipe()
        .hset(keys.sale(), sale_field::REMAINING, 0)
        .hset(keys.bought(), "ann", 1)
        .exec_async(&mut redis)
        .await?;
    let sold_out = SoldOut::default();
    sold_out.mark(&product);
    sold_out.refresh(&mut redis, &stack.keys).await?;
    let bob = "bob".parse()?;
    assert!(sold_out.answers_for(&product, &bob));
    assert!(!sold_out.answers_for(&product, &"ann".parse()?));
    // Before the next refresh: Ann's unit comes back (released) and Bob buys it.
    redis::pipe()
        .hset(keys.bought(), "ann", 0)
        .hincr(keys.sale(), sale_field::RELEASED, 1)
        .hset(keys.bought(), "bob", 1)
        .exec_async(&mut redis)
        .await?;
    sold_out.refresh(&mut redis, &stack.keys).await?;
    assert!(
        !sold_out.answers_for(&product, &bob),
        "Bob's retry must reach Redis and replay his 202"
    );
    assert!(
        !sold_out.answers_for(&product, &"ann".parse()?),
        "nor Ann's: her ended order's retry replays too"
    );
    Ok(())
}
