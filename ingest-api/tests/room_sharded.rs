#![allow(clippy::expect_used)] // a test may expect
//! A waiting room in front of a sharded sale (`--shards 3`): the room lives in the
//! product's slot, each admission is copied to its buyer's home shard, where the order is
//! decided. Only admitted users buy, once each; a used admission is used in the room too;
//! the line is told sold out when the shards' census finds nothing left; closing the room
//! closes every shard's copy. Runs on one Redis server and on the cluster.

mod common;

use std::time::{Duration, Instant};

use common::room::{claim_patiently, code, open_room, until, wait};
use stores::shards::Layout;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::client::{Client, loopback_ip};
use testkit::sales::SaleStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_admits_each_waiter_once_to_a_sharded_sale() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sharded_sale("drone3", 4, 1, 3).await?;
    open_room(&stack, "drone3", Duration::from_millis(1_000), 20.0).await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let c = &api.client;
    let users = ["ann", "bob", "cat", "dan", "eve"];
    let mut tickets = Vec::new();
    for u in users {
        let a = c.join("drone3", u, &format!("dev-{u}")).await?;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        tickets.push(a.json()["ticket"].as_str().expect("a ticket").to_owned());
    }
    let body = |u: &str| Client::body("drone3", u, 1);
    let no = c
        .place_from(&body("ann"), &flashsale_client::new_key(), "dev-ann")
        .await?;
    assert_eq!((no.status, code(&no)), (403, "NOT_ADMITTED".to_owned()));

    // Four units: the first four in line claim and buy, once each.
    let (mut bought, mut waiting) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(15);
    while bought.len() + waiting.len() < users.len() {
        for (i, (u, t)) in users.iter().zip(&tickets).enumerate() {
            if bought.contains(u) || waiting.contains(&i) {
                continue;
            }
            let dev = format!("dev-{u}");
            let claim = claim_patiently(&c.bound_to(loopback_ip(i)), "drone3", u, t, &dev).await?;
            let Some(token) = claim.json()["admissionToken"].as_str().map(str::to_owned) else {
                if Instant::now() > deadline {
                    waiting.push(i);
                }
                continue;
            };
            let key = flashsale_client::new_key();
            let a = c.place_admitted(&body(u), &key, &dev, &token).await?;
            assert_eq!(a.status, 202, "{u}: {}", String::from_utf8_lossy(&a.body));
            let key = flashsale_client::new_key();
            let twice = c.place_admitted(&body(u), &key, &dev, &token).await?;
            assert_eq!(code(&twice), "NOT_ADMITTED", "{u}: one use");
            bought.push(*u);
            if bought.len() == 4 {
                waiting.extend((0..users.len()).filter(|j| !bought.contains(&users[*j])));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(bought.len(), 4, "{bought:?}");
    let last = waiting[0];
    let (u5, t5, d5) = (users[last], &tickets[last], format!("dev-{}", users[last]));
    let told = until(c, "drone3", t5, &d5, &["sold_out"]).await?;
    assert_eq!(
        wait(&told)["state"],
        "sold_out",
        "the census found nothing left"
    );
    assert_eq!(code(&c.claim("drone3", u5, t5, &d5).await?), "SOLD_OUT");

    // A used admission is used in the room too (marked in the background).
    let first = users.iter().position(|u| *u == bought[0]).expect("a buyer");
    let dev = format!("dev-{}", bought[0]);
    let mut reclaim = String::new();
    for _ in 0..20 {
        reclaim = code(&c.claim("drone3", bought[0], &tickets[first], &dev).await?);
        if reclaim == "ADMISSION_USED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reclaim, "ADMISSION_USED");
    let (mut redis, product) = (stack.redis().await?, "drone3".parse()?);
    let room = flashctl::room::status(&mut redis, &stack.keys, &product).await?;
    assert_eq!(room.admitted, 4, "{room:?}");

    flashctl::room::close(&mut redis, &stack.keys, &product).await?;
    let layout = Layout::read(&mut redis, &stack.keys.sale(&product)).await?;
    for shard in layout.groups(&stack.keys, &product) {
        let state: Option<String> = redis::cmd("HGET")
            .arg(shard.room())
            .arg("state")
            .query_async(&mut redis)
            .await?;
        assert_eq!(state.as_deref(), Some("closed"));
    }
    api.stop().await
}
