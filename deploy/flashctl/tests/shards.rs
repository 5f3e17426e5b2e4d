//! A sharded sale's layout on the stack's Redis (one server, or the cluster when
//! `REDIS_CLUSTER_NODES` is set): the shards placed on masters of their own, and the
//! refills from the pool through the transfer ledger, which neither lose nor double a
//! unit — under repeats, a crash between steps and refills racing each other.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::time::Duration;

use shared::ProductId;
use shared::keys::SaleKeys;
use stores::redis::Conn;
use stores::replicas::Replicas;
use stores::shards::ledger::{self, End, Taken};
use stores::shards::{key_slot, place, slot_map};
use testkit::TestStack;

/// A product's sale keys and its `n` shards' keys, placed on the stack's Redis, with
/// `pool` units in the pool.
async fn sharded(
    stack: &TestStack,
    redis: &mut Conn,
    product: &str,
    n: u32,
    pool: i64,
) -> anyhow::Result<(SaleKeys, Vec<SaleKeys>)> {
    let product: ProductId = product.parse()?;
    let map = slot_map(redis).await?;
    let salts = place(&stack.keys, &product, n, map.as_ref())?;
    let shards = (0..)
        .zip(&salts)
        .map(|(i, s)| stack.keys.shard(&product, i, *s))
        .collect();
    let sale = stack.keys.sale(&product);
    let _: () = redis::cmd("HSET")
        .arg(sale.sale())
        .arg("pool")
        .arg(pool)
        .query_async(redis)
        .await?;
    Ok((sale, shards))
}

async fn hget(redis: &mut Conn, key: &str, field: &str) -> anyhow::Result<i64> {
    let v: Option<i64> = redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(redis)
        .await?;
    Ok(v.unwrap_or(0))
}

/// pool + Σ shards + Σ in transit, by the ledger's census: what must stay the stock.
async fn accounted(redis: &mut Conn, sale: &SaleKeys, shards: &[SaleKeys]) -> anyhow::Result<i64> {
    Ok(stores::shards::census::census(redis, sale, shards)
        .await?
        .total())
}

/// The transfers still open in the product's ledger and the shards'.
async fn open(
    redis: &mut Conn,
    sale: &SaleKeys,
    shards: &[SaleKeys],
) -> anyhow::Result<Vec<ledger::Transfer>> {
    let mut open = Vec::new();
    for keys in std::iter::once(sale).chain(shards) {
        open.extend(
            ledger::transfers(redis, keys)
                .await?
                .into_iter()
                .filter(|t| t.open),
        );
    }
    Ok(open)
}

fn taken(dest: &str, units: i64, open: bool) -> Taken {
    Taken::Taken {
        dest: dest.into(),
        units,
        open,
    }
}

fn replicas() -> Replicas {
    Replicas::new(None, Duration::from_millis(500))
}

#[tokio::test]
async fn shards_are_placed_on_masters_of_their_own() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut redis = stack.redis().await?;
    let product = "spread".parse()?;
    let Some(map) = slot_map(&mut redis).await? else {
        assert!(
            stack.env.redis_cluster_nodes.is_empty(),
            "a cluster has a slot map"
        );
        assert_eq!(place(&stack.keys, &product, 3, None)?, vec![0, 0, 0]);
        return Ok(());
    };
    assert_eq!(
        map.masters().len(),
        3,
        "the local cluster: 3 masters and 3 replicas"
    );
    let salts = place(&stack.keys, &product, 3, Some(&map))?;
    let mut used = std::collections::BTreeSet::new();
    for (index, salt) in (0..).zip(&salts) {
        let key = stack.keys.shard(&product, index, *salt).sale();
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&key)
            .query_async(&mut redis)
            .await?;
        assert_eq!(slot, key_slot(&key), "{key}");
        used.insert(map.master_of(slot).expect("served").to_owned());
    }
    assert_eq!(used.len(), 3, "three shards, three masters: {salts:?}");
    assert!(place(&stack.keys, &product, 4, Some(&map)).is_err());
    Ok(())
}

