//! What every answer carries (rate-limit, security and CORS headers, problem+json) and
//! how violations are logged, counted per hour and exported.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};
use testkit::api::ApiStack;
use testkit::sales::SaleStack;

use common::{body, expect, key, limits, metrics, sample};
use flashctl::guard::{self, Target};
use shared::keys::Scope;
use testkit::api::RunningApi;
use testkit::client::{Answer, Client, replace_header as with, send};
use testkit::{TEST_KEY_ID, TEST_SECRET, TestStack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_its_headers() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale("lamp", 1, 1).await?;
    let c = &api.client;
    let answers = vec![
        c.place(&body("lamp", "sam"), &key()).await?,
        c.place(&body("lamp", "tom"), &key()).await?,
        c.place(b"{}", &key()).await?,
        send(with(
            c.order_request(&body("lamp", "u"), &key()),
            "x-signature",
            "v1=0",
        ))
        .await?,
        send(with(
            c.order_request(&body("lamp", "u"), &key()),
            "content-type",
            "text/xml",
        ))
        .await?,
        c.place(&body("no-sale", "u"), &key()).await?,
    ];
    let codes: Vec<String> = answers.iter().map(Answer::code).collect();
    assert_eq!(
        codes,
        [
            "ACCEPTED",
            "SOLD_OUT",
            "VALIDATION_FAILED",
            "INVALID_SIGNATURE",
            "UNSUPPORTED_MEDIA_TYPE",
            "SALE_NOT_FOUND"
        ]
    );
    let others = vec![
        c.get_order(&answers[0].order_id().expect("id")).await?,
        send(c.http().get(format!("{}/nowhere", c.base_url()))).await?,
        send(c.http().put(format!("{}/order", c.base_url()))).await?,
        send(
            c.http()
                .get(format!("http://127.0.0.1:{}/healthz", api.admin_port)),
        )
        .await?,
    ];
    assert_eq!(others[1].code(), "ROUTE_NOT_FOUND");
    assert_eq!(others[2].code(), "METHOD_NOT_ALLOWED");
    for a in answers.iter().chain(&others) {
        for (name, value) in [
            (
                "strict-transport-security",
                "max-age=63072000; includeSubDomains",
            ),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(a.header(name), Some(value), "{name} on {}", a.code());
        }
        assert!(a.header("content-security-policy").is_some());
    }
    for a in &answers {
        for name in [
            "ratelimit-policy",
            "ratelimit",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(a.header(name).is_some(), "{name} missing on {}", a.code());
        }
    }

    // CORS: any origin in development…
    let preflight = |origin: &str| {
        send(
            c.http()
                .request(reqwest::Method::OPTIONS, format!("{}/order", c.base_url()))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,x-signature"),
        )
    };
    let a = preflight("https://anything.example").await?;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://anything.example")
    );
    api.stop().await?;

    // …an explicit list outside it, which is mandatory there.
    let mut settings = stack.api_settings();
    settings.environment = ingest_api::settings::Environment::Staging;
    settings.ip_hash_key = Some(shared::Secret::new("staging-ip-hash-key-0123".into()));
    let refused = settings
        .clone()
        .validate()
        .expect_err("ALLOWED_ORIGINS is required");
    assert!(refused.to_string().contains("ALLOWED_ORIGINS"));
    settings.allowed_origins = "https://shop.example".into();
    let api = RunningApi::start(settings).await?;
    let c = &api.client;
    let preflight = |origin: &str| {
        send(
            c.http()
                .request(reqwest::Method::OPTIONS, format!("{}/order", c.base_url()))
                .header("origin", origin)
                .header("access-control-request-method", "POST"),
        )
    };
    let ok = preflight("https://shop.example").await?;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let evil = preflight("https://evil.example").await?;
    assert_eq!(evil.header("access-control-allow-origin"), None);
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_are_logged_counted_per_hour_and_exported() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack
        .open_sale_with("camera", 100, 0, limits(&[(Scope::User, "1/m:1")]))
        .await?;
    let c = &api.client;
    let k = key();
    expect(&c.place(&body("camera", "vic"), &k).await?, 202, "ACCEPTED");
    expect(
        &c.place(&body("camera", "vic"), &key()).await?,
        429,
        "RATE_LIMIT_EXCEEDED",
    );
    expect(
        &c.place(&Client::body("camera", "wes", 2), &key()).await?,
        202,
        "ACCEPTED",
    );
    expect(
        &c.place(&Client::body("camera", "vic", 3), &k).await?,
        429,
        "RATE_LIMIT_EXCEEDED",
    );
    let reuse_key = key();
    expect(
        &c.place(&body("camera", "xia"), &reuse_key).await?,
        202,
        "ACCEPTED",
    );
    guard::limits_set(
        &mut stack.redis().await?,
        &stack.keys,
        &"camera".parse()?,
        &limits(&[(Scope::User, "off")]),
    )
    .await?;
    expect(
        &c.place(&Client::body("camera", "xia", 2), &reuse_key)
            .await?,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let user = Target::parse(Scope::User, "yan")?;
    guard::block(
        &mut stack.redis().await?,
        &stack.keys,
        &user,
        None,
        None,
        "t",
    )
    .await?;
    expect(
        &c.place(&body("camera", "yan"), &key()).await?,
        403,
        "BLOCKED",
    );
    expect(
        &send(with(
            c.order_request(&body("camera", "zed"), &key()),
            "x-signature",
            "v1=00",
        ))
        .await?,
        401,
        "INVALID_SIGNATURE",
    );
    let stale = Client::new(c.base_url(), Some(TEST_KEY_ID), TEST_SECRET);
    let k2 = key();
    let signed = stale.sign(
        &body("camera", "zed"),
        &k2,
        shared::event::now_ms() - 60_000,
    );
    let req = with(
        c.order_request(&body("camera", "zed"), &k2),
        "x-request-time",
        &signed.request_time,
    );
    expect(
        &send(with(req, "x-signature", &signed.signature)).await?,
        401,
        "REQUEST_EXPIRED",
    );

    // Per hour, per type, in Redis (the script's own, and the flushed pre-admission ones).
    let hour = shared::event::now_ms() / 3_600_000;
    let mut redis = stack.redis().await?;
    let product: HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(stack.keys.sale(&"camera".parse()?).violations(hour))
        .query_async(&mut redis)
        .await?;
    assert_eq!(product.get("rate_user"), Some(&2), "{product:?}");
    assert_eq!(product.get("key_reused"), Some(&1), "{product:?}");
    assert_eq!(product.get("blocked_user"), Some(&1), "{product:?}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(stack.keys.sale(&"camera".parse()?).violations(hour))
        .query_async(&mut redis)
        .await?;
    assert!(ttl > 24 * 3600, "kept past 24 h: {ttl}");
    let deadline = Instant::now() + Duration::from_secs(3);
    let global = loop {
        let g: HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(stack.keys.global_violations(hour))
            .query_async(&mut redis)
            .await?;
        if g.len() >= 2 || Instant::now() > deadline {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(global.get("invalid_signature"), Some(&1), "{global:?}");
    assert_eq!(global.get("request_expired"), Some(&1), "{global:?}");

    let m = metrics(&api).await?;
    for kind in [
        "rate_user",
        "key_reused",
        "blocked_user",
        "invalid_signature",
        "request_expired",
    ] {
        assert!(
            sample(&m, "ingest_violations_total", &format!("kind=\"{kind}\"")) >= 1.0,
            "{kind} not exported"
        );
    }
    api.stop().await
}
