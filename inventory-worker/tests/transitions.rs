//! Ended reservations in PostgreSQL: each moves a `reserved` row once (paid keeps the
//! units sold, cancelled and expired give them back), a redelivered or contradicting
//! transition changes nothing (a contradicting one is dead-lettered for operators: Redis
//! decided twice), and a transition of an order that has no row is dead-lettered, never
//! guessed.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::{Duration, Instant};
use testkit::sales::SaleStack;
use testkit::worker::{RunningWorker, WorkerStack};

use common::{counts, event, producer, publish, publish_raw};
use shared::event::now_ms;
use shared::reservation::TRANSITION_TYPE;
use shared::{OrderPlaced, OrderTransitioned, ReservationState};
use testkit::TestStack;

fn moved(order: &OrderPlaced, state: ReservationState) -> OrderTransitioned {
    OrderTransitioned {
        schema_version: shared::event::SCHEMA_VERSION,
        kind: TRANSITION_TYPE.into(),
        order_id: order.order_id,
        product_id: order.product_id.clone(),
        user_id: order.user_id.clone(),
        quantity: order.quantity,
        state,
        at_ms: now_ms(),
        reason: "test".into(),
    }
}

/// (state, reason) of every order of `product`, by order id.
async fn states(
    pg: &tokio_postgres::Client,
    product: &str,
) -> anyhow::Result<std::collections::HashMap<uuid::Uuid, (String, Option<String>)>> {
    Ok(pg
        .query(
            "SELECT order_id, state, state_reason FROM orders WHERE product_id = $1",
            &[&product],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_move_reserved_rows_once_and_return_units() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale("lamp", 10, 0).await?;
    let pg = stack.pg().await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;

    let orders = publish(&stack, (0..4).map(|i| event("lamp", i)).collect()).await?;
    let (paid, cancelled, expired, kept) = (&orders[0], &orders[1], &orders[2], &orders[3]);
    let ghost = event("lamp", 9); // never placed
    // Each key's messages in order on its partition, as the API and the relay publish
    // them: the transition, its redelivery, then a contradicting one Redis would never
    // write (the row has left `reserved`).
    let sequence = [
        (paid, moved(paid, ReservationState::Paid)),
        (cancelled, moved(cancelled, ReservationState::Cancelled)),
        (expired, moved(expired, ReservationState::Expired)),
        (paid, moved(paid, ReservationState::Paid)),
        (cancelled, moved(cancelled, ReservationState::Expired)),
        (&ghost, moved(&ghost, ReservationState::Cancelled)),
    ];
    let messages: Vec<(String, Option<Vec<u8>>)> = sequence
        .iter()
        .map(|(o, t)| (o.order_id.to_string(), Some(t.to_json().into_bytes())))
        .collect();
    publish_raw(&producer(&stack)?, &stack.topics.orders, &messages).await?;

    let deadline = Instant::now() + Duration::from_secs(30);
    let rejected = loop {
        let n: i64 = pg
            .query_one("SELECT count(*) FROM rejected_orders", &[])
            .await?
            .get(0);
        let (_, _, sold) = counts(&pg, "lamp").await?;
        if (n >= 2 && sold == 2) || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (rows, _, sold) = counts(&pg, "lamp").await?;
    assert_eq!(rows, 4, "no row invented for the unknown order");
    assert_eq!(
        sold, 2,
        "4 sold, the cancelled and the expired unit returned once"
    );
    let by_id = states(&pg, "lamp").await?;
    assert_eq!(by_id[&paid.order_id].0, "paid");
    assert_eq!(
        by_id[&cancelled.order_id].0, "cancelled",
        "first transition wins"
    );
    assert_eq!(by_id[&expired.order_id].0, "expired");
    assert_eq!(by_id[&kept.order_id], ("reserved".into(), None));
    assert_eq!(by_id[&paid.order_id].1.as_deref(), Some("test"));
    assert_eq!(
        rejected, 2,
        "the unknown order and the contradicting transition"
    );
    let reasons: Vec<String> = pg
        .query("SELECT reason FROM rejected_orders ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("no row")), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("already ended otherwise")),
        "{reasons:?}"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", worker.admin_port))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(r#"worker_transitions_applied_total{state="cancelled"} 1"#),
        "{metrics}"
    );
    worker.stop().await
}