#[tokio::test]
async fn every_step_repeated_moves_the_units_once() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut redis = stack.redis().await?;
    let (sale, shards) = sharded(&stack, &mut redis, "steps", 2, 100).await?;
    let (r, pool, shard0) = (replicas(), End::pool(&sale), End::shard(&shards[0]));

    assert_eq!(
        ledger::take(&mut redis, &r, pool, "t1", "0", 30).await?,
        taken("0", 30, true)
    );
    // The reply was lost: the same take again takes nothing more.
    assert_eq!(
        ledger::take(&mut redis, &r, pool, "t1", "0", 30).await?,
        taken("0", 30, true)
    );
    assert_eq!(hget(&mut redis, &sale.sale(), "pool").await?, 70);
    // One refill at a time per shard; another shard is free.
    let busy = ledger::take(&mut redis, &r, pool, "t2", "0", 10).await?;
    assert_eq!(busy, Taken::Busy("t1".into()));
    assert_eq!(accounted(&mut redis, &sale, &shards).await?, 100);

    assert_eq!(
        ledger::apply(&mut redis, &r, shard0, "t1", 30).await?,
        (30, true)
    );
    assert_eq!(
        accounted(&mut redis, &sale, &shards).await?,
        100,
        "applied, not closed"
    );
    assert_eq!(
        ledger::apply(&mut redis, &r, shard0, "t1", 30).await?,
        (30, false)
    );
    assert!(ledger::close(&mut redis, &r, &sale, "t1").await?);
    assert!(
        ledger::close(&mut redis, &r, &sale, "t1").await?,
        "a repeat is no error"
    );
    assert!(!ledger::close(&mut redis, &r, &sale, "nope").await?);
    let again = ledger::take(&mut redis, &r, pool, "t1", "0", 30).await?;
    assert_eq!(
        again,
        taken("0", 30, false),
        "a closed transfer's id takes nothing"
    );
    assert_eq!(hget(&mut redis, &sale.sale(), "pool").await?, 70);
    assert_eq!(
        ledger::refill(&mut redis, &r, &sale, &shards[1], 1, 500).await?,
        70
    );
    assert_eq!(
        ledger::refill(&mut redis, &r, &sale, &shards[1], 1, 5).await?,
        0,
        "empty"
    );
    // A sweep brings shard 0's units back to the pool, once.
    assert_eq!(
        ledger::sweep(&mut redis, &r, &sale, &shards[0], 12).await?,
        12
    );
    assert_eq!(hget(&mut redis, &sale.sale(), "pool").await?, 12);
    assert_eq!(hget(&mut redis, &shards[0].sale(), "remaining").await?, 18);
    assert_eq!(accounted(&mut redis, &sale, &shards).await?, 100);
    assert!(open(&mut redis, &sale, &shards).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn transfers_cut_between_steps_are_finished_once() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut redis = stack.redis().await?;
    let (sale, shards) = sharded(&stack, &mut redis, "cut", 3, 90).await?;
    let (r, pool) = (replicas(), End::pool(&sale));
    ledger::refill(&mut redis, &r, &sale, &shards[2], 2, 10).await?;
    // Shard 0's refiller died after the take, shard 1's after the apply, and a sweep of
    // shard 2 after its take.
    ledger::take(&mut redis, &r, pool, "a", "0", 20).await?;
    ledger::take(&mut redis, &r, pool, "b", "1", 25).await?;
    ledger::apply(&mut redis, &r, End::shard(&shards[1]), "b", 25).await?;
    ledger::take(&mut redis, &r, End::shard(&shards[2]), "c", "pool", 4).await?;
    assert_eq!(accounted(&mut redis, &sale, &shards).await?, 90);
    assert_eq!(open(&mut redis, &sale, &shards).await?.len(), 3);
    assert_eq!(
        ledger::recover(&mut redis, &r, (&sale, &shards), Duration::ZERO).await?,
        3
    );
    assert_eq!(
        ledger::recover(&mut redis, &r, (&sale, &shards), Duration::ZERO).await?,
        0
    );
    assert!(open(&mut redis, &sale, &shards).await?.is_empty());
    assert_eq!(hget(&mut redis, &shards[0].sale(), "remaining").await?, 20);
    assert_eq!(hget(&mut redis, &shards[1].sale(), "remaining").await?, 25);
    assert_eq!(hget(&mut redis, &shards[2].sale(), "remaining").await?, 6);
    assert_eq!(
        hget(&mut redis, &sale.sale(), "pool").await?,
        90 - 20 - 25 - 6
    );
    assert_eq!(accounted(&mut redis, &sale, &shards).await?, 90);
    Ok(())
}

