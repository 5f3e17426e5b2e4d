//! Ending a reservation over HTTP: the shopper's signed `POST /order/{id}/cancel` and
//! the payment service's `POST /webhooks/payment` (Standard Webhooks), and the state
//! `GET /order/{id}` shows; the 202, its replay and `GET /order` carry the payment
//! deadline Redis set.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::Duration;

use common::{assert_problem, body, expect, key, move_to, record};
use shared::ReservationState::Paid;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi, TEST_WEBHOOK_SECRET};
use testkit::client::{Client, payment_request, replace_header, send};
use testkit::sales::SaleStack;
use testkit::worker::{RunningWorker, WorkerStack};

async fn place(api: &RunningApi, product: &str, user: &str) -> anyhow::Result<String> {
    let a = api.client.place(&body(product, user), &key()).await?;
    expect(&a, 202, "ACCEPTED");
    assert_eq!(
        a.json()["state"],
        "reserved",
        "the 202 says the order is reserved"
    );
    Ok(a.order_id().expect("order id"))
}

async fn state(api: &RunningApi, order: &str) -> anyhow::Result<serde_json::Value> {
    Ok(api.client.get_order(order).await?.json()["state"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_cancels_over_http() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_reserving_sale("kite", 1, 1, None).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    let order = place(&api, "kite", "ann").await?;
    assert_eq!(state(&api, &order).await?, "reserved");

    assert_problem(
        &api.client.cancel(&order, "bob").await?,
        404,
        "ORDER_NOT_FOUND",
    );
    let forger = Client::new(api.client.base_url(), Some("test"), b"not-the-secret-0123");
    assert_problem(
        &forger.cancel(&order, "ann").await?,
        401,
        "INVALID_SIGNATURE",
    );
    let unsigned = send(
        api.client
            .http()
            .post(format!("{}/order/{order}/cancel", api.client.base_url()))
            .header("content-type", "application/json")
            .header("idempotency-key", key())
            .body(r#"{"userId":"ann"}"#),
    )
    .await?;
    assert_eq!(unsigned.status / 100, 4, "unsigned: {}", unsigned.code());
    let bad = send(
        api.client
            .cancel_request(&order, "ann", &key())
            .body(r#"{"user":"ann"}"#),
    )
    .await?;
    assert_problem(&bad, 401, "INVALID_SIGNATURE"); // the body is signed too

    let done = api.client.cancel(&order, "ann").await?;
    assert_eq!(done.status, 200, "{}", done.code());
    assert_eq!(done.json()["state"], "cancelled");
    assert_eq!(done.json()["orderId"], order.as_str());
    let again = api.client.cancel(&order, "ann").await?;
    assert_eq!(
        (again.status, again.json()["state"].clone()),
        (200, "cancelled".into())
    );
    assert_eq!(state(&api, &order).await?, "cancelled");

    let late = send(payment_request(
        &api.client,
        TEST_WEBHOOK_SECRET,
        "msg_1",
        &order,
        "succeeded",
    ))
    .await?;
    assert_problem(&late, 409, "ORDER_NOT_RESERVED");
    assert_eq!(
        late.json()["state"],
        "cancelled",
        "so the payment service refunds"
    );
    // Once the worker has the cancel, the unit is back: another shopper gets it.
    let started = std::time::Instant::now();
    let next = loop {
        let a = api.client.place(&body("kite", "cat"), &key()).await?;
        if a.code() != "SOLD_OUT" || started.elapsed() > Duration::from_secs(15) {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    expect(&next, 202, "ACCEPTED");
    worker.stop().await?;
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_arrive_by_signed_webhook() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack
        .open_reserving_sale("oven", 5, 1, Some(Duration::from_millis(1500)))
        .await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let ann = place(&api, "oven", "ann").await?;
    let bob = place(&api, "oven", "bob").await?;
    let pay = |id: &str, order: &str, status: &str| {
        send(payment_request(
            &api.client,
            TEST_WEBHOOK_SECRET,
            id,
            order,
            status,
        ))
    };

    let paid = pay("msg_a", &ann, "succeeded").await?;
    assert_eq!(
        (paid.status, paid.json()["state"].clone()),
        (200, "paid".into()),
        "{}",
        paid.code()
    );
    let redelivered = pay("msg_a", &ann, "succeeded").await?;
    assert_eq!(
        redelivered.body, paid.body,
        "the same webhook gets the same answer"
    );
    assert_eq!(state(&api, &ann).await?, "paid");

    let forged = send(payment_request(
        &api.client,
        "whsec_b3RoZXItd2ViaG9vay1zZWNyZXQtMDEyMw==",
        "msg_f",
        &bob,
        "succeeded",
    ))
    .await?;
    assert_problem(&forged, 401, "INVALID_SIGNATURE");
    let unsigned = send(replace_header(
        payment_request(&api.client, TEST_WEBHOOK_SECRET, "msg_u", &bob, "succeeded"),
        "webhook-signature",
        "v1,AAAA",
    ))
    .await?;
    assert_problem(&unsigned, 401, "INVALID_SIGNATURE");
    assert_problem(
        &pay("msg_x", &bob, "failed").await?,
        400,
        "VALIDATION_FAILED",
    );
    assert_problem(
        &pay("msg_y", "not-a-uuid", "succeeded").await?,
        400,
        "VALIDATION_FAILED",
    );
    assert_problem(
        &pay("msg_z", "01a22c40-7a28-7397-9553-eba6b73baf14", "succeeded").await?,
        404,
        "ORDER_NOT_FOUND",
    );

    // Bob pays after his deadline: the order expires instead, and says so.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let late = pay("msg_b", &bob, "succeeded").await?;
    assert_problem(&late, 409, "ORDER_NOT_RESERVED");
    assert_eq!(late.json()["state"], "expired");
    assert_eq!(state(&api, &bob).await?, "expired");
    assert_eq!(
        state(&api, &ann).await?,
        "paid",
        "a paid order never expires"
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answers_carry_the_payment_deadline_redis_set() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack
        .open_reserving_sale("vane", 2, 1, Some(Duration::from_secs(600)))
        .await?;
    stack.open_sale("bolt", 1, 1).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let k = key();
    let first = api.client.place(&body("vane", "ann"), &k).await?;
    expect(&first, 202, "ACCEPTED");
    let order = first.order_id().expect("order id");
    let mut conn = stack.redis().await?;
    let deadline_ms: u64 = record(&stack, &mut conn, "vane", &order).await?["deadline"].parse()?;
    let told = first.json()["paymentDeadline"]
        .as_str()
        .expect("a paymentDeadline")
        .to_owned();
    assert_eq!(
        Some(&told),
        shared::status::deadline_text(deadline_ms).as_ref()
    );
    let at = humantime::parse_rfc3339(&told)?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let ahead = at - shared::event::now_ms() as i64;
    assert!(
        (595_000..=600_000).contains(&ahead),
        "deadline {ahead} ms ahead, window 600 s"
    );
    // A retry with the key repeats the answer byte for byte, deadline included.
    let again = api.client.place(&body("vane", "ann"), &k).await?;
    assert_eq!(again.status, 202);
    assert_eq!(again.body, first.body);
    let status = api.client.get_order(&order).await?;
    assert_eq!(status.json()["state"], "reserved");
    assert_eq!(
        status.json()["paymentDeadline"].as_str(),
        Some(told.as_str())
    );
    // Once paid, the deadline no longer applies and is not shown.
    move_to(&stack, &mut conn, "vane", &order, Paid).await?;
    let paid = api.client.get_order(&order).await?.json();
    assert_eq!(paid["state"], "paid");
    assert!(paid.get("paymentDeadline").is_none(), "{paid}");
    // A sale without a payment window: no deadline at all.
    let plain = api.client.place(&body("bolt", "bob"), &key()).await?;
    expect(&plain, 202, "ACCEPTED");
    assert!(plain.json().get("paymentDeadline").is_none());
    api.stop().await
}
