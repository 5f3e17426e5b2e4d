//! Rate limits and blocks as shoppers and bots meet them, over real HTTP against real
//! Redis: one limit's refusal consumes no other, client identity behind proxies, live
//! changes, and the Lua GCRA checked against the Rust one.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::{Duration, Instant};
use testkit::api::ApiStack;
use testkit::sales::SaleStack;

use common::{body, expect, key, limits, remaining};
use flashctl::guard::{self, Limits, Target};
use shared::keys::Scope;
use testkit::TestStack;
use testkit::api::RunningApi;
use testkit::client::{Client, loopback_ip, replace_header as with, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_one_limit_consumes_none_of_the_others() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    // Minute periods: nothing refills while the test runs.
    stack
        .open_sale_with(
            "gpu",
            100,
            0,
            limits(&[(Scope::Ip, "1/m:2"), (Scope::User, "1/m:3")]),
        )
        .await?;
    let a = api.client.bound_to(loopback_ip(10));
    let b = api.client.bound_to(loopback_ip(11));

    let first = a.place(&body("gpu", "ann"), &key()).await?;
    expect(&first, 202, "ACCEPTED");
    // The limit closest to exhaustion is the IP's (1 left of 2; the user has 2 of 3).
    assert_eq!(first.header("ratelimit-policy"), Some("\"ip\";q=2;w=120"));
    assert_eq!(first.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("1"));
    assert!(
        first
            .header("ratelimit")
            .is_some_and(|v| v.starts_with("\"ip\";r=1;t="))
    );
    assert!(first.header("x-ratelimit-reset").is_some());
    expect(
        &a.place(&body("gpu", "ann"), &key()).await?,
        202,
        "ACCEPTED",
    );

    let refused = a.place(&body("gpu", "ann"), &key()).await?;
    expect(&refused, 429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(refused.json()["scope"], "ip");
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()?;
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));

    // The refused request did not consume the user's limit: one left, from another IP.
    expect(
        &b.place(&body("gpu", "ann"), &key()).await?,
        202,
        "ACCEPTED",
    );
    let user_refused = b.place(&body("gpu", "ann"), &key()).await?;
    expect(&user_refused, 429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(user_refused.json()["scope"], "user");
    assert_eq!(remaining(&stack, "gpu").await?, 97);
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_from_trusted_proxies() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack
        .open_sale_with("drone", 100, 0, limits(&[(Scope::Ip, "1/m:2")]))
        .await?;
    let spoof = |c: &Client, xff: &str| {
        let req = c.order_request(&body("drone", "bo"), &key());
        send(with(req, "x-forwarded-for", xff))
    };

    // Untrusted peer: every forged address still counts against the peer's bucket.
    let api = RunningApi::start(stack.api_settings()).await?;
    let c = api.client.bound_to(loopback_ip(20));
    expect(&spoof(&c, "198.51.100.1").await?, 202, "ACCEPTED");
    expect(&spoof(&c, "198.51.100.2").await?, 202, "ACCEPTED");
    let third = spoof(&c, "198.51.100.3").await?;
    expect(&third, 429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(third.json()["scope"], "ip");
    api.stop().await?;

    // Trusted proxy: the rightmost untrusted hop is the client, so each is its own bucket,
    // and a client cannot escape by prepending addresses of its own.
    let mut settings = stack.api_settings();
    settings.trusted_proxies = "127.0.0.0/8".into();
    let api = RunningApi::start(settings).await?;
    let proxy = api.client.bound_to(loopback_ip(21));
    for i in 0..3 {
        let a = spoof(&proxy, &format!("203.0.113.{i}")).await?;
        expect(&a, 202, "ACCEPTED");
    }
    expect(
        &spoof(&proxy, "6.6.6.6, 203.0.113.0").await?,
        202,
        "ACCEPTED",
    );
    let a = spoof(&proxy, "7.7.7.7, 203.0.113.0").await?;
    expect(&a, 429, "RATE_LIMIT_EXCEEDED");
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_blocks_change_live() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale_with("watch", 100, 0, Limits::off()).await?;
    let mut redis = stack.redis().await?;
    let product = "watch".parse()?;
    let c = api.client.bound_to(loopback_ip(30));
    for _ in 0..5 {
        let a = c.place(&body("watch", "cy"), &key()).await?;
        expect(&a, 202, "ACCEPTED");
        assert!(
            a.header("ratelimit").is_none(),
            "no limit configured, none reported"
        );
    }

    // An operator tightens the IP limit: the very next request sees it.
    guard::limits_set(
        &mut redis,
        &stack.keys,
        &product,
        &limits(&[(Scope::Ip, "1/m:1")]),
    )
    .await?;
    let now = guard::limits_get(&mut redis, &stack.keys, &product).await?;
    assert_eq!(
        now.0[&Scope::Ip].map(|l| l.to_string()),
        Some("1/m:1".into())
    );
    expect(
        &c.place(&body("watch", "cy"), &key()).await?,
        202,
        "ACCEPTED",
    );
    expect(
        &c.place(&body("watch", "cy"), &key()).await?,
        429,
        "RATE_LIMIT_EXCEEDED",
    );
    guard::limits_set(
        &mut redis,
        &stack.keys,
        &product,
        &limits(&[(Scope::Ip, "off")]),
    )
    .await?;
    expect(
        &c.place(&body("watch", "cy"), &key()).await?,
        202,
        "ACCEPTED",
    );

    // Blocks, by user, device and address; lifted by unblock or by their TTL.
    let user = Target::parse(Scope::User, "cy")?;
    guard::block(&mut redis, &stack.keys, &user, Some(&product), None, "test").await?;
    let blocked = c.place(&body("watch", "cy"), &key()).await?;
    expect(&blocked, 403, "BLOCKED");
    assert_eq!(blocked.json()["scope"], "user");
    expect(
        &c.place(&body("watch", "dee"), &key()).await?,
        202,
        "ACCEPTED",
    );
    guard::unblock(&mut redis, &stack.keys, &user, Some(&product)).await?;
    expect(
        &c.place(&body("watch", "cy"), &key()).await?,
        202,
        "ACCEPTED",
    );

    let device = Target::parse(Scope::Fingerprint, "rooted-phone")?;
    guard::block(
        &mut redis,
        &stack.keys,
        &device,
        None,
        Some(Duration::from_millis(400)),
        "test",
    )
    .await?;
    let a = c
        .place_from(&body("watch", "eve"), &key(), "rooted-phone")
        .await?;
    expect(&a, 403, "BLOCKED");
    assert_eq!(a.json()["scope"], "fingerprint");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut expired = false;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if c.place_from(&body("watch", "eve"), &key(), "rooted-phone")
            .await?
            .status
            == 202
        {
            expired = true;
            break;
        }
    }
    assert!(expired, "a block with a TTL lifts by itself");

    let ip = Target::parse(Scope::Ip, &loopback_ip(31).to_string())?;
    guard::block(&mut redis, &stack.keys, &ip, Some(&product), None, "test").await?;
    let a = api
        .client
        .bound_to(loopback_ip(31))
        .place(&body("watch", "fay"), &key())
        .await?;
    expect(&a, 403, "BLOCKED");
    assert_eq!(a.json()["scope"], "ip");
    api.stop().await
}

