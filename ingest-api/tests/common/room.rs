//! The waiting room's steps, for the tests that go through it.
#![allow(clippy::expect_used)] // a test may expect

use std::time::{Duration, Instant};

use flashctl::room::{NewRoom, open};
use serde_json::Value;
use testkit::TestStack;
use testkit::client::{Answer, Client};

pub fn now_ms() -> u64 {
    shared::event::now_ms()
}

pub async fn open_room(
    stack: &TestStack,
    product: &str,
    opens_in: Duration,
    rate: f64,
) -> anyhow::Result<u64> {
    let mut redis = stack.redis().await?;
    let room = NewRoom {
        prequeue_from_ms: now_ms(),
        opens_at_ms: now_ms() + opens_in.as_millis() as u64,
        rate,
        burst: 2,
        max_active: 1_000,
        claim_window: Duration::from_secs(30),
        message: "welcome".into(),
    };
    Ok(open(&mut redis, &stack.keys, &product.parse()?, &room).await?)
}

pub fn wait(a: &Answer) -> Value {
    a.json()["wait"].clone()
}

pub fn code(a: &Answer) -> String {
    a.code()
}

/// Polls until the ticket's state is one of `states` (or 10 s pass); the last answer.
pub async fn until(
    c: &Client,
    product: &str,
    ticket: &str,
    device: &str,
    states: &[&str],
) -> anyhow::Result<Answer> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = c.queue_status(product, ticket, device).await?;
        let now = wait(&a)["state"].as_str().unwrap_or_default().to_owned();
        if states.contains(&now.as_str()) || Instant::now() > deadline {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Claims, waiting out `ROOM_THROTTLED` (the room's own rate) as `Retry-After` says.
pub async fn claim_patiently(
    c: &Client,
    product: &str,
    user: &str,
    ticket: &str,
    device: &str,
) -> anyhow::Result<Answer> {
    loop {
        let a = c.claim(product, user, ticket, device).await?;
        if code(&a) != "ROOM_THROTTLED" {
            return Ok(a);
        }
        assert_eq!(a.status, 429);
        let secs = a.retry_after_secs().expect("Retry-After");
        tokio::time::sleep(Duration::from_millis(secs * 200)).await;
    }
}
