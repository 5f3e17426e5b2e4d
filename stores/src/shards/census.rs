//! Where a sharded sale's unsold units are, counted while transfers run
//! ([`super::ledger`]): in the pool, on each shard, or in transit between them.

use std::collections::HashSet;

use redis::Value;
use shared::keys::SaleKeys;

use super::ledger::{LedgerError, Transfer, read_ledger, unexpected};
use crate::redis::Conn;
use crate::reply::{int, items, text};
use crate::script::Script;

/// Reads the pool, the product's ledger, the pool's applied sweeps and the stock (one
/// slot, one atomic read).
static READ_POOL: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        "return {tonumber(redis.call('HGET', KEYS[1], 'pool')) or 0, \
         redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3]), \
         tonumber(redis.call('HGET', KEYS[1], 'stock')) or 0}",
    )
});
/// Reads a shard's units, its applied refills, its ledger of sweeps, its returning units
/// and the units its buyers hold (Σ of `bought`) (one slot, one atomic read).
static READ_SHARD: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        "local taken = 0 \
         for _, v in ipairs(redis.call('HVALS', KEYS[4])) do taken = taken + (tonumber(v) or 0) end \
         return {tonumber(redis.call('HGET', KEYS[1], 'remaining')) or 0, \
         redis.call('SMEMBERS', KEYS[2]), redis.call('HGETALL', KEYS[3]), \
         tonumber(redis.call('HGET', KEYS[1], 'returning')) or 0, taken}",
    )
});

/// Where a sharded sale's unsold units are, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    /// In the pool.
    pub pool: i64,
    /// On each shard (its `remaining`), by index.
    pub shards: Vec<i64>,
    /// In transfers taken from their source and not yet applied at their destination.
    pub in_transit: i64,
    /// Of returned orders, on their way back on sale (Σ shards' `returning`).
    pub returning: i64,
    /// Held by buyers' live orders (Σ of every shard's `bought`).
    pub taken: i64,
    /// The sale's stock (the product's hash).
    pub stock: i64,
}

impl Census {
    /// pool + Σ shards + in transit: with the units taken and those on their way back,
    /// what must equal the stock.
    pub fn total(&self) -> i64 {
        self.pool + self.shards.iter().sum::<i64>() + self.in_transit
    }

    /// The invariant: pool + Σ shards + in transit + taken + returning = stock, each
    /// term counted on its own (a unit sold twice, lost or doubled by a transfer breaks it).
    pub fn balanced(&self) -> bool {
        self.total() + self.taken + self.returning == self.stock
    }
}

/// The ids of a set read with `SMEMBERS`.
fn read_ids(v: Option<&Value>) -> HashSet<String> {
    items(v)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| text(Some(v)))
        .collect()
}

/// Counts where the units of `sale` are while transfers go on, without stopping them:
/// the pool's slot is read (P), then each shard's (S), then the pool's ledger again (P').
///
/// - A refill counts in transit if P has it and its shard's S has not applied it. One
///   taken after P had its units in P's pool: if S already applied it, it is taken off
///   that shard's count.
/// - A sweep counts in transit if its shard's S has it and P had not applied it (P was
///   read before S, so a sweep P applied was taken before S).
///
/// Each unit is counted once whichever steps fall between the reads.
pub async fn census(
    conn: &mut Conn,
    sale: &SaleKeys,
    shards: &[SaleKeys],
) -> Result<Census, LedgerError> {
    let pool_keys = [sale.sale(), sale.transfers(), sale.applied()];
    let before: Value = READ_POOL.call(&pool_keys, &[0u8; 0]).query(conn).await?;
    let p = items(Some(&before)).ok_or_else(|| unexpected(&before))?;
    let pool = int(p.first()).ok_or_else(|| unexpected(&before))?;
    let refills = read_ledger(p.get(1));
    let swept_in = read_ids(p.get(2));
    let stock = int(p.get(3)).unwrap_or(0);
    let mut counts = Vec::with_capacity(shards.len());
    let mut applied = Vec::with_capacity(shards.len());
    let (mut in_transit, mut returning, mut taken) = (0, 0, 0);
    for s in shards {
        let keys = [s.sale(), s.applied(), s.transfers(), s.bought()];
        let reply: Value = READ_SHARD.call(&keys, &[0u8; 0]).query(conn).await?;
        let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
        counts.push(int(parts.first()).ok_or_else(|| unexpected(&reply))?);
        applied.push(read_ids(parts.get(1)));
        returning += int(parts.get(3)).unwrap_or(0);
        taken += int(parts.get(4)).unwrap_or(0);
        in_transit += read_ledger(parts.get(2))
            .iter()
            .filter(|t| !swept_in.contains(&t.id))
            .map(|t| t.units)
            .sum::<i64>();
    }
    let after: Value = READ_POOL.call(&pool_keys, &[0u8; 0]).query(conn).await?;
    let shard_of = |t: &Transfer| t.dest.parse::<usize>().ok().filter(|&i| i < shards.len());
    for t in &refills {
        if shard_of(t).is_some_and(|i| !applied[i].contains(&t.id)) {
            in_transit += t.units;
        }
    }
    let known: HashSet<&str> = refills.iter().map(|t| t.id.as_str()).collect();
    let after = read_ledger(items(Some(&after)).and_then(|p| p.get(1)));
    for t in after.iter().filter(|t| !known.contains(t.id.as_str())) {
        if let Some(i) = shard_of(t).filter(|&i| applied[i].contains(&t.id)) {
            counts[i] -= t.units;
        }
    }
    Ok(Census {
        pool,
        shards: counts,
        in_transit,
        returning,
        taken,
        stock,
    })
}
