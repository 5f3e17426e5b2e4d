//! `flashctl order cancel` through the whole pipeline: the relay hands the event to
//! Kafka, the worker applies it and puts the units back on sale, and `sale status` and
//! `reconcile` count the returned units (consistent, no drift).
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::time::{Duration, Instant};
use testkit::api::{ApiStack, RunningApi};
use testkit::sales::SaleStack;
use testkit::worker::{RunningWorker, WorkerStack};

use flashctl::Verdict;
use flashctl::{OpsError, insight, order, sale};
use shared::ReservationState;
use testkit::TestStack;
use testkit::client::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_cancel_reaches_postgresql_and_reconciles() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale("vase", 3, 1).await?;
    let mut settings = stack.api_settings();
    settings.relay_idle_ms = 200;
    let api = RunningApi::start(settings).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    let mut ids = Vec::new();
    for user in ["ada", "bea", "cy"] {
        let a = api
            .client
            .place(
                &Client::body("vase", user, 1),
                &uuid::Uuid::new_v4().to_string(),
            )
            .await?;
        assert_eq!(a.status, 202, "{}", a.code());
        ids.push(a.order_id().expect("order id").parse::<uuid::Uuid>()?);
    }
    let pg = stack.pg().await?;
    let mut redis = stack.redis().await?;
    let product = "vase".parse()?;

    let done = order::cancel(&pg, &mut redis, &stack.keys, ids[0], "fraud").await?;
    assert_eq!(done.state, ReservationState::Cancelled);
    assert!(!done.repeated);
    let again = order::cancel(&pg, &mut redis, &stack.keys, ids[0], "fraud").await?;
    assert!(again.repeated, "a repeat changes nothing");
    let unknown = order::cancel(&pg, &mut redis, &stack.keys, uuid::Uuid::now_v7(), "x").await;
    assert!(matches!(unknown, Err(OpsError::NotFound(_))), "{unknown:?}");

    // The relay publishes the cancel; the worker applies it once.
    let started = Instant::now();
    let status = loop {
        let s = sale::status(&pg, &mut redis, &stack.keys, &product).await?;
        if (s.returned == 1 && s.pending_handoff == 0 && s.returning == 0)
            || started.elapsed() > Duration::from_secs(20)
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (status.reserved, status.paid, status.returned),
        (2, 0, 1),
        "{status:?}"
    );
    assert_eq!(status.persisted, 2, "sold counts live reservations only");
    assert_eq!(
        status.redis_remaining,
        Some(1),
        "released once PostgreSQL had it"
    );
    let (state, reason): (String, Option<String>) = {
        let r = pg
            .query_one(
                "SELECT state, state_reason FROM orders WHERE order_id = $1",
                &[&ids[0]],
            )
            .await?;
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("cancelled", Some("fraud"))
    );
    let r = insight::reconcile(&pg, &mut redis, &stack.keys, &product, 0).await?;
    assert_eq!(r.verdict, Verdict::Consistent, "{r:?}");
    assert_eq!(r.drift, Some(0));
    worker.stop().await?;
    api.stop().await
}

/// `reconcile` read again and again while the worker writes batch after batch: never
/// `drift` (the rows and `sales.sold` are read in one snapshot), and consistent at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_is_not_drift_while_the_worker_writes() -> anyhow::Result<()> {
    const N: usize = 400;
    let stack = TestStack::new().await?;
    stack.open_sale("lamp", N as u32, 0).await?;
    let mut api_settings = stack.api_settings();
    api_settings.rate_limit_enabled = false;
    let api = RunningApi::start(api_settings).await?;
    let mut settings = stack.worker_settings();
    (settings.batch_max, settings.batch_linger_ms) = (5, 1);
    let worker = RunningWorker::start(settings).await?;
    // Eight shoppers' apps, one order after another each.
    let mut placing = tokio::task::JoinSet::new();
    for app in 0..8 {
        let client = api.client.clone();
        placing.spawn(async move {
            for i in (app..N).step_by(8) {
                let body = Client::body("lamp", &format!("u-{i}"), 1);
                let a = client.place(&body, &format!("key-{i:06}")).await?;
                anyhow::ensure!(a.status == 202, "order {i}: {}", a.code());
            }
            anyhow::Ok(())
        });
    }
    let (pg, mut redis, product) = (stack.pg().await?, stack.redis().await?, "lamp".parse()?);
    let (started, mut reads) = (Instant::now(), 0);
    let last = loop {
        // A lag above 0 stands for orders in flight: settling is a fair answer, drift not.
        let r = insight::reconcile(&pg, &mut redis, &stack.keys, &product, 1).await?;
        reads += 1;
        assert_ne!(r.verdict, Verdict::Drift, "read {reads}: {r:?}");
        if r.persisted == N as i64 || started.elapsed() > Duration::from_secs(60) {
            break r;
        }
    };
    for placed in placing.join_all().await {
        placed?;
    }
    println!("{reads} reads while {} units were written", last.persisted);
    assert_eq!(last.persisted, N as i64, "{last:?}");
    let r = insight::reconcile(&pg, &mut redis, &stack.keys, &product, 0).await?;
    assert_eq!(r.verdict, Verdict::Consistent, "{r:?}");
    worker.stop().await?;
    api.stop().await
}
