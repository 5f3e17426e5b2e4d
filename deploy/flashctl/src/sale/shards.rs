//! The Redis side of a sharded sale (`sale open --shards N`, N ≥ 2): placement on N
//! masters, the shards' hashes, the product's pool and layout, and a first refill of
//! every shard.
//!
//! Each shard's hash is a copy of the sale's settings with its own `remaining` (0 until
//! its first refill). The global rate limit's sustained rate is split evenly (each
//! shard's emission interval is N times the sale's; its burst is the sale's, so together
//! the shards allow up to N times the burst). Per-IP and per-fingerprint limits are each
//! shard's own, so a network or device whose users spread over the shards gets up to N times its
//! limit; the per-user limit and cap stay exact (a user has one home shard).

use std::time::{SystemTime, UNIX_EPOCH};

use shared::keys::{Keyspace, SaleKeys};
use shared::{ProductId, UserId};
use stores::Replicas;
use stores::records::sale::field as sale_field;
use stores::redis::Conn;
use stores::shards::layout::field as layout_field;
use stores::shards::{Layout, Shards, ledger, place, slot_map};
use tokio_postgres::Client;

use super::{NewSale, SALE_OPEN, ms, register};
use crate::OpsError;
use crate::recover::{Buyer, restore};

/// The most units one refill moves to a shard (fewer as the pool empties).
pub const CHUNK: u32 = 100;

/// `(field, value)` pairs of the sale's limits and payment window, as the product's own
/// hash holds them (a shard's: [`crate::guard::shard_share`]).
fn settings(sale: &NewSale) -> Vec<(String, String)> {
    let mut pairs = sale.limits.fields();
    if sale.payment_window_ms() > 0 {
        pairs.push((
            sale_field::PAYMENT_WINDOW_MS.into(),
            sale.payment_window_ms(),
        ));
    }
    pairs.into_iter().map(|(f, v)| (f, v.to_string())).collect()
}

/// One `lua/sale_open.lua` call: `units` in `field`, then `pairs`.
async fn create(
    redis: &mut Conn,
    keys: &SaleKeys,
    sale: &NewSale,
    (units, field, state): (u32, &str, &str),
    pairs: &[(String, String)],
) -> Result<bool, OpsError> {
    let stock = if field == ledger::POOL { sale.stock } else { 0 };
    let mut open = SALE_OPEN.prepare_invoke();
    open.key(keys.sale())
        .key(keys.outbox())
        .arg(stock)
        .arg(sale.per_user)
        .arg(ms(sale.starts_at))
        .arg(ms(sale.ends_at))
        .arg(units)
        .arg(state)
        .arg(field);
    for (f, v) in pairs {
        open.arg(f).arg(v);
    }
    let created: i64 = open.invoke_async(redis).await?;
    Ok(created == 1)
}

/// Creates a sharded sale's Redis side with `units` in the pool; `false` if the sale
/// exists already (with another number of shards: refused).
pub async fn open_sharded(
    pg: &Client,
    redis: &mut Conn,
    keys: &Keyspace,
    sale: &NewSale,
    (units, state): (u32, &str),
) -> Result<bool, OpsError> {
    let product_keys = keys.sale(&sale.product);
    if super::exists_in_redis(redis, keys, &sale.product).await? {
        let layout = Layout::read(redis, &product_keys).await?;
        let same = layout.shards().filter(|s| s.count() == sale.shards);
        if let Some(shards) = same {
            // A re-run completes an open cut short before its placement was recorded.
            record(pg, sale, &shards.salts).await?;
            return Ok(false);
        }
        return Err(OpsError::Conflict(format!(
            "a sale for {} already exists with another layout; see `flashctl sale status`",
            sale.product
        )));
    }
    build(pg, redis, keys, sale, (units, state), None).await
}

/// Places `sale`'s shards on the cluster as it is now, creates them, writes `buyers` (for
/// `sale recover`: each user's live units and reservations) on their home shards, and
/// the product's hash with `units` in the pool and the layout last, so whoever finds the
/// layout finds its shards complete; then records the placement in `sales.shard_salts`
/// and gives each shard a first chunk. `false` if the product's hash exists already.
/// An interrupted recover is run again: the shards it left hold buyers only, which the
/// next run writes anew.
pub(crate) async fn build(
    pg: &Client,
    redis: &mut Conn,
    keys: &Keyspace,
    sale: &NewSale,
    (units, state): (u32, &str),
    buyers: Option<&[Buyer]>,
) -> Result<bool, OpsError> {
    let map = slot_map(redis).await?;
    let salts = place(keys, &sale.product, sale.shards, map.as_ref())
        .map_err(|e| OpsError::Invalid(format!("--shards {}: {e}", sale.shards)))?;
    refuse_held_shards(redis, keys, &sale.product, &salts, buyers.is_none()).await?;
    create_shards(redis, keys, sale, &salts, state).await?;
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let chunk = i64::from(CHUNK);
    let layout = Shards {
        epoch,
        salts,
        chunk,
    };
    if let Some(buyers) = buyers {
        let shards = layout.keys(keys, &sale.product);
        for (shard, group) in shards.iter().zip(homes(&layout, keys, sale, buyers)) {
            restore(redis, shard, &group).await?;
        }
    }
    let mut product_settings = settings(sale);
    product_settings.extend([
        (layout_field::SHARDS.to_owned(), sale.shards.to_string()),
        (layout_field::SALTS.to_owned(), join(&layout.salts)),
        (layout_field::EPOCH.to_owned(), epoch.to_string()),
        (layout_field::CHUNK.to_owned(), CHUNK.to_string()),
    ]);
    let product_keys = keys.sale(&sale.product);
    let pool = (units, ledger::POOL, state);
    let created = create(redis, &product_keys, sale, pool, &product_settings).await?;
    register(redis, keys, &sale.product).await?;
    if created {
        record(pg, sale, &layout.salts).await?;
        first_refills(redis, &product_keys, keys, sale, &layout.salts, units).await?;
    }
    Ok(created)
}

