//! Signatures as attackers try them: a captured request cannot buy twice, and a rotated
//! key works until it is removed.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use common::{body, expect, key, remaining};
use flashctl::guard::Limits;
use testkit::api::ApiStack;
use testkit::api::RunningApi;
use testkit::client::{Client, send};
use testkit::sales::SaleStack;
use testkit::{TEST_KEY_ID, TestStack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_request_cannot_buy_twice() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale_with("ring", 10, 0, Limits::off()).await?;
    let k = key();
    let b = body("ring", "gus");
    let signed = api.client.sign(&b, &k, shared::event::now_ms());
    let captured = || {
        api.client
            .http()
            .post(format!("{}/order", api.client.base_url()))
            .header("content-type", "application/json")
            .header("x-key-id", TEST_KEY_ID)
            .header("x-request-time", signed.request_time.clone())
            .header("x-signature", signed.signature.clone())
            .body(b.clone())
    };
    let first = send(captured().header("idempotency-key", &k)).await?;
    expect(&first, 202, "ACCEPTED");
    let replayed = send(captured().header("idempotency-key", &k)).await?;
    expect(&replayed, 202, "ACCEPTED");
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.order_id(), first.order_id());
    // The key is signed: a fresh key under the captured signature is refused.
    let rekeyed = send(captured().header("idempotency-key", key())).await?;
    expect(&rekeyed, 401, "INVALID_SIGNATURE");
    assert_eq!(
        remaining(&stack, "ring").await?,
        9,
        "one unit, whatever was replayed"
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_key_id_works_until_it_is_removed() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale_with("tablet", 10, 0, Limits::off()).await?;
    let mut settings = stack.api_settings();
    settings.signing_keys =
        shared::Secret::new("old:old-secret-0123456789,new:new-secret-0123456789".into());
    let api = RunningApi::start(settings.clone()).await?;
    let base = api.client.base_url().to_owned();
    let old = Client::new(&base, Some("old"), b"old-secret-0123456789");
    let new = Client::new(&base, Some("new"), b"new-secret-0123456789");
    expect(
        &old.place(&body("tablet", "hal"), &key()).await?,
        202,
        "ACCEPTED",
    );
    expect(
        &new.place(&body("tablet", "hal"), &key()).await?,
        202,
        "ACCEPTED",
    );
    api.stop().await?;

    // Rotation finished: the old key is gone.
    settings.signing_keys = shared::Secret::new("new:new-secret-0123456789".into());
    let api = RunningApi::start(settings).await?;
    let base = api.client.base_url().to_owned();
    let old = Client::new(&base, Some("old"), b"old-secret-0123456789");
    let new = Client::new(&base, Some("new"), b"new-secret-0123456789");
    expect(
        &old.place(&body("tablet", "hal"), &key()).await?,
        401,
        "INVALID_SIGNATURE",
    );
    expect(
        &new.place(&body("tablet", "hal"), &key()).await?,
        202,
        "ACCEPTED",
    );
    // With a single key, X-Key-Id may be omitted.
    let anonymous = Client::new(&base, None, b"new-secret-0123456789");
    expect(
        &anonymous.place(&body("tablet", "hal"), &key()).await?,
        202,
        "ACCEPTED",
    );
    api.stop().await
}
