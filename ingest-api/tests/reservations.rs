//! Reservations that end, in Redis (`lua/transition.lua`): a cancel returns the units
//! once and, after the worker applied it, reopens the sale (the sold-out answer from
//! memory within 1 s of the return); payment and expiry racing end each order exactly
//! once; an order still on its way to Kafka does not move; the sweeper expires unpaid
//! orders within 2 s of their deadline. Run on one Redis server and on the cluster.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{
    body, eventually, expect, key, metrics, move_to, record, remaining, returning, sample,
};
use shared::ReservationState::{self, Cancelled, Expired, Paid};
use stores::redis::Conn;
use stores::reservations::{Move, Transition, transition};
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::sales::SaleStack;
use testkit::worker::{RunningWorker, WorkerStack};

/// Every entry of an outbox stream: (id, fields).
async fn outbox_entries(
    conn: &mut Conn,
    outbox: impl redis::ToRedisArgs,
) -> anyhow::Result<Vec<(String, HashMap<String, String>)>> {
    Ok(redis::cmd("XRANGE")
        .arg(outbox)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await?)
}

async fn place(api: &RunningApi, product: &str, user: &str) -> anyhow::Result<String> {
    let a = api.client.place(&body(product, user), &key()).await?;
    expect(&a, 202, "ACCEPTED");
    Ok(a.order_id().expect("202 has an order id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_returns_the_units_once_and_reopens_the_sale() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_reserving_sale("kite", 2, 1, None).await?;
    let mut settings = stack.api_settings();
    settings.relay_idle_ms = 200; // the relay hands the cancel to Kafka
    let api = RunningApi::start(settings).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    let ann = place(&api, "kite", "ann").await?;
    place(&api, "kite", "bob").await?;
    expect(
        &api.client.place(&body("kite", "cat"), &key()).await?,
        409,
        "SOLD_OUT",
    );
    expect(
        &api.client.place(&body("kite", "ann"), &key()).await?,
        409,
        "PURCHASE_LIMIT_REACHED",
    );

    // This instance answers SOLD_OUT from memory before the return.
    let from_memory = eventually(Duration::from_secs(3), || async {
        let a = api.client.place(&body("kite", "dan"), &key()).await?;
        expect(&a, 409, "SOLD_OUT");
        Ok(sample(&metrics(&api).await?, "ingest_sold_out_fast_path_total", "") > 0.0)
    })
    .await?;
    assert!(from_memory, "the sold-out fast path never engaged");

    let mut conn = stack.redis().await?;
    let first = move_to(&stack, &mut conn, "kite", &ann, Cancelled).await?;
    assert!(
        matches!(
            first,
            Transition::Moved {
                state: Cancelled,
                returning: 1,
                ..
            }
        ),
        "{first:?}"
    );
    assert_eq!(
        move_to(&stack, &mut conn, "kite", &ann, Cancelled).await?,
        Transition::Same(Cancelled),
        "a repeat answers the same and returns nothing again"
    );
    assert_eq!(
        move_to(&stack, &mut conn, "kite", &ann, Paid).await?,
        Transition::NotReserved(Cancelled)
    );
    let rec = record(&stack, &mut conn, "kite", &ann).await?;
    assert_eq!(rec["state"], "cancelled");
    // Back on sale once PostgreSQL has the cancel (the worker releases it), not before.
    let released = eventually(Duration::from_secs(15), || async {
        Ok(remaining(&stack, "kite").await? == 1 && returning(&stack, "kite").await? == 0)
    })
    .await?;
    assert!(released, "the worker released the returned unit");

    // The sold-out answer this instance gives from memory reopens within 1 s of the
    // return (seen here within 50 ms of it): Cat, refused before, gets the unit.
    let returned = Instant::now();
    let again = loop {
        let a = api.client.place(&body("kite", "cat"), &key()).await?;
        if a.code() != "SOLD_OUT" || returned.elapsed() > Duration::from_secs(1) {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    expect(&again, 202, "ACCEPTED");
    assert!(
        returned.elapsed() < Duration::from_secs(1),
        "sold out reopened only after {:?}",
        returned.elapsed()
    );
    assert_eq!(remaining(&stack, "kite").await?, 0);
    // Ann's cap counts only live reservations now: her field is back at 0.
    let bought: HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(stack.keys.sale(&"kite".parse()?).bought())
        .query_async(&mut conn)
        .await?;
    assert_eq!(
        bought,
        HashMap::from([("ann".into(), 0), ("bob".into(), 1), ("cat".into(), 1)])
    );
    assert_eq!(
        move_to(
            &stack,
            &mut conn,
            "kite",
            "00000000-0000-7000-8000-000000000000",
            Paid
        )
        .await?,
        Transition::NotFound
    );
    worker.stop().await?;
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_and_expiry_racing_end_each_order_exactly_once() -> anyhow::Result<()> {
    const ORDERS: usize = 30;
    let stack = TestStack::new().await?;
    let window = Duration::from_millis(800);
    stack
        .open_reserving_sale("race", ORDERS as u32, 0, Some(window))
        .await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        orders.push(place(&api, "race", &format!("u{i}")).await?);
    }
    // No sweeper from here on: every transition is one of the calls below.
    api.stop().await?;

    // Two payments, two expiries and a cancel per order, all at once, around each
    // order's deadline (Redis server time, the same clock here): a third of the orders
    // get them 200 ms early, a third right at it, a third 200 ms late, each call
    // jittered by up to ±40 ms so which one arrives first varies.
    let mut conn = stack.redis().await?;
    let mut calls = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let deadline: i64 = record(&stack, &mut conn, "race", order).await?["deadline"].parse()?;
        for (j, to) in [Paid, Expired, Paid, Expired, Cancelled]
            .into_iter()
            .enumerate()
        {
            let offset = (i % 3) as i64 * 200 - 200 + ((i * 7 + j * 31) % 81) as i64 - 40;
            let wait_ms = (deadline + offset - shared::event::now_ms() as i64).max(0);
            let at = Instant::now() + Duration::from_millis(wait_ms as u64);
            let (stack_keys, order) = (stack.keys.clone(), order.clone());
            let mut conn = stack.redis().await?;
            calls.push(tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let keys = stack_keys.sale(&"race".parse().expect("valid"));
                let wanted = Move {
                    keys: &keys,
                    product: "race",
                    order_id: &order,
                    to,
                    reason: "race",
                    retention_secs: 3600,
                };
                let reply = transition(&mut conn, &wanted).await;
                (order, to, reply.expect("transition.lua answers"))
            }));
        }
    }
    let mut moved: HashMap<String, Vec<ReservationState>> = HashMap::new();
    let mut replies = Vec::new();
    for call in calls {
        let (order, to, reply) = call.await?;
        if let Transition::Moved { state, .. } = &reply {
            moved.entry(order.clone()).or_default().push(*state);
        }
        replies.push((order, to, reply));
    }
    let mut ended: HashMap<ReservationState, i64> = HashMap::new();
    for order in &orders {
        let states = moved.get(order).cloned().unwrap_or_default();
        assert_eq!(states.len(), 1, "{order} moved {states:?}");
        let rec = record(&stack, &mut conn, "race", order).await?;
        assert_eq!(rec["state"], states[0].as_str(), "{order}");
        *ended.entry(states[0]).or_default() += 1;
    }
    for (order, to, reply) in &replies {
        let last = moved[order][0];
        match reply {
            Transition::Moved { .. } => {}
            Transition::Same(s) | Transition::NotReserved(s) => assert_eq!(*s, last),
            Transition::NotDue { .. } => assert_eq!(*to, Expired, "only an expiry waits"),
            other => panic!("{order}: {other:?}"),
        }
    }
    let returned =
        ended.get(&Expired).copied().unwrap_or(0) + ended.get(&Cancelled).copied().unwrap_or(0);
    assert_eq!(returning(&stack, "race").await?, returned, "{ended:?}");
    assert_eq!(
        remaining(&stack, "race").await?,
        0,
        "nothing back on sale without the worker"
    );
    let bought: HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(stack.keys.sale(&"race".parse()?).bought())
        .query_async(&mut conn)
        .await?;
    assert_eq!(
        bought.values().sum::<i64>(),
        ended.get(&Paid).copied().unwrap_or(0),
        "only paid units still count for the cap"
    );
    // One event per order in the outbox (nobody published them: the API is stopped).
    let entries = outbox_entries(&mut conn, stack.keys.sale(&"race".parse()?).outbox()).await?;
    let events = entries
        .iter()
        .filter(|(_, f)| f["event"].contains("OrderTransitioned"))
        .count();
    assert_eq!(events, ORDERS);
    eprintln!("race outcome: {ended:?}");
    assert!(
        ended.get(&Expired).copied().unwrap_or(0) >= (ORDERS / 3) as i64,
        "every order called on only after its deadline expired: {ended:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_still_on_its_way_to_kafka_does_not_move() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_reserving_sale("drum", 5, 0, None).await?;
    let mut broken = stack.api_settings();
    broken.kafka_brokers = "127.0.0.1:1".into();
    broken.kafka_publish_timeout_ms = 300;
    let api = RunningApi::start(broken).await?;
    let k = key();
    let failed = api.client.place(&body("drum", "dee"), &k).await?;
    expect(&failed, 503, "UNAVAILABLE");
    api.stop().await?;
    let outbox = stack.keys.sale(&"drum".parse()?).outbox();
    let mut conn = stack.redis().await?;
    let entries = outbox_entries(&mut conn, &outbox).await?;
    let order = entries[0].1["order_id"].clone();
    assert_eq!(
        move_to(&stack, &mut conn, "drum", &order, Cancelled).await?,
        Transition::InFlight
    );
    assert_eq!(remaining(&stack, "drum").await?, 4, "nothing returned");

    // A healthy instance's relay hands the placement off; then the cancel goes through,
    // and its own entry is handed off too.
    let mut healthy = stack.api_settings();
    healthy.relay_idle_ms = 200;
    let api = RunningApi::start(healthy).await?;
    let started = Instant::now();
    let outcome = loop {
        let t = move_to(&stack, &mut conn, "drum", &order, Cancelled).await?;
        if t != Transition::InFlight || started.elapsed() > Duration::from_secs(15) {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        matches!(
            outcome,
            Transition::Moved {
                state: Cancelled,
                returning: 1,
                ..
            }
        ),
        "{outcome:?}"
    );
    let started = Instant::now();
    let pending = loop {
        let n: i64 = redis::cmd("XLEN")
            .arg(&outbox)
            .query_async(&mut conn)
            .await?;
        if n == 0 || started.elapsed() > Duration::from_secs(15) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pending, 0, "the cancel was handed off and confirmed");
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_expires_unpaid_orders_within_two_seconds() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack
        .open_reserving_sale("pump", 3, 1, Some(Duration::from_secs(1)))
        .await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let mut orders = Vec::new();
    for user in ["x", "y", "z"] {
        orders.push(place(&api, "pump", user).await?);
    }
    let mut conn = stack.redis().await?;
    let paid = move_to(&stack, &mut conn, "pump", &orders[0], Paid).await?;
    assert!(matches!(paid, Transition::Moved { state: Paid, .. }));
    let now_ms = || shared::event::now_ms() as i64;
    for order in &orders[1..] {
        let deadline: i64 = record(&stack, &mut conn, "pump", order).await?["deadline"].parse()?;
        let state = loop {
            let rec = record(&stack, &mut conn, "pump", order).await?;
            if rec["state"] != "reserved" || now_ms() > deadline + 5_000 {
                break rec;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(state["state"], "expired");
        let late = state["at"].parse::<i64>()? - deadline;
        assert!(
            (0..2_000).contains(&late),
            "expired {late} ms after its deadline"
        );
    }
    assert_eq!(
        returning(&stack, "pump").await?,
        2,
        "no worker here to release them"
    );
    assert_eq!(
        record(&stack, &mut conn, "pump", &orders[0]).await?["state"],
        "paid",
        "a paid order never expires"
    );
    // Both expiries were handed to Kafka and confirmed: their entries are gone.
    let outbox = stack.keys.sale(&"pump".parse()?).outbox();
    let started = Instant::now();
    let left = loop {
        let entries = outbox_entries(&mut conn, &outbox).await?;
        let expiries = entries
            .iter()
            .filter(|(_, f)| f["event"].contains(r#""state":"expired""#))
            .count();
        if expiries == 0 || started.elapsed() > Duration::from_secs(10) {
            break expiries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(left, 0, "the sweeper handed both expiries off");
    api.stop().await
}