/// The GCRA of `lua/lib/gate.lua` (extracted between its markers and run by Redis with
/// injected times) agrees with `shared::limits::gcra` step for step.
#[tokio::test]
async fn lua_gcra_matches_the_rust_one() -> anyhow::Result<()> {
    let script = include_str!("../../lua/lib/gate.lua");
    let start = script.find("-- gcra:begin").expect("marker");
    let end = script.find("-- gcra:end").expect("marker");
    let driver = format!(
        "{}\nlocal out = {{}}\nlocal tat = nil\nlocal t, b = tonumber(ARGV[1]), tonumber(ARGV[2])\n\
         for i = 3, #ARGV do\n  local now = tonumber(ARGV[i])\n  local ok, new_tat, left, reset, wait = gcra(tat, t, b, now)\n  \
         if ok then tat = new_tat end\n  out[#out + 1] = {{ok and 1 or 0, string.format('%.0f', new_tat), left, reset, wait}}\nend\nreturn out",
        &script[start..end]
    );
    let stack = testkit::StackEnv::from_env();
    let mut redis = redis::Client::open(stack.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for _ in 0..50 {
        let t = 1 + next(500_000);
        let b = 1 + next(30);
        let mut now = 1_795_000_000_000_000u64;
        let times: Vec<u64> = (0..100)
            .map(|_| {
                now += next(2 * t);
                now
            })
            .collect();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(&driver).arg(0).arg(t).arg(b);
        for x in &times {
            cmd.arg(*x);
        }
        let lua: Vec<(i64, String, i64, i64, i64)> = cmd.query_async(&mut redis).await?;
        let mut tat = None;
        for (i, now) in times.iter().enumerate() {
            let g = shared::limits::gcra(tat, t, b, *now);
            if g.allowed {
                tat = Some(g.tat_us);
            }
            let (ok, lua_tat, left, reset, wait) = &lua[i];
            assert_eq!(*ok == 1, g.allowed, "step {i} (t={t}, b={b})");
            assert_eq!(lua_tat.parse::<u64>()?, g.tat_us, "step {i}");
            assert_eq!(*left as u64, g.remaining, "step {i}");
            assert_eq!(*reset as u64, g.reset_us, "step {i}");
            assert_eq!(*wait as u64, g.retry_us, "step {i}");
        }
    }
    Ok(())
}
