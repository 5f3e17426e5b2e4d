//! Two API instances and two workers on one machine, one product: the same guarantees.
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
async fn two_apis_two_workers_one_product() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let apis = [
        RunningApi::start(stack.api_settings()).await?,
        RunningApi::start(stack.api_settings()).await?,
    ];
    let workers = [
        RunningWorker::start(stack.worker_settings()).await?,
        RunningWorker::start(stack.worker_settings()).await?,
    ];
    stack.open_sale("switch", 300, 1).await?;
    // The load is over in a second: let the group settle so both workers own partitions.
    let metric = async |port: u16, name: &str| -> anyhow::Result<f64> {
        let m = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await?
            .text()
            .await?;
        Ok(m.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let a = metric(workers[0].admin_port, "worker_assigned_partitions").await?;
        let b = metric(workers[1].admin_port, "worker_assigned_partitions").await?;
        if (a > 0.0 && b > 0.0 && a + b == 6.0) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let crowd = |offset: usize| Burst {
        product: "switch".into(),
        users: 500,
        orders: 1_000,
        concurrency: 100,
        source_ips: 250 + offset,
    };
    let (first, second) = (crowd(0), crowd(1));
    let (a, b) = tokio::join!(
        burst::run(&apis[0].client, &first),
        burst::run(&apis[1].client, &second),
    );
    let mut accepted: HashMap<String, i64> = HashMap::new();
    let mut buyers = HashSet::new();
    for result in [&a, &b] {
        for code in result.counts().keys() {
            assert!(
                ["ACCEPTED", "SOLD_OUT", "PURCHASE_LIMIT_REACHED"].contains(&code.as_str()),
                "{code}: {:?}",
                result.counts()
            );
        }
        for (sent, answer) in result.accepted() {
            accepted.insert(answer.order_id().expect("id"), 1);
            assert!(
                buyers.insert(sent.user.clone()),
                "{} bought twice across instances",
                sent.user
            );
        }
    }
    assert_eq!(
        accepted.len(),
        300,
        "exactly the stock, across two instances"
    );

    let report = stack
        .drained_audit(
            "switch",
            &audit::Expectation {
                accepted: accepted.clone(),
                unresolved: HashSet::new(),
                ..Default::default()
            },
        )
        .await?;
    assert!(report.passed(), "{:?}", report.failures());

    // Both workers took part (the topic's six partitions are split between them).
    for w in &workers {
        let rows = metric(w.admin_port, "worker_rows_inserted_total").await?;
        assert!(rows > 0.0, "a worker persisted nothing");
    }
    let [w1, w2] = workers;
    w1.stop().await?;
    w2.stop().await?;
    let [a1, a2] = apis;
    a1.stop().await?;
    a2.stop().await
}
