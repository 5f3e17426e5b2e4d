#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely
//! The shoppers' client (`flashsale-client`) against the real API: it places an order
//! through a Redis outage by asking again with the same key as `Retry-After` says, a
//! repeat of the key is the same order, and refusals arrive typed.

use std::time::Duration;

use flashsale_client::{Error, Order, ProblemCode, RetryPolicy};
use stores::records::SaleRecord;
use testkit::api::{ApiStack, RunningApi};
use testkit::sales::SaleStack;
use testkit::{FaultProxy, TestStack, host_port, via_port};

fn order<'a>(user: &'a str) -> Order<'a> {
    Order {
        product_id: "pen",
        user_id: user,
        quantity: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn places_through_an_outage_once_and_reads_refusals_typed() -> anyhow::Result<()> {
    let mut stack = TestStack::new().await?;
    let proxy = FaultProxy::start(host_port(&stack.env.redis_url)).await?;
    stack.use_redis(via_port(&stack.env.redis_url, proxy.port));
    stack.open_sale("pen", 1, 1).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let key = flashsale_client::new_key();

    // Redis unreachable: one attempt gives up with the 503, typed.
    proxy.down();
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    match api.client.place_order(&order("ann"), &key, &once).await {
        Err(Error::Refused(p)) => {
            assert_eq!((p.status, p.code), (503, ProblemCode::Unavailable));
            assert!(p.retry_after.is_some() && p.outcome_pending());
        }
        other => panic!("a 503 expected, got {other:?}"),
    }
    // With retries, the same key goes through once Redis is back.
    let heal = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        proxy.restore();
        proxy
    });
    let patient = RetryPolicy {
        max_attempts: 30,
        max_wait: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let placed = api
        .client
        .place_order(&order("ann"), &key, &patient)
        .await?;
    let _proxy = heal.await?;
    assert!(placed.attempts >= 2, "it waited out the outage: {placed:?}");
    assert_eq!(placed.order.product_id, "pen");
    assert_eq!(placed.order.state.as_deref(), Some("reserved"));
    let mut conn = stack.redis().await?;
    let sale = SaleRecord::read(&mut conn, &stack.keys.sale(&"pen".parse()?))
        .await?
        .expect("a sale");
    assert_eq!(sale.remaining, 0, "one unit taken, once");

    // The same key again is the same order, replayed.
    let again = api
        .client
        .place_order(&order("ann"), &key, &patient)
        .await?;
    assert!(again.replayed);
    assert_eq!(again.order, placed.order);

    // Refusals, typed.
    let refused = |r: Result<_, Error>| match r {
        Err(Error::Refused(p)) => p,
        other => panic!("a refusal expected, got {other:?}"),
    };
    let sold_out = refused(
        api.client
            .place_order(&order("bob"), &flashsale_client::new_key(), &patient)
            .await,
    );
    assert_eq!(
        (sold_out.status, sold_out.code),
        (409, ProblemCode::SoldOut)
    );
    let capped = refused(
        api.client
            .place_order(&order("ann"), &flashsale_client::new_key(), &patient)
            .await,
    );
    assert_eq!(capped.code, ProblemCode::PurchaseLimitReached);
    assert!(!capped.outcome_pending());
    api.stop().await
}