/// `buyers` grouped by home shard (by index): a buyer id that is not a user id (none
/// should be) stays on shard 0, where its units still count.
fn homes<'a>(
    layout: &Shards,
    keys: &Keyspace,
    sale: &NewSale,
    buyers: &'a [Buyer],
) -> Vec<Vec<&'a Buyer>> {
    let mut groups: Vec<Vec<&Buyer>> = vec![Vec::new(); layout.salts.len()];
    for buyer in buyers {
        let index =
            UserId::parse(buyer.user.clone()).map_or(0, |u| layout.home(keys, &sale.product, &u).0);
        groups[index as usize].push(buyer);
    }
    groups
}

/// Records the placement with the sale, before any shard exists.
async fn record(pg: &Client, sale: &NewSale, salts: &[u32]) -> Result<(), OpsError> {
    let salts: Vec<i32> = salts
        .iter()
        .map(|&s| i32::try_from(s).unwrap_or(i32::MAX))
        .collect();
    pg.execute(
        "UPDATE sales SET shard_salts = $2 WHERE product_id = $1",
        &[&sale.product.as_str(), &salts],
    )
    .await?;
    Ok(())
}

/// Each shard's hash: the sale's settings (its share of the global limit), no units yet.
async fn create_shards(
    redis: &mut Conn,
    keys: &Keyspace,
    sale: &NewSale,
    salts: &[u32],
    state: &str,
) -> Result<(), OpsError> {
    let shard_settings = crate::guard::shard_share(&settings(sale), sale.shards);
    for (index, &salt) in (0u32..).zip(salts) {
        let shard = keys.shard(&sale.product, index, salt);
        let units = (0, ledger::REMAINING, state);
        create(redis, &shard, sale, units, &shard_settings).await?;
    }
    Ok(())
}

/// Refuses shards of `product` (placed with `salts`) that hold anything of a sale: units
/// (`remaining`), refills applied, accepted orders in their outbox, or, when
/// `count_buyers`, buyers. Before `sale open` places shards: one left by an earlier sale
/// whose product hash Redis lost would add its units to a fresh pool's, or hold orders
/// nobody hands off (shards an interrupted `open` created, still empty, are taken over,
/// and so, not counting buyers, are those an interrupted recover left). Before `sale
/// recover`, on the placement PostgreSQL recorded: a sale Redis partly kept is not rebuilt.
pub(crate) async fn refuse_held_shards(
    redis: &mut Conn,
    keys: &Keyspace,
    product: &ProductId,
    salts: &[u32],
    count_buyers: bool,
) -> Result<(), OpsError> {
    for (index, &salt) in (0u32..).zip(salts) {
        let shard = keys.shard(product, index, salt);
        let (buyers, refills, pending, units): (i64, i64, i64, Option<i64>) = redis::pipe()
            .cmd("HLEN")
            .arg(shard.bought())
            .cmd("SCARD")
            .arg(shard.applied())
            .cmd("XLEN")
            .arg(shard.outbox())
            .cmd("HGET")
            .arg(shard.sale())
            .arg(ledger::REMAINING)
            .query_async(redis)
            .await?;
        let buyers = if count_buyers { buyers } else { 0 };
        let units = units.unwrap_or(0);
        if buyers + refills + pending + units > 0 {
            return Err(OpsError::Conflict(format!(
                "shard {index} of {product} is still in Redis ({units} units, {pending} accepted order(s) in its \
                 outbox, {buyers} buyers counted) but the sale itself is gone: `sale recover` rebuilds a sale \
                 Redis lost whole; delete the leftover keys (`…:{{p:{product}/{index}.{salt}}}:*`) once nothing \
                 in them is needed"
            )));
        }
    }
    Ok(())
}

fn join(salts: &[u32]) -> String {
    salts
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A first chunk for every shard, so the opening second does not start with refills.
async fn first_refills(
    redis: &mut Conn,
    product_keys: &SaleKeys,
    keys: &Keyspace,
    sale: &NewSale,
    salts: &[u32],
    units: u32,
) -> Result<(), OpsError> {
    let replicas = Replicas::new(None, std::time::Duration::from_millis(500));
    let want = ledger::chunk(i64::from(units), sale.shards, i64::from(CHUNK));
    for (index, &salt) in (0u32..).zip(salts) {
        let shard = keys.shard(&sale.product, index, salt);
        ledger::refill(redis, &replicas, product_keys, &shard, index, want)
            .await
            .map_err(|e| OpsError::Other(e.into()))?;
    }
    Ok(())
}
