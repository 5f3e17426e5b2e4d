//! The audit passes on an honest run and fails when an invariant is broken on purpose:
//! a persisted order deleted, an order duplicated (a user past the per-user cap), a row
//! nobody was told about, a 500.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use loadtest::audit::AuditStack;
use std::time::Duration;
use testkit::api::ApiStack;
use testkit::sales::SaleStack;
use testkit::worker::WorkerStack;

use loadtest::audit::{self, Expectation};
use loadtest::engine;
use loadtest::traffic::Plan;
use testkit::TestStack;
use testkit::api::RunningApi;
use testkit::worker::RunningWorker;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_catches_a_deleted_row_a_duplicate_and_a_phantom() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    stack.open_sale("audit-me", 50, 1).await?;

    let plan = Plan::steady("audit-me", 200.0, Duration::from_secs(1), 1_000, 100);
    let (outcomes, _) = engine::run(std::slice::from_ref(&api.client), plan, |_| {}).await;
    let expect = Expectation::from_outcomes(&outcomes);
    assert_eq!(expect.accepted.len(), 50, "the stock sells out");

    let honest = stack.drained_audit("audit-me", &expect).await?;
    assert!(honest.passed(), "{:?}", honest.failures());
    worker.stop().await?;

    let pg = stack.pg().await?;
    let mut redis = stack.redis().await?;
    let product = "audit-me".parse()?;

    // A persisted order vanishes (sold kept consistent, so only the join can tell).
    let victim: String = pg
        .query_one(
            "SELECT order_id::text FROM orders WHERE product_id = 'audit-me' LIMIT 1",
            &[],
        )
        .await?
        .get(0);
    pg.execute(
        "DELETE FROM orders WHERE order_id = $1::text::uuid",
        &[&victim],
    )
    .await?;
    pg.execute(
        "UPDATE sales SET sold = sold - 1 WHERE product_id = 'audit-me'",
        &[],
    )
    .await?;
    let lost = audit::audit(&pg, &mut redis, &stack.keys, &product, &expect).await?;
    assert!(!lost.passed());
    assert_eq!(lost.lost, 1);
    assert_eq!(
        lost.leaked,
        Some(1),
        "a unit taken from Redis that ended nowhere"
    );

    // The same order twice under a new id.
    pg.batch_execute(
        "INSERT INTO orders (order_id, product_id, user_id, quantity, idempotency_key, accepted_at) \
         SELECT gen_random_uuid(), product_id, user_id, quantity, idempotency_key, accepted_at \
         FROM orders WHERE product_id = 'audit-me' LIMIT 1",
    )
    .await?;
    let doubled = audit::audit(&pg, &mut redis, &stack.keys, &product, &expect).await?;
    assert!(!doubled.passed());
    assert_eq!(doubled.duplicated, 1);
    assert_eq!(doubled.over_cap_users, 1, "the cap is one unit per user");
    assert_eq!(doubled.unexplained_rows, 1);
    assert_ne!(
        doubled.row_units, doubled.persisted_units,
        "rows and sales.sold disagree"
    );

    // A row for a request nobody sent.
    pg.batch_execute(
        "INSERT INTO orders (order_id, product_id, user_id, quantity, idempotency_key, accepted_at) \
         VALUES (gen_random_uuid(), 'audit-me', 'ghost', 1, 'ghost-key-1', now())",
    )
    .await?;
    let phantom = audit::audit(&pg, &mut redis, &stack.keys, &product, &expect).await?;
    assert_eq!(phantom.unexplained_rows, 2);
    assert!(
        phantom
            .failures()
            .iter()
            .any(|f| f.contains("without a 202"))
    );

    // A server error is a failure even when every row is right.
    let honest_rows = audit::audit(&pg, &mut redis, &stack.keys, &product, &expect).await?;
    let errored = Expectation {
        server_errors: 1,
        ..expect.clone()
    };
    let with_500 = audit::audit(&pg, &mut redis, &stack.keys, &product, &errored).await?;
    assert_eq!(with_500.server_errors, 1);
    assert_eq!(
        with_500.failures().len(),
        honest_rows.failures().len() + 1,
        "{:?}",
        with_500.failures()
    );
    api.stop().await
}
