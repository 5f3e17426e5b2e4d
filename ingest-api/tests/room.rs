#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely
//! The waiting room end to end (`ingest-api/API.md`, "Waiting room"): the pre-queue is
//! shuffled at the opening, the line drains at the room's rate, only an admitted user may
//! order, once, with the admission its ticket claimed on its own device; tokens of another
//! user, device or sale are refused; sold out, every waiter is told.

use std::time::{Duration, Instant};

mod common;

use common::room::{claim_patiently, code, open_room, until, wait};
use flashctl::guard::Limits;
use serde_json::Value;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::client::{Answer, Client, loopback_ip};
use testkit::sales::SaleStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fair_line_admits_each_waiter_once() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale_with("drone", 4, 1, Limits::off()).await?;
    open_room(&stack, "drone", Duration::from_millis(1_500), 20.0).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let c = &api.client;

    // Five join before the opening, each on a device of their own.
    let users = ["ann", "bob", "cat", "dan", "eve"];
    let mut tickets = Vec::new();
    for u in users {
        let a = c.join("drone", u, &format!("dev-{u}")).await?;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(wait(&a)["state"], "prequeue");
        assert_eq!(wait(&a)["message"], "welcome");
        tickets.push(a.json()["ticket"].as_str().expect("a ticket").to_owned());
    }
    // A second join is the same ticket; a second user on a device is refused.
    let again = c.join("drone", "ann", "dev-ann").await?;
    assert_eq!(again.status, 200);
    let other = c.join("drone", "zed", "dev-ann").await?;
    assert_eq!(code(&other), "DEVICE_HAS_TICKET");
    let bare = send_without_fingerprint(c, "drone", "zed").await?;
    assert_eq!(code(&bare), "FINGERPRINT_REQUIRED");

    // Ordering without an admission is refused while the room is on.
    let no = c
        .place_from(
            &Client::body("drone", "ann", 1),
            &flashsale_client::new_key(),
            "dev-ann",
        )
        .await?;
    assert_eq!((no.status, code(&no)), (403, "NOT_ADMITTED".to_owned()));

    // After the opening every ticket has a place: a permutation of 1..=5. Four units:
    // four positions are released, the fifth waits (nobody is let in for stock that is
    // gone).
    let deadline = Instant::now() + Duration::from_secs(10);
    let positions = loop {
        let mut seen = Vec::new();
        for (i, (u, t)) in users.iter().zip(&tickets).enumerate() {
            // Each waiter polls from an address of its own (polls are limited per network).
            let own = c.bound_to(loopback_ip(i));
            let a = own.queue_status("drone", t, &format!("dev-{u}")).await?;
            seen.push((wait(&a)["position"].as_u64(), wait(&a)["state"].clone(), i));
        }
        let admitted = seen.iter().filter(|s| s.1 == "admitted").count();
        if admitted == 4 || Instant::now() > deadline {
            for (p, state, _) in &seen {
                let expected = if p.is_some_and(|p| p <= 4) {
                    "admitted"
                } else {
                    "queued"
                };
                assert_eq!(state, expected, "{seen:?}");
            }
            break seen
                .into_iter()
                .map(|(p, _, i)| (p.expect("a position"), i))
                .collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut order = positions.clone();
    order.sort_unstable();
    let sorted: Vec<u64> = order.iter().map(|(p, _)| *p).collect();
    assert_eq!(sorted, [1, 2, 3, 4, 5], "{positions:?}");
    // Who stands where, first to last (user index).
    let by_position: Vec<usize> = order.iter().map(|(_, i)| *i).collect();
    let (first, last) = (by_position[0], by_position[4]);

    // Another user's or another device's ticket, or a forged one, buys nothing.
    let (u1, t1, d1) = (
        users[first],
        &tickets[first],
        format!("dev-{}", users[first]),
    );
    let other_user = users[by_position[1]];
    let stolen = c
        .claim("drone", other_user, t1, &format!("dev-{other_user}"))
        .await?;
    assert_eq!(code(&stolen), "NOT_YOUR_TICKET");
    let elsewhere = c.claim("drone", u1, t1, "dev-other").await?;
    assert_eq!(code(&elsewhere), "NOT_YOUR_TICKET");
    let forged = c.claim("drone", u1, &format!("{t1}x"), &d1).await?;
    assert_eq!(code(&forged), "INVALID_TICKET");

    // The first in line claims (twice: the same admission) and orders once with it.
    let claim = claim_patiently(c, "drone", u1, t1, &d1).await?;
    assert_eq!(
        claim.status,
        200,
        "{}",
        String::from_utf8_lossy(&claim.body)
    );
    let admission = claim.json()["admissionToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let repeat = c.claim("drone", u1, t1, &d1).await?;
    assert_eq!(repeat.json()["admissionToken"], admission.as_str());
    let body = Client::body("drone", u1, 1);
    let placed = c
        .place_admitted(&body, &flashsale_client::new_key(), &d1, &admission)
        .await?;
    assert_eq!(
        placed.status,
        202,
        "{}",
        String::from_utf8_lossy(&placed.body)
    );
    let twice = c
        .place_admitted(&body, &flashsale_client::new_key(), &d1, &admission)
        .await?;
    assert_eq!(
        code(&twice),
        "NOT_ADMITTED",
        "a used admission buys no second time"
    );
    let reclaim = c.claim("drone", u1, t1, &d1).await?;
    assert_eq!(code(&reclaim), "ADMISSION_USED");
    // The admission is useless to another user, and on another device.
    let as_other = Client::body("drone", other_user, 1);
    let as_other = c
        .place_admitted(&as_other, &flashsale_client::new_key(), &d1, &admission)
        .await?;
    assert_eq!(code(&as_other), "NOT_YOUR_TICKET");
    let moved = c
        .place_admitted(&body, &flashsale_client::new_key(), "dev-other", &admission)
        .await?;
    assert_eq!(code(&moved), "NOT_YOUR_TICKET");

    // The next three buy the last three units; then the line is sold out for everyone.
    for i in &by_position[1..4] {
        let (u, t) = (users[*i], &tickets[*i]);
        let dev = format!("dev-{u}");
        let claim = claim_patiently(c, "drone", u, t, &dev).await?;
        let token = claim.json()["admissionToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{u}: {}", String::from_utf8_lossy(&claim.body)))
            .to_owned();
        let a = c
            .place_admitted(
                &Client::body("drone", u, 1),
                &flashsale_client::new_key(),
                &dev,
                &token,
            )
            .await?;
        assert_eq!(a.status, 202, "{u}: {}", String::from_utf8_lossy(&a.body));
    }
    let (u5, t5, d5) = (users[last], &tickets[last], format!("dev-{}", users[last]));
    let told = until(c, "drone", t5, &d5, &["sold_out"]).await?;
    assert_eq!(wait(&told)["state"], "sold_out");
    let late = c.claim("drone", u5, t5, &d5).await?;
    assert_eq!(code(&late), "SOLD_OUT");
    api.stop().await
}

async fn send_without_fingerprint(c: &Client, product: &str, user: &str) -> anyhow::Result<Answer> {
    let body = serde_json::json!({ "userId": user })
        .to_string()
        .into_bytes();
    let req = c.signed_post(
        &format!("/queue/{product}/join"),
        &body,
        &flashsale_client::new_key(),
    );
    Ok(flashsale_client::send(req).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_joins_queue_in_arrival_order_at_the_rooms_rate() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale_with("kite", 100, 1, Limits::off()).await?;
    open_room(&stack, "kite", Duration::ZERO, 1.0).await?;
    // Sixty polls at once from one address: above the default per-network limit.
    let mut settings = stack.api_settings();
    settings.fallback_ip_limit = "200/s:200".into();
    let api = RunningApi::start(settings).await?;
    let c = &api.client;
    let mut tickets = Vec::new();
    for i in 0..60 {
        let u = format!("u{i}");
        let a = c.join("kite", &u, &format!("d{i}")).await?;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        tickets.push((u, a.json()["ticket"].as_str().expect("ticket").to_owned()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut last = 0;
    for (i, (_, t)) in tickets.iter().enumerate() {
        let a = c.queue_status("kite", t, &format!("d{i}")).await?;
        let p = wait(&a)["position"].as_u64().expect("a position");
        assert!(p > last, "live joins keep their order: {p} after {last}");
        last = p;
    }
    // At 1/s with a burst of 2, after about 10 s: a few dozen released (the unclaimed give
    // their credit back after 3 s), not the line. The estimate comes once this instance
    // has seen the line move for 8 s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut w = Value::Null;
    for _ in 0..10 {
        w = wait(&c.queue_status("kite", &tickets[59].1, "d59").await?);
        if !w["etaSeconds"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w["state"], "queued", "{w}");
    let ahead = w["ahead"].as_u64().expect("ahead");
    assert!((1..=58).contains(&ahead), "{w}");
    assert!(w["etaSeconds"].as_f64().is_some_and(|e| e > 0.0), "{w}");
    assert!(
        w["refreshAfterMs"]
            .as_u64()
            .is_some_and(|r| (800..=36_000).contains(&r)),
        "{w}"
    );
    api.stop().await
}

/// The shuffle of `lua/lib/room.lua` (run by Redis) gives every arrival the position
/// `shared::room::position` gives it: `flashctl room verify` recomputes in Rust what the
/// claims were decided on in Lua.
#[tokio::test]
async fn lua_shuffle_matches_the_rust_one() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut conn = stack.redis().await?;
    let driver = format!(
        "{}{}local out = {{}}\nfor n = 1, tonumber(ARGV[3]) do\n  out[n] = room_position(ARGV[1], tonumber(ARGV[2]), n)\nend\nreturn out",
        stores::script::GATE,
        stores::script::ROOM
    );
    for (seed, cohort) in [
        ("0123456789abcdef01234567", 1_000u64),
        (&*shared::room::new_seed(), 10_000),
        (&*shared::room::new_seed(), 3),
    ] {
        let lua: Vec<u64> = redis::cmd("EVAL")
            .arg(&driver)
            .arg(0)
            .arg(seed)
            .arg(cohort)
            .arg(cohort + 5)
            .query_async(&mut conn)
            .await?;
        let keys = shared::room::round_keys(seed).expect("a seed");
        let rust: Vec<u64> = (1..=cohort + 5)
            .map(|n| shared::room::position(&keys, cohort, n))
            .collect();
        assert_eq!(lua, rust, "seed {seed}, cohort {cohort}");
    }
    Ok(())
}
