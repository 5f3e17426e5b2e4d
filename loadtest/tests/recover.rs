//! `flashctl sale recover` after Redis lost a sale: refused while anything is still on
//! its way, then the exact remaining stock and every buyer's units are restored, and on a
//! sale with a payment window every reservation's record, reserved or recently ended.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::time::{Duration, Instant};
use stores::records::reservation::field as reservation_field;
use testkit::api::ApiStack;
use testkit::sales::SaleStack;
use testkit::worker::WorkerStack;

use flashctl::OpsError;
use flashctl::guard::Limits;
use flashctl::recover::Pipeline;
use flashctl::sale;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use shared::event::{SCHEMA_VERSION, now_ms};
use shared::sale::SaleState;
use shared::{IdempotencyKey, OrderPlaced, Quantity};
use testkit::api::RunningApi;
use testkit::client::Client;
use testkit::worker::RunningWorker;
use testkit::{PrivateRedis, TestStack};

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn wait_sold(pg: &tokio_postgres::Client, product: &str, sold: i32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s: i32 = pg
            .query_one("SELECT sold FROM sales WHERE product_id = $1", &[&product])
            .await?
            .get(0);
        if s == sold {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "sold stuck at {s}, expected {sold}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recover_refuses_until_drained_then_restores_exactly() -> anyhow::Result<()> {
    let redis_server = PrivateRedis::start().await?;
    let mut stack = TestStack::new().await?;
    stack.use_redis(redis_server.url());
    let api = RunningApi::start(stack.api_settings()).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    stack.open_sale_with("ps6", 10, 1, Limits::off()).await?;
    let product = "ps6".parse()?;
    for u in 0..4 {
        let a = api
            .client
            .place(&Client::body("ps6", &format!("b{u}"), 1), &key())
            .await?;
        assert_eq!(a.status, 202);
    }
    let pg = stack.pg().await?;
    wait_sold(&pg, "ps6", 4).await?;
    let pipeline = Pipeline {
        brokers: stack.env.kafka_brokers.clone(),
        topic: stack.topics.orders.clone(),
        group: stack.worker_settings().kafka_group,
    };
    let mut redis = stack.redis().await?;
    let recover = |redis: &mut stores::redis::Conn| {
        let (pg, keys, product, pipeline) = (&pg, &stack.keys, &product, &pipeline);
        let mut redis = redis.clone();
        async move {
            flashctl::recover::recover(
                pg,
                &mut redis,
                keys,
                product,
                pipeline,
                &Limits::off(),
                SaleState::Open,
            )
            .await
        }
    };

    // Live sale: nothing to recover.
    let live = recover(&mut redis).await;
    assert!(
        matches!(&live, Err(OpsError::Conflict(m)) if m.contains("live")),
        "{live:?}"
    );

    // Redis loses everything; orders fail closed.
    redis::cmd("FLUSHALL").exec_async(&mut redis).await?;
    let lost = api
        .client
        .place(&Client::body("ps6", "b9", 1), &key())
        .await?;
    assert_eq!(lost.code(), "SALE_NOT_FOUND");

    // An accepted order still in the outbox: refused.
    let outbox = stack.keys.sale(&product).outbox();
    let id: String = redis::cmd("XADD")
        .arg(&outbox)
        .arg("*")
        .arg("order_id")
        .arg("x")
        .query_async(&mut redis)
        .await?;
    let pending = recover(&mut redis).await;
    assert!(
        matches!(&pending, Err(OpsError::Conflict(m)) if m.contains("outbox")),
        "{pending:?}"
    );
    redis::cmd("DEL")
        .arg(&outbox)
        .exec_async(&mut redis)
        .await?;
    let _ = id;

    // An order in Kafka the worker has not persisted yet: refused.
    worker.stop().await?;
    let in_flight = OrderPlaced {
        schema_version: SCHEMA_VERSION,
        order_id: uuid::Uuid::now_v7(),
        product_id: product.clone(),
        user_id: "b4".parse()?,
        quantity: Quantity::new(1)?,
        idempotency_key: IdempotencyKey::parse(key())?,
        accepted_at_ms: now_ms(),
        ip_hash: None,
        device_hash: None,
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.env.kafka_brokers)
        .create()?;
    producer
        .send(
            FutureRecord::to(&stack.topics.orders)
                .key(&in_flight.order_id.to_string())
                .payload(&in_flight.to_json()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let lagging = recover(&mut redis).await;
    assert!(
        matches!(&lagging, Err(OpsError::Conflict(m)) if m.contains("not yet persisted")),
        "{lagging:?}"
    );

    // Drained: the exact remaining stock, and every buyer still at their cap.
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    wait_sold(&pg, "ps6", 5).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let restored = loop {
        match recover(&mut redis).await {
            Err(OpsError::Conflict(m))
                if m.contains("not yet persisted") && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other?,
        }
    };
    assert_eq!(
        (
            restored.stock,
            restored.sold,
            restored.remaining,
            restored.buyers
        ),
        (10, 5, 5, 5)
    );
    let st = sale::status(&pg, &mut redis, &stack.keys, &product).await?;
    assert_eq!(
        (st.state.as_str(), st.redis_remaining, st.in_transit),
        ("open", Some(5), Some(0))
    );

    let again = api
        .client
        .place(&Client::body("ps6", "b2", 1), &key())
        .await?;
    assert_eq!(
        again.code(),
        "PURCHASE_LIMIT_REACHED",
        "caps survive the recovery"
    );
    let mut accepted = 0;
    for u in 0..8 {
        let a = api
            .client
            .place(&Client::body("ps6", &format!("n{u}"), 1), &key())
            .await?;
        if a.status == 202 {
            accepted += 1;
        } else {
            assert_eq!(a.code(), "SOLD_OUT");
        }
    }
    assert_eq!(accepted, 5, "exactly the remaining stock is sold");
    wait_sold(&pg, "ps6", 10).await?;
    worker.stop().await?;
    api.stop().await
}

/// A sale with a payment window loses Redis after one order was paid and one cancelled:
/// the recovery restores the reserved order with its deadline (it can still end) and the
/// ended ones for the rest of their retention (a late payment is still told the state it
/// lost to), and each buyer's live units.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recover_restores_reserved_and_ended_reservations() -> anyhow::Result<()> {
    use shared::ReservationState::{Cancelled, Paid};
    use stores::reservations::{Move, Transition, transition};
    let redis_server = PrivateRedis::start().await?;
    let mut stack = TestStack::new().await?;
    stack.use_redis(redis_server.url());
    let mut settings = stack.api_settings();
    settings.relay_idle_ms = 200; // the relay hands the transitions to Kafka
    let api = RunningApi::start(settings).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    stack
        .open_reserving_sale("ps7", 4, 1, Some(Duration::from_secs(600)))
        .await?;
    let product: shared::ProductId = "ps7".parse()?;
    let sk = stack.keys.sale(&product);
    let mut orders = Vec::new();
    for user in ["ann", "bob", "cat"] {
        let a = api
            .client
            .place(&Client::body("ps7", user, 1), &key())
            .await?;
        assert_eq!(a.status, 202);
        orders.push(a.order_id().expect("order id"));
    }
    let mut redis = stack.redis().await?;
    let end = |redis: &mut stores::redis::Conn, order: &str, to| {
        let (mut redis, sk, order) = (redis.clone(), sk.clone(), order.to_owned());
        async move {
            let wanted = Move {
                keys: &sk,
                product: "ps7",
                order_id: &order,
                to,
                reason: "test",
                retention_secs: 3600,
            };
            transition(&mut redis, &wanted).await
        }
    };
    assert!(matches!(
        end(&mut redis, &orders[0], Paid).await?,
        Transition::Moved { .. }
    ));
    assert!(matches!(
        end(&mut redis, &orders[1], Cancelled).await?,
        Transition::Moved { .. }
    ));
    let pg = stack.pg().await?;
    // PostgreSQL has both ends (sold counts the live units: ann's and cat's).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ended: i64 = pg
            .query_one(
                "SELECT count(*) FROM orders WHERE product_id = 'ps7' AND state <> 'reserved'",
                &[],
            )
            .await?
            .get(0);
        if ended == 2 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the ends never reached PostgreSQL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_sold(&pg, "ps7", 2).await?;
    let accepted_at_ms: i64 = pg
        .query_one(
            "SELECT (extract(epoch FROM accepted_at) * 1000)::int8 FROM orders \
             WHERE order_id = $1::text::uuid",
            &[&orders[2]],
        )
        .await?
        .get(0);

    redis::cmd("FLUSHALL").exec_async(&mut redis).await?;
    let pipeline = Pipeline {
        brokers: stack.env.kafka_brokers.clone(),
        topic: stack.topics.orders.clone(),
        group: stack.worker_settings().kafka_group,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let restored = loop {
        let r = flashctl::recover::recover(
            &pg,
            &mut redis,
            &stack.keys,
            &product,
            &pipeline,
            &Limits::off(),
            SaleState::Open,
        )
        .await;
        match r {
            Err(OpsError::Conflict(m))
                if m.contains("not yet persisted") && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other?,
        }
    };
    assert_eq!((restored.sold, restored.remaining), (2, 2));
    let bought: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(sk.bought())
        .query_async(&mut redis)
        .await?;
    assert_eq!(
        bought,
        [("ann".into(), 1), ("bob".into(), 0), ("cat".into(), 1)].into()
    );
    for (order, state) in [(&orders[0], "paid"), (&orders[1], "cancelled")] {
        let (got, at, ttl): (String, i64, i64) = redis::pipe()
            .hget(sk.reservation(order), reservation_field::STATE)
            .hget(sk.reservation(order), "at")
            .ttl(sk.reservation(order))
            .query_async(&mut redis)
            .await?;
        assert_eq!(got, state);
        assert!(at > 0, "{state}: when it ended");
        let retention = shared::reservation::ENDED_RETENTION_SECS as i64;
        assert!(
            (retention - 120..=retention).contains(&ttl),
            "{state}: retention left {ttl} s"
        );
    }
    let (state, recorded, scheduled): (String, i64, Option<i64>) = redis::pipe()
        .hget(sk.reservation(&orders[2]), reservation_field::STATE)
        .hget(sk.reservation(&orders[2]), reservation_field::DEADLINE)
        .zscore(sk.deadlines(), &orders[2])
        .query_async(&mut redis)
        .await?;
    assert_eq!(state, "reserved");
    assert_eq!(recorded, accepted_at_ms + 600_000);
    assert_eq!(scheduled, Some(recorded), "the sweeper will find it");

    // After the recovery: a late payment for Bob's order learns it was cancelled; Cat's
    // can still end.
    assert_eq!(
        end(&mut redis, &orders[1], Paid).await?,
        Transition::NotReserved(Cancelled)
    );
    assert!(matches!(
        end(&mut redis, &orders[2], Cancelled).await?,
        Transition::Moved { .. }
    ));
    worker.stop().await?;
    api.stop().await
}
