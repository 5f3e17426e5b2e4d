#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely
//! The waiting room's guards (`ingest-api/API.md`, "Waiting room"): joins pass the same
//! blocklists and limits as orders; a ticket or an admission of an earlier room (epoch)
//! buys nothing in the room that replaced it; a unit that comes back (a cancelled
//! reservation) reopens a sold-out line.

use std::time::{Duration, Instant};

use flashctl::guard::{Limits, Target, block, parse_limit};
use flashctl::room::{NewRoom, open};
use serde_json::Value;
use shared::keys::Scope;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::client::{Answer, Client};
use testkit::sales::SaleStack;

fn now_ms() -> u64 {
    shared::event::now_ms()
}

/// Opens a room on `product` now, at `rate` admissions per second.
async fn open_now(stack: &TestStack, product: &str, rate: f64) -> anyhow::Result<u64> {
    let mut redis = stack.redis().await?;
    let room = NewRoom {
        prequeue_from_ms: now_ms(),
        opens_at_ms: now_ms(),
        rate,
        burst: 5,
        max_active: 100,
        claim_window: Duration::from_secs(30),
        message: String::new(),
    };
    Ok(open(&mut redis, &stack.keys, &product.parse()?, &room).await?)
}

fn state(a: &Answer) -> String {
    a.json()["wait"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn ticket(a: &Answer) -> String {
    let body: Value = a.json();
    body["ticket"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket: {body}"))
        .to_owned()
}

/// Polls until the ticket's state is `want` (or 10 s pass); the last state.
async fn until(c: &Client, product: &str, ticket: &str, device: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = match c.queue_status(product, ticket, device).await {
            Ok(a) => state(&a),
            Err(e) => format!("transport error: {e}"),
        };
        if now == want || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Joins, waits for the turn and claims: the ticket and the admission token.
async fn admitted(
    c: &Client,
    product: &str,
    user: &str,
    device: &str,
) -> anyhow::Result<(String, String)> {
    let t = ticket(&c.join(product, user, device).await?);
    assert_eq!(until(c, product, &t, device, "admitted").await, "admitted");
    let claim = c.claim(product, user, &t, device).await?;
    assert_eq!(
        claim.status,
        200,
        "{}",
        String::from_utf8_lossy(&claim.body)
    );
    let token = claim.json()["admissionToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    Ok((t, token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_pass_the_blocklists_and_limits_of_orders() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut limits = Limits::off();
    limits.0.insert(Scope::User, parse_limit("1/m:2")?);
    stack.open_sale_with("lamp", 10, 1, limits).await?;
    open_now(&stack, "lamp", 10.0).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let c = &api.client;

    // A blocked user cannot join.
    let mut redis = stack.redis().await?;
    let product = "lamp".parse()?;
    let target = Target::parse(Scope::User, "mallory")?;
    block(
        &mut redis,
        &stack.keys,
        &target,
        Some(&product),
        None,
        "test",
    )
    .await?;
    let blocked = c.join("lamp", "mallory", "dev-m").await?;
    assert_eq!((blocked.status, blocked.code()), (403, "BLOCKED".into()));
    assert_eq!(blocked.json()["scope"], "user");

    // The user limit (2 at once, then 1 a minute) counts joins as it counts orders.
    for _ in 0..2 {
        let a = c.join("lamp", "rita", "dev-r").await?;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    }
    let third = c.join("lamp", "rita", "dev-r").await?;
    assert_eq!(
        (third.status, third.code()),
        (429, "RATE_LIMIT_EXCEEDED".into())
    );
    assert_eq!(third.json()["scope"], "user");
    assert!(
        third.retry_after_secs().is_some(),
        "429 carries Retry-After"
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_or_admission_of_an_earlier_room_buys_nothing() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale_with("vase", 10, 1, Limits::off()).await?;
    let first = open_now(&stack, "vase", 20.0).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let c = &api.client;
    let (old_ticket, old_admission) = admitted(c, "vase", "otto", "dev-o").await?;

    // The operator opens the room again: a new epoch.
    let second = open_now(&stack, "vase", 20.0).await?;
    assert!(second > first, "a new epoch ({first} → {second})");
    let claim = c.claim("vase", "otto", &old_ticket, "dev-o").await?;
    assert_eq!(claim.code(), "NOT_YOUR_TICKET", "an earlier epoch's ticket");
    let order = c
        .place_admitted(
            &Client::body("vase", "otto", 1),
            &flashsale_client::new_key(),
            "dev-o",
            &old_admission,
        )
        .await?;
    assert_eq!(
        (order.status, order.code()),
        (403, "NOT_ADMITTED".into()),
        "an earlier epoch's admission"
    );
    // Joined again, the same user is admitted in the new room and buys.
    let (_, admission) = admitted(c, "vase", "otto", "dev-o").await?;
    let order = c
        .place_admitted(
            &Client::body("vase", "otto", 1),
            &flashsale_client::new_key(),
            "dev-o",
            &admission,
        )
        .await?;
    assert_eq!(
        order.status,
        202,
        "{}",
        String::from_utf8_lossy(&order.body)
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_unit_reopens_a_sold_out_line() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack
        .open_reserving_sale("bowl", 1, 1, Some(Duration::from_secs(600)))
        .await?;
    open_now(&stack, "bowl", 20.0).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let c = &api.client;

    // The first buys the only unit (a reservation); the second is told sold out.
    let (_, admission) = admitted(c, "bowl", "ada", "dev-a").await?;
    let order = c
        .place_admitted(
            &Client::body("bowl", "ada", 1),
            &flashsale_client::new_key(),
            "dev-a",
            &admission,
        )
        .await?;
    assert_eq!(
        order.status,
        202,
        "{}",
        String::from_utf8_lossy(&order.body)
    );
    let id = order.order_id().expect("an order id");
    let second = ticket(&c.join("bowl", "ben", "dev-b").await?);
    assert_eq!(
        until(c, "bowl", &second, "dev-b", "sold_out").await,
        "sold_out"
    );

    // The reservation is cancelled: its unit comes back, and the line moves again.
    let cancelled = c.cancel(&id, "ada").await?;
    assert_eq!(
        cancelled.status,
        200,
        "{}",
        String::from_utf8_lossy(&cancelled.body)
    );
    assert_eq!(
        until(c, "bowl", &second, "dev-b", "admitted").await,
        "admitted"
    );
    let claim = c.claim("bowl", "ben", &second, "dev-b").await?;
    assert_eq!(
        claim.status,
        200,
        "{}",
        String::from_utf8_lossy(&claim.body)
    );
    api.stop().await
}