/// The apply step's marker is what keeps a repeated apply from adding the units again:
/// with the marker gone (as a step without one would be), the repeat doubles them.
#[tokio::test]
async fn without_its_marker_a_repeated_apply_doubles_the_units() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut redis = stack.redis().await?;
    let (sale, shards) = sharded(&stack, &mut redis, "no-marker", 1, 40).await?;
    let (r, shard0) = (replicas(), End::shard(&shards[0]));
    ledger::take(&mut redis, &r, End::pool(&sale), "m", "0", 40).await?;
    ledger::apply(&mut redis, &r, shard0, "m", 40).await?;
    let _: () = redis::cmd("DEL")
        .arg(shards[0].applied())
        .query_async(&mut redis)
        .await?;
    // The mover's reply was lost and it applies again.
    ledger::apply(&mut redis, &r, shard0, "m", 40).await?;
    assert_eq!(hget(&mut redis, &shards[0].sale(), "remaining").await?, 80);
    ledger::close(&mut redis, &r, &sale, "m").await?;
    assert_eq!(
        accounted(&mut redis, &sale, &shards).await?,
        80,
        "40 units on sale twice"
    );
    Ok(())
}

/// Refillers, sweepers and recoverers race on one sale while the census is read again
/// and again: every reading finds the stock, and at the end every unit is on a shard or
/// in the pool, nothing open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_transfers_account_for_every_unit() -> anyhow::Result<()> {
    const STOCK: i64 = 6_000;
    let stack = TestStack::new().await?;
    let mut redis = stack.redis().await?;
    let (sale, shards) = sharded(&stack, &mut redis, "race", 3, STOCK).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for mover in 0..6u32 {
        let (mut conn, sale, shards) = (stack.redis().await?, sale.clone(), shards.clone());
        tasks.spawn(async move {
            let (r, index) = (replicas(), mover % 3);
            let shard = &shards[index as usize];
            // Refillers until the pool is empty; the sixth also sweeps shard 2 back for
            // its first 150 rounds.
            for round in 0..2_000 {
                let moved = ledger::refill(&mut conn, &r, &sale, shard, index, 7).await?;
                if mover == 5 && round < 150 {
                    ledger::sweep(&mut conn, &r, &sale, shard, 3).await?;
                }
                if moved == 0 && hget(&mut conn, &sale.sale(), "pool").await? == 0 {
                    break;
                }
                ledger::recover(&mut conn, &r, (&sale, &shards), Duration::ZERO).await?;
            }
            anyhow::Ok(())
        });
    }
    let mut samples = 0;
    while !tasks.is_empty() {
        let total = accounted(&mut redis, &sale, &shards).await?;
        assert_eq!(total, STOCK, "sample {samples}");
        samples += 1;
        if let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    ledger::recover(&mut redis, &replicas(), (&sale, &shards), Duration::ZERO).await?;
    let mut placed = hget(&mut redis, &sale.sale(), "pool").await?;
    for s in &shards {
        placed += hget(&mut redis, &s.sale(), "remaining").await?;
    }
    println!("{samples} samples of the census while transfers raced");
    assert_eq!(placed, STOCK, "every unit in the pool or on a shard");
    assert!(open(&mut redis, &sale, &shards).await?.is_empty());
    Ok(())
}
