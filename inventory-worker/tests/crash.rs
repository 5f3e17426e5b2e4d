//! The real `inventory-worker` binary under SIGKILL and SIGTERM: no duplicate, no
//! missing row, whatever moment it dies.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::Duration;
use testkit::sales::SaleStack;

use common::{WorkerProcess, counts, event, publish, wait_for_rows};
use testkit::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_leaves_no_duplicate_and_no_gap() -> anyhow::Result<()> {
    const N: usize = 4_000;
    let stack = TestStack::new().await?;
    stack.open_sale("kill-me", N as u32, 0).await?;
    let events = publish(&stack, (0..N).map(|i| event("kill-me", i)).collect()).await?;
    let pg = stack.pg().await?;

    let mut worker = WorkerProcess::spawn(&stack, 20, 0)?;
    let seen = wait_for_rows(&pg, "kill-me", 200, Duration::from_secs(60)).await?;
    worker.kill()?; // SIGKILL: no drain, no commit
    let (at_kill, _, _) = counts(&pg, "kill-me").await?;
    println!("killed with {at_kill} of {N} rows written (saw {seen})");
    assert!(
        at_kill > 0 && at_kill < N as i64,
        "the kill must land mid-run, got {at_kill}"
    );

    let mut worker = WorkerProcess::spawn(&stack, 200, 0)?;
    let done = wait_for_rows(&pg, "kill-me", N as i64, Duration::from_secs(120)).await?;
    // Give redelivered batches a moment to (not) add anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(worker.terminate()?, "SIGTERM must stop the worker cleanly");

    let (rows, distinct, sold) = counts(&pg, "kill-me").await?;
    assert_eq!(done, N as i64);
    assert_eq!(rows, N as i64, "missing or duplicated rows");
    assert_eq!(distinct, N as i64);
    assert_eq!(sold, N as i64, "sales.sold must count each order once");
    let ids: std::collections::HashSet<String> = pg
        .query(
            "SELECT order_id::text FROM orders WHERE product_id = 'kill-me'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(events.iter().all(|e| ids.contains(&e.order_id.to_string())));
    Ok(())
}
