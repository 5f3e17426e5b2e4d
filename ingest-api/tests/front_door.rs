//! The front door as shoppers and attackers meet it, over real HTTP against real Redis
//! and Kafka: limits, blocks, client identity, signatures and key rotation, replays,
//! failures of Redis and Kafka, the sold-out fast path, headers and violations.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flashctl::guard::{self, Limits, Target, parse_limit};
use loadtest::client::{Answer, OrderClient, loopback_ip, replace_header as with, send};
use loadtest::stack::{PrivateRedis, RunningApi, TEST_KEY_ID, TEST_SECRET, TestStack};
use shared::keys::Scope;

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn body(product: &str, user: &str) -> Vec<u8> {
    OrderClient::body(product, user, 1)
}

fn limits(spec: &[(Scope, &str)]) -> Limits {
    let mut l = Limits::off();
    for (scope, raw) in spec {
        l.0.insert(*scope, parse_limit(raw).expect("valid limit"));
    }
    l
}

#[track_caller]
fn expect(a: &Answer, status: u16, code: &str) {
    assert_eq!(
        a.status,
        status,
        "{code}: {}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.code(), code);
}

async fn metrics(api: &RunningApi) -> anyhow::Result<String> {
    let a = send(
        api.client
            .http()
            .get(format!("http://127.0.0.1:{}/metrics", api.admin_port)),
    )
    .await?;
    Ok(String::from_utf8_lossy(&a.body).into_owned())
}

/// Sum of the samples of `name` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn remaining(stack: &TestStack, product: &str) -> anyhow::Result<i64> {
    let mut redis = stack.redis().await?;
    Ok(redis::cmd("HGET")
        .arg(stack.keys.sale(&product.parse()?).sale())
        .arg("remaining")
        .query_async(&mut redis)
        .await?)
}

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
    let spoof = |c: &OrderClient, xff: &str| {
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
    let old = OrderClient::new(&base, Some("old"), b"old-secret-0123456789");
    let new = OrderClient::new(&base, Some("new"), b"new-secret-0123456789");
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
    let old = OrderClient::new(&base, Some("old"), b"old-secret-0123456789");
    let new = OrderClient::new(&base, Some("new"), b"new-secret-0123456789");
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
    let anonymous = OrderClient::new(&base, None, b"new-secret-0123456789");
    expect(
        &anonymous.place(&body("tablet", "hal"), &key()).await?,
        202,
        "ACCEPTED",
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kafka_failure_the_same_key_tells_the_outcome() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale_with("bike", 10, 0, Limits::off()).await?;
    let mut broken = stack.api_settings();
    broken.kafka_brokers = "127.0.0.1:1".into();
    broken.kafka_publish_timeout_ms = 300;
    let api = RunningApi::start(broken).await?;
    let k = key();
    let b = body("bike", "ida");
    let failed = api.client.place(&b, &k).await?;
    expect(&failed, 503, "UNAVAILABLE");
    assert!(failed.header("retry-after").is_some());
    let pending = api.client.place(&b, &k).await?;
    expect(&pending, 409, "IDEMPOTENCY_IN_FLIGHT");
    assert_eq!(pending.header("retry-after"), Some("1"));
    api.stop().await?;

    // Whatever operators do meanwhile (halt the sale, block the user), the retry still
    // learns the outcome rather than a refusal that would read as "not bought".
    let mut redis = stack.redis().await?;
    let product = "bike".parse()?;
    flashctl::sale::set_state(
        &mut redis,
        &stack.keys,
        &product,
        shared::sale::SaleState::Halted,
    )
    .await?;
    guard::block(
        &mut redis,
        &stack.keys,
        &Target::parse(Scope::User, "ida")?,
        None,
        None,
        "t",
    )
    .await?;

    // A healthy instance's relay republishes the stranded order; the retry learns it.
    let mut healthy = stack.api_settings();
    healthy.relay_idle_ms = 200;
    let api = RunningApi::start(healthy).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        let a = api.client.place(&b, &k).await?;
        if a.status != 409 || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    expect(&outcome, 202, "ACCEPTED");
    assert_eq!(outcome.header("idempotent-replayed"), Some("true"));
    assert_eq!(remaining(&stack, "bike").await?, 9, "one unit taken, once");
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_falls_back_and_recovers() -> anyhow::Result<()> {
    let mut redis_server = PrivateRedis::start().await?;
    let mut stack = TestStack::new().await?;
    stack.env.redis_url = redis_server.url();
    stack.open_sale("tv-set", 100, 0).await?;
    let mut settings = stack.api_settings();
    settings.redis_timeout_ms = 150;
    let api = RunningApi::start(settings).await?;
    let c = api.client.bound_to(loopback_ip(40));
    expect(
        &c.place(&body("tv-set", "jo"), &key()).await?,
        202,
        "ACCEPTED",
    );
    let before = remaining(&stack, "tv-set").await?;

    // Hung Redis: every answer is a fast 503 (or, past the in-process per-IP limit, 429).
    // Admissions sent before the breaker opened may still run when Redis wakes up: those
    // 503s say the outcome is unknown, and the same key tells it.
    redis_server.pause()?;
    let mut codes: HashMap<String, usize> = HashMap::new();
    let mut unknown = Vec::new();
    for i in 0..30 {
        let user = format!("u{i}");
        let k = key();
        let started = Instant::now();
        let a = c.place_from(&body("tv-set", &user), &k, "d").await?;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(200),
            "answer {i} took {took:?}"
        );
        if a.status == 503 {
            assert!(a.header("retry-after").is_some());
            if a.json()["outcomeUnknown"] == true {
                unknown.push((user, k));
            }
        }
        *codes.entry(a.code()).or_default() += 1;
    }
    assert!(
        codes.get("UNAVAILABLE").is_some_and(|n| *n >= 20),
        "{codes:?}"
    );
    assert!(
        codes.get("RATE_LIMIT_EXCEEDED").is_some_and(|n| *n >= 1),
        "the per-IP limit falls back to the in-process limiter: {codes:?}"
    );
    assert!(!codes.contains_key("ACCEPTED"));
    assert!(
        unknown.len() <= 3,
        "the breaker stops sending after 3 failures: {unknown:?}"
    );

    // Back: recovery needs nobody.
    redis_server.resume()?;
    let other = api.client.bound_to(loopback_ip(41));
    let deadline = Instant::now() + Duration::from_secs(5);
    let recovered = loop {
        let a = other.place(&body("tv-set", "kim"), &key()).await?;
        if a.status == 202 || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    expect(&recovered, 202, "ACCEPTED");
    // Every unit taken while Redis hung belongs to a request whose retry learns it.
    let taken_in_hang = before - 1 - remaining(&stack, "tv-set").await?;
    let mut redis = stack.redis().await?;
    let sale = stack.keys.sale(&"tv-set".parse()?);
    let mut standing = 0;
    for (user, k) in &unknown {
        let idem = sale.idempotency(&user.parse()?, &shared::IdempotencyKey::parse(k.as_str())?);
        if redis::cmd("EXISTS")
            .arg(idem)
            .query_async::<i64>(&mut redis)
            .await?
            == 1
        {
            standing += 1;
            let retry = c.place_from(&body("tv-set", user), k, "d").await?;
            assert!(
                retry.status == 409 || retry.header("idempotent-replayed") == Some("true"),
                "{}",
                retry.code()
            );
        }
    }
    println!(
        "hang: {} answers with unknown outcome, {taken_in_hang} units taken, {standing} standing",
        unknown.len()
    );
    assert_eq!(
        standing, taken_in_hang,
        "no unit taken without a way to learn it"
    );

    // A Redis that answers with errors (here: out of memory) fails closed too.
    let mut admin = stack.redis().await?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .exec_async(&mut admin)
        .await?;
    let oom = other.place(&body("tv-set", "kit"), &key()).await?;
    expect(&oom, 503, "UNAVAILABLE");
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .exec_async(&mut admin)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = other.place(&body("tv-set", "kit"), &key()).await?;
        if a.status == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after OOM: {}",
            a.code()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Stopped Redis: refused connections, fast 503 again, nothing accepted.
    redis_server.kill()?;
    let started = Instant::now();
    let a = other.place(&body("tv-set", "lou"), &key()).await?;
    expect(&a, 503, "UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    // A restarted Redis without persistence lost the sale: fail closed, never "in stock".
    redis_server.restart().await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let a = other.place(&body("tv-set", "lou"), &key()).await?;
        if a.status != 503 || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    expect(&after, 404, "SALE_NOT_FOUND");
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_outbox_never_strands_stock() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale_with("kite", 10, 0, Limits::off()).await?;
    let mut redis = stack.redis().await?;
    let outbox = stack.keys.sale(&"kite".parse()?).outbox();
    expect(
        &api.client.place(&body("kite", "amy"), &key()).await?,
        202,
        "ACCEPTED",
    );
    // Someone destroys the consumer group and leaves an entry nobody delivered.
    redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&outbox)
        .arg("relay")
        .exec_async(&mut redis)
        .await?;
    redis::cmd("XADD")
        .arg(&outbox)
        .arg("*")
        .arg("stray")
        .arg("1")
        .exec_async(&mut redis)
        .await?;
    let a = api.client.place(&body("kite", "ben"), &key()).await?;
    expect(&a, 202, "ACCEPTED");
    assert_eq!(remaining(&stack, "kite").await?, 8);
    // The new order went through the group (pending, then confirmed); the stray entry was
    // not passed off as it.
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&outbox)
        .arg("relay")
        .query_async(&mut redis)
        .await?;
    assert_eq!(
        pending.first(),
        Some(&redis::Value::Int(0)),
        "confirmed entries leave the pending list: {pending:?}"
    );
    let len: i64 = redis::cmd("XLEN")
        .arg(&outbox)
        .query_async(&mut redis)
        .await?;
    assert_eq!(len, 1, "only the stray entry remains");
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_redis_round_trip_per_order() -> anyhow::Result<()> {
    let redis_server = PrivateRedis::start().await?;
    let mut stack = TestStack::new().await?;
    stack.env.redis_url = redis_server.url();
    stack.open_sale_with("pen", 5, 0, Limits::off()).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    // Warm up (the first call loads the scripts).
    expect(
        &api.client.place(&body("pen", "warm"), &key()).await?,
        202,
        "ACCEPTED",
    );

    let mut redis = stack.redis().await?;
    let evalsha = |info: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with("cmdstat_evalsha:"))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await?;
    let metrics_before = metrics(&api).await?;
    // 4 acceptances (stock 5, one taken by the warm-up), then 6 refusals, some of them
    // possibly answered from memory by the sold-out fast path.
    let mut accepted = 0;
    for i in 0..10 {
        let a = api
            .client
            .place(&body("pen", &format!("p{i}")), &key())
            .await?;
        if a.status == 202 {
            accepted += 1;
        }
    }
    let after: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await?;
    let metrics_after = metrics(&api).await?;
    let calls = sample(
        &metrics_after,
        "ingest_redis_admission_duration_seconds_count",
        "",
    ) - sample(
        &metrics_before,
        "ingest_redis_admission_duration_seconds_count",
        "",
    );
    let fast = sample(&metrics_after, "ingest_sold_out_fast_path_total", "")
        - sample(&metrics_before, "ingest_sold_out_fast_path_total", "");
    assert_eq!(accepted, 4);
    // One admission script call per request that was not answered from memory…
    assert_eq!(calls, 10.0 - fast, "admission calls");
    // …and, counted by Redis itself, exactly one more script call per accepted order
    // (the hand-off confirmation, pipelined with the status write).
    assert_eq!(
        evalsha(&after) - evalsha(&before),
        (10.0 - fast) as u64 + accepted
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sold_out_is_answered_from_memory_but_never_for_a_buyer() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    stack.open_sale_with("vinyl", 2, 0, Limits::off()).await?;
    let buyer_key = key();
    let first = api.client.place(&body("vinyl", "max"), &buyer_key).await?;
    expect(&first, 202, "ACCEPTED");
    expect(
        &api.client.place(&body("vinyl", "ned"), &key()).await?,
        202,
        "ACCEPTED",
    );
    expect(
        &api.client.place(&body("vinyl", "oli"), &key()).await?,
        409,
        "SOLD_OUT",
    );

    // Within a refresh the fast path answers for non-buyers without Redis.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let m = metrics(&api).await?;
        let before_calls = sample(&m, "ingest_redis_admission_duration_seconds_count", "");
        expect(
            &api.client.place(&body("vinyl", "pat"), &key()).await?,
            409,
            "SOLD_OUT",
        );
        let m = metrics(&api).await?;
        if sample(&m, "ingest_redis_admission_duration_seconds_count", "") == before_calls {
            break;
        }
        assert!(Instant::now() < deadline, "the fast path never engaged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (Answers from memory are limited per address by the in-process limiter, so the
    // crowd comes from many addresses, as it would.)
    let m = metrics(&api).await?;
    let calls = sample(&m, "ingest_redis_admission_duration_seconds_count", "");
    for i in 0..20 {
        let shopper = api.client.bound_to(loopback_ip(100 + i));
        let a = shopper
            .place(&body("vinyl", &format!("q{i}")), &key())
            .await?;
        expect(&a, 409, "SOLD_OUT");
    }
    let m = metrics(&api).await?;
    assert_eq!(
        sample(&m, "ingest_redis_admission_duration_seconds_count", ""),
        calls
    );
    assert!(sample(&m, "ingest_sold_out_fast_path_total", "") >= 20.0);

    // A buyer's retry still reaches Redis and replays the 202.
    let retry = api.client.place(&body("vinyl", "max"), &buyer_key).await?;
    expect(&retry, 202, "ACCEPTED");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, first.body);

    // Stock put back is seen within a second.
    let mut redis = stack.redis().await?;
    redis::cmd("HINCRBY")
        .arg(stack.keys.sale(&"vinyl".parse()?).sale())
        .arg("remaining")
        .arg(1)
        .exec_async(&mut redis)
        .await?;
    let restocked = Instant::now();
    loop {
        let a = api.client.place(&body("vinyl", "ray"), &key()).await?;
        if a.status == 202 {
            break;
        }
        assert!(
            restocked.elapsed() < Duration::from_secs(1),
            "restock not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.stop().await
}

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
        &c.place(&OrderClient::body("camera", "wes", 2), &key())
            .await?,
        202,
        "ACCEPTED",
    );
    expect(
        &c.place(&OrderClient::body("camera", "vic", 3), &k).await?,
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
        &c.place(&OrderClient::body("camera", "xia", 2), &reuse_key)
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
    let stale = OrderClient::new(c.base_url(), Some(TEST_KEY_ID), TEST_SECRET);
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

/// The GCRA in `lua/admit.lua` (extracted between its markers and run by Redis with
/// injected times) agrees with `shared::limits::gcra` step for step.
#[tokio::test]
async fn lua_gcra_matches_the_rust_one() -> anyhow::Result<()> {
    let script = include_str!("../../lua/admit.lua");
    let start = script.find("-- gcra:begin").expect("marker");
    let end = script.find("-- gcra:end").expect("marker");
    let driver = format!(
        "{}\nlocal out = {{}}\nlocal tat = nil\nlocal t, b = tonumber(ARGV[1]), tonumber(ARGV[2])\n\
         for i = 3, #ARGV do\n  local now = tonumber(ARGV[i])\n  local ok, new_tat, left, reset, wait = gcra(tat, t, b, now)\n  \
         if ok then tat = new_tat end\n  out[#out + 1] = {{ok and 1 or 0, string.format('%.0f', new_tat), left, reset, wait}}\nend\nreturn out",
        &script[start..end]
    );
    let stack = loadtest::stack::StackEnv::from_env();
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
