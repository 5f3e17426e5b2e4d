//! `POST /order` and `GET /order/{id}` over real HTTP against real Redis and Kafka.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::time::Duration;
use stores::records::sale::field as sale_field;
use testkit::api::ApiStack;
use testkit::sales::SaleStack;

mod common;

use common::{assert_problem, key, remaining};
use testkit::TestStack;
use testkit::api::RunningApi;
use testkit::client::{Client, replace_header as with, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_replay_reuse_and_lookup() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale("phone", 10, 2).await?;
    let c = &api.client;

    let k = key();
    let body = Client::body("phone", "alice", 1);
    let first = c.place(&body, &k).await?;
    assert_eq!(
        first.status,
        202,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    let json = first.json();
    let id = json["orderId"].as_str().expect("orderId").to_owned();
    assert_eq!(
        first.header("location"),
        Some(format!("/order/{id}").as_str())
    );
    assert_eq!(json["status"], "accepted");
    assert_eq!(json["productId"], "phone");
    assert_eq!(json["userId"], "alice");
    assert_eq!(json["quantity"], 1);
    assert!(first.header("idempotent-replayed").is_none());

    // Same key, same order (serialized differently, quoted key): the same answer.
    let same = br#"{"quantity":1,"userId":"alice","productId":"phone"}"#;
    let replay = c.place(same, &format!("\"{k}\"")).await?;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body, "replay must be byte for byte");
    assert_eq!(
        remaining(&stack, "phone").await?,
        9,
        "a replay takes no stock"
    );

    // X-Idempotency-Key is an alias.
    let aliased = c
        .http()
        .post(format!("{}/order", c.base_url()))
        .header("content-type", "application/json")
        .header("x-idempotency-key", &k);
    let signed = c.sign(&body, &k, shared::event::now_ms());
    let aliased = send(
        aliased
            .header("x-request-time", signed.request_time)
            .header("x-signature", signed.signature)
            .header("x-key-id", "test")
            .body(body.clone()),
    )
    .await?;
    assert_eq!(aliased.status, 202);
    assert_eq!(aliased.header("idempotent-replayed"), Some("true"));

    // Same key, different order.
    let other = c.place(&Client::body("phone", "alice", 2), &k).await?;
    assert_problem(&other, 422, "IDEMPOTENCY_KEY_REUSED");

    // Lookup.
    let got = c.get_order(&id).await?;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["orderId"], id.as_str());
    assert_eq!(got.json()["status"], "accepted");
    assert_problem(
        &c.get_order(&uuid::Uuid::new_v4().to_string()).await?,
        404,
        "ORDER_NOT_FOUND",
    );
    assert_problem(&c.get_order("not-a-uuid").await?, 404, "ORDER_NOT_FOUND");

    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_refusals() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale("tv", 3, 2).await?;
    let c = &api.client;

    assert_problem(
        &c.place(&Client::body("no-such-sale", "bob", 1), &key())
            .await?,
        404,
        "SALE_NOT_FOUND",
    );
    assert_eq!(
        c.place(&Client::body("tv", "bob", 2), &key()).await?.status,
        202
    );
    assert_problem(
        &c.place(&Client::body("tv", "bob", 1), &key()).await?,
        409,
        "PURCHASE_LIMIT_REACHED",
    );
    // One unit left: asking for two is SOLD_OUT, and takes nothing.
    assert_problem(
        &c.place(&Client::body("tv", "carol", 2), &key()).await?,
        409,
        "SOLD_OUT",
    );
    assert_eq!(remaining(&stack, "tv").await?, 1);
    assert_eq!(
        c.place(&Client::body("tv", "carol", 1), &key())
            .await?
            .status,
        202
    );
    assert_problem(
        &c.place(&Client::body("tv", "dave", 1), &key()).await?,
        409,
        "SOLD_OUT",
    );

    // A halted sale refuses.
    let mut redis = stack.redis().await?;
    redis::cmd("HSET")
        .arg(stack.keys.sale(&"tv".parse()?).sale())
        .arg(sale_field::STATE)
        .arg("halted")
        .exec_async(&mut redis)
        .await?;
    let halted = c.place(&Client::body("tv", "erin", 1), &key()).await?;
    assert_problem(&halted, 409, "SALE_NOT_OPEN");
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_explained() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale("cam", 5, 0).await?;
    let c = &api.client;
    let body = Client::body("cam", "frank", 1);

    // 415 before anything else.
    let a = send(with(
        c.order_request(&body, &key()),
        "content-type",
        "text/plain",
    ))
    .await?;
    assert_problem(&a, 415, "UNSUPPORTED_MEDIA_TYPE");
    // 413: declared too large, and streamed too large (chunked, no Content-Length).
    let big = vec![b' '; 16 * 1024 + 1];
    assert_problem(&c.place(&big, &key()).await?, 413, "PAYLOAD_TOO_LARGE");
    let chunks =
        futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let a = send(
        c.http()
            .post(format!("{}/order", c.base_url()))
            .header("content-type", "application/json")
            .header("idempotency-key", key())
            .body(reqwest::Body::wrap_stream(chunks)),
    )
    .await?;
    assert_problem(&a, 413, "PAYLOAD_TOO_LARGE");
    // Idempotency key.
    let a = send(
        c.http()
            .post(format!("{}/order", c.base_url()))
            .header("content-type", "application/json")
            .body(body.clone()),
    )
    .await?;
    assert_problem(&a, 400, "MISSING_IDEMPOTENCY_KEY");
    assert_problem(
        &c.place(&body, "short").await?,
        400,
        "INVALID_IDEMPOTENCY_KEY",
    );
    // Signature and freshness.
    let a = send(with(c.order_request(&body, &key()), "x-signature", "v1=00")).await?;
    assert_problem(&a, 401, "INVALID_SIGNATURE");
    let k = key();
    let stale = c.sign(&body, &k, shared::event::now_ms() - 31_000);
    let req = with(
        c.order_request(&body, &k),
        "x-request-time",
        &stale.request_time,
    );
    let a = send(with(req, "x-signature", &stale.signature)).await?;
    assert_problem(&a, 401, "REQUEST_EXPIRED");
    let a = send(with(c.order_request(&body, &key()), "x-key-id", "retired")).await?;
    assert_problem(&a, 401, "INVALID_SIGNATURE");
    // Schema: every violation with a pointer, no value echoed.
    let a = c
        .place(
            br#"{"productId":"CAM!","userId":"u","quantity":99,"coupon":"x"}"#,
            &key(),
        )
        .await?;
    assert_problem(&a, 400, "VALIDATION_FAILED");
    let errors = a.json()["errors"].as_array().cloned().unwrap_or_default();
    let pointers: Vec<&str> = errors
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert!(
        pointers.contains(&"/productId") && pointers.contains(&"/quantity"),
        "{errors:?}"
    );
    assert!(!String::from_utf8_lossy(&a.body).contains("CAM!"));
    assert_problem(
        &c.place(b"{not json", &key()).await?,
        400,
        "VALIDATION_FAILED",
    );

    // None of it took stock.
    assert_eq!(remaining(&stack, "cam").await?, 5);
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_retries_admit_once() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack
        .open_sale_with("console", 100, 0, flashctl::guard::Limits::off())
        .await?;
    let k = key();
    let body = Client::body("console", "gina", 1);
    let answers =
        futures_util::future::join_all((0..50).map(|_| api.client.place(&body, &k))).await;
    let mut ids = std::collections::HashSet::new();
    for a in answers {
        let a = a?;
        match a.status {
            202 => {
                ids.insert(a.order_id().expect("id"));
            }
            409 => assert_problem(&a, 409, "IDEMPOTENCY_IN_FLIGHT"),
            // Replays skip the sale's limits; this instance's per-address limiter applies.
            429 => assert_problem(&a, 429, "RATE_LIMIT_EXCEEDED"),
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&a.body)),
        }
    }
    assert_eq!(ids.len(), 1, "every 202 names the same order");
    assert_eq!(
        remaining(&stack, "console").await?,
        99,
        "exactly one unit taken"
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_fast() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut settings = stack.api_settings();
    // A port nothing listens on: every admission must fail closed.
    settings.redis_url = shared::Secret::new("redis://127.0.0.1:1".into());
    settings.redis_cluster_nodes.clear();
    settings.redis_timeout_ms = 150;
    settings.redis_replica_wait_ms = 50;
    let api = RunningApi::start(settings).await?;
    let started = std::time::Instant::now();
    let a = api
        .client
        .place(&Client::body("any", "hank", 1), &key())
        .await?;
    assert_problem(&a, 503, "UNAVAILABLE");
    assert!(a.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "took {:?}",
        started.elapsed()
    );
    let ready = send(
        api.client
            .http()
            .get(format!("http://127.0.0.1:{}/readyz", api.admin_port)),
    )
    .await?;
    assert_eq!(ready.status, 503);
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let admin = |path: &str| {
        send(
            api.client
                .http()
                .get(format!("http://127.0.0.1:{}{path}", api.admin_port)),
        )
    };
    assert_eq!(admin("/healthz").await?.status, 200);
    let ready = admin("/readyz").await?;
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    let metrics = admin("/metrics").await?;
    assert_eq!(metrics.status, 200);
    assert!(
        String::from_utf8_lossy(&metrics.body).contains("ingest_order_request_duration_seconds")
    );
    api.stop().await?;

    // Pointed at a topic that does not exist, readiness says which.
    let mut settings = stack.api_settings();
    settings.kafka_topic = "no-such-topic-here".into();
    let api = RunningApi::start(settings).await?;
    let ready = send(
        api.client
            .http()
            .get(format!("http://127.0.0.1:{}/readyz", api.admin_port)),
    )
    .await?;
    assert_eq!(ready.status, 503);
    assert!(String::from_utf8_lossy(&ready.body).contains("no-such-topic-here"));
    api.stop().await
}
