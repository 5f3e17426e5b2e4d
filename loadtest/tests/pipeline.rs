//! The whole pipeline on real services: HTTP → one Lua call → Kafka → worker →
//! PostgreSQL, under a crowd much larger than the stock.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use loadtest::audit::AuditStack;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use testkit::api::ApiStack;
use testkit::sales::SaleStack;
use testkit::worker::WorkerStack;

use loadtest::audit;
use loadtest::burst::{self, Burst};
use testkit::TestStack;
use testkit::api::RunningApi;
use testkit::worker::RunningWorker;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_shoppers_one_hundred_units() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    stack.open_sale("flash-phone", 100, 1).await?;

    let result = burst::run(
        &api.client,
        &Burst {
            product: "flash-phone".into(),
            users: 500,
            orders: 2_000,
            concurrency: 200,
            source_ips: 500,
        },
    )
    .await;
    let counts = result.counts();
    println!("answers: {counts:?} in {:?}", result.elapsed);

    // Every answer is an acceptance, SOLD_OUT or PURCHASE_LIMIT_REACHED.
    for code in counts.keys() {
        assert!(
            ["ACCEPTED", "SOLD_OUT", "PURCHASE_LIMIT_REACHED"].contains(&code.as_str()),
            "unexpected answer {code}: {counts:?}"
        );
    }
    assert_eq!(counts.get("ACCEPTED"), Some(&100), "{counts:?}");

    // No user got two units (cap 1), and every 202 names a distinct order.
    let accepted: HashMap<String, i64> = result
        .accepted()
        .map(|(_, a)| (a.order_id().expect("202 has an order id"), 1))
        .collect();
    assert_eq!(accepted.len(), 100);
    let buyers: HashSet<&str> = result.accepted().map(|(s, _)| s.user.as_str()).collect();
    assert_eq!(buyers.len(), 100, "a user bought twice despite the cap");

    // A retry with the same key returns the same order, marked as replayed, byte for byte.
    let (first, original) = result.accepted().next().expect("at least one 202");
    let retry = api.client.place(&first.body, &first.key).await?;
    assert_eq!(retry.status, 202);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, original.body);
    assert_eq!(retry.order_id(), original.order_id());

    // Once drained: exactly 100 rows, sold = 100, every 202 has exactly one row.
    let report = stack
        .drained_audit(
            "flash-phone",
            &audit::Expectation {
                accepted: accepted.clone(),
                unresolved: HashSet::new(),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(report.persisted_units, 100, "{report:?}");
    assert_eq!(report.persisted_orders, 100, "{report:?}");
    assert_eq!(report.redis_remaining, Some(0));
    assert!(report.passed(), "{:?}", report.failures());

    // The order is visible as persisted.
    let id = original.order_id().expect("order id");
    let mut persisted = false;
    for _ in 0..50 {
        let got = api.client.get_order(&id).await?;
        assert_eq!(got.status, 200);
        if got.json()["status"] == "persisted" {
            persisted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(persisted, "GET /order never reported persisted");

    worker.stop().await?;
    api.stop().await?;
    Ok(())
}
