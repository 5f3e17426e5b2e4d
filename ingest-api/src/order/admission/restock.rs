//! Keeping a sharded sale's shards stocked (`flashctl sale open --shards N`).
//!
//! An order goes to its user's home shard. A shard that runs low (below a quarter of a
//! chunk) is refilled from the pool in the background; one that cannot serve an order
//! is refilled at once and the order decided again. When the pool is empty, the units
//! still on other shards are swept back to the pool (as many as the order lacks) and on
//! to this one. Only when the census finds no unit anywhere — pool, shards, transfers —
//! is the answer `SOLD_OUT` with nothing left, the mark of the sold-out fast path. Every
//! move goes through `stores::shards::ledger`, so it can neither lose nor double a unit.
//! Every second [`Restock::run`] finishes the moves a failure cut short and, once the
//! pool is empty, sweeps the units of shards nobody buys from back to it, where the next
//! refill of a shard with buyers finds them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::ProductId;
use shared::keys::{Keyspace, SaleKeys};
use stores::Replicas;
use stores::redis::Conn;
use stores::shards::census::census;
use stores::shards::ledger::{self, LedgerError};
use stores::shards::{Layout, Shards};
use tokio::sync::watch;

/// What a restock of one shard came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restocked {
    /// Units reached the shard: decide again.
    Moved,
    /// Another refill of this shard, or units in transit, are under way: decide again
    /// shortly.
    Busy,
    /// Fewer units than asked for are left in the whole sale (`left`, 0: sold out).
    Short {
        /// Units anywhere in the sale.
        left: i64,
    },
}

/// Moves units to the shards that sell them.
#[derive(Clone)]
pub struct Restock {
    keys: Keyspace,
    replicas: Replicas,
    /// Shards (by their sale key) with a background refill running in this instance.
    refilling: Arc<Mutex<HashSet<String>>>,
    /// Each shard's units as this instance's upkeep last saw them change, and when.
    seen: Arc<Mutex<HashMap<String, (i64, Instant)>>>,
}

impl std::fmt::Debug for Restock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restock").finish_non_exhaustive()
    }
}

/// A pause before deciding again after [`Restocked::Busy`].
pub const BUSY_PAUSE: Duration = Duration::from_millis(5);
/// How often the upkeep runs.
pub const UPKEEP: Duration = Duration::from_secs(1);
/// How old an open transfer must be before it is finished by someone else than its
/// mover: past a step's duration, so its mover has given up on it (finishing it early
/// would be harmless: `stores::shards::ledger::recover`).
pub const STALE_TRANSFER: Duration = Duration::from_secs(1);
/// How long a shard's units must stay unchanged (no sale, no refill, as the upkeep sees
/// them each second) before the upkeep sweeps them back to an empty pool.
pub const IDLE: Duration = Duration::from_secs(2);

impl Restock {
    /// Restocks the shards of `keys`' sales, each move promised on `replicas`.
    pub fn new(keys: Keyspace, replicas: Replicas) -> Self {
        Self {
            keys,
            replicas,
            refilling: Arc::default(),
            seen: Arc::default(),
        }
    }

    /// Gets at least `need` units to shard `index` (keys `shard`) now, if the sale has
    /// them anywhere.
    pub async fn now(
        &self,
        conn: &mut Conn,
        product: &ProductId,
        shards: &Shards,
        (index, shard): (u32, &SaleKeys),
        need: i64,
    ) -> Result<Restocked, LedgerError> {
        let sale = self.keys.sale(product);
        if self
            .refill(conn, &sale, shards, (index, shard), need)
            .await?
            > 0
        {
            return Ok(Restocked::Moved);
        }
        let all = shards.keys(&self.keys, product);
        let count = census(conn, &sale, &all).await?;
        if count.pool > 0 {
            // The pool has units, so another refill of this shard is under way, or one
            // was cut short: finish that one if it is stale.
            ledger::recover(conn, &self.replicas, (&sale, &all), STALE_TRANSFER).await?;
            return Ok(Restocked::Busy);
        }
        let own = count.shards.get(index as usize).copied().unwrap_or(0);
        let total = count.total();
        if total < need {
            return Ok(Restocked::Short { left: total });
        }
        let mut lacking = need - own;
        for (j, other) in all.iter().enumerate() {
            let there = count.shards[j];
            if j == index as usize || there <= 0 || lacking <= 0 {
                continue;
            }
            let swept =
                ledger::sweep(conn, &self.replicas, &sale, other, there.min(lacking)).await?;
            lacking -= swept;
        }
        let moved = self
            .refill(conn, &sale, shards, (index, shard), need)
            .await?;
        Ok(if moved > 0 {
            Restocked::Moved
        } else {
            Restocked::Busy
        })
    }

    /// One refill of shard `index` from the pool: a chunk, and at least `need` units.
    async fn refill(
        &self,
        conn: &mut Conn,
        sale: &SaleKeys,
        shards: &Shards,
        (index, shard): (u32, &SaleKeys),
        need: i64,
    ) -> Result<i64, LedgerError> {
        let pool = units(conn, sale, ledger::POOL).await?;
        if pool <= 0 {
            return Ok(0);
        }
        let want = ledger::chunk(pool, shards.count(), shards.chunk).max(need);
        ledger::refill(conn, &self.replicas, sale, shard, index, want).await
    }

    /// Refills shard `index` in the background, unless this instance is already at it.
    pub fn soon(&self, conn: &Conn, product: &ProductId, shards: &Shards, index: u32) {
        let shard = self
            .keys
            .shard(product, index, shards.salts[index as usize]);
        let key = shard.sale();
        {
            let mut running = self.refilling.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(key.clone()) {
                return;
            }
        }
        let (this, mut conn, shards) = (self.clone(), conn.clone(), shards.clone());
        let sale = self.keys.sale(product);
        tokio::spawn(async move {
            if let Err(e) = this
                .refill(&mut conn, &sale, &shards, (index, &shard), 1)
                .await
            {
                tracing::warn!(error = %e, shard = %key, "background refill failed; the recoverer finishes it");
            }
            let mut running = this.refilling.lock().unwrap_or_else(|p| p.into_inner());
            running.remove(&key);
        });
    }

    /// Upkeep every [`UPKEEP`] until `stop`: each sharded sale's cut transfers finished,
    /// idle shards swept.
    pub async fn run(self, mut conn: Conn, mut stop: watch::Receiver<bool>) {
        while shared::service::shutdown::next_round(&mut stop, UPKEEP).await {
            if let Err(e) = self.upkeep_once(&mut conn).await {
                tracing::warn!(error = %e, "shard upkeep pass failed; retrying");
            }
        }
    }

    /// One pass over every sale; returns how many transfers it finished or made.
    pub async fn upkeep_once(&self, conn: &mut Conn) -> Result<usize, LedgerError> {
        let products: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.sales_registry())
            .query_async(conn)
            .await?;
        let mut done = 0;
        for product in products
            .into_iter()
            .filter_map(|p| ProductId::parse(p).ok())
        {
            let sale = self.keys.sale(&product);
            let Layout::Sharded(shards) = Layout::read(conn, &sale).await? else {
                continue;
            };
            let all = shards.keys(&self.keys, &product);
            match ledger::recover(conn, &self.replicas, (&sale, &all), STALE_TRANSFER).await {
                Ok(n) => done += n,
                Err(e) => tracing::warn!(error = %e, %product, "could not finish transfers"),
            }
            match self.sweep_idle(conn, &sale, &all).await {
                Ok(n) => done += n,
                Err(e) => tracing::warn!(error = %e, %product, "could not sweep idle shards"),
            }
        }
        Ok(done)
    }

    /// With the pool empty, moves the units of every shard that accepted nothing for
    /// [`IDLE`] back to the pool; returns how many sweeps moved units.
    async fn sweep_idle(
        &self,
        conn: &mut Conn,
        sale: &SaleKeys,
        shards: &[SaleKeys],
    ) -> Result<usize, LedgerError> {
        if units(conn, sale, ledger::POOL).await? > 0 {
            return Ok(0);
        }
        let mut swept = 0;
        for shard in shards {
            let remaining = units(conn, shard, ledger::REMAINING).await?;
            if remaining > 0 && self.unchanged_for(&shard.sale(), remaining) >= IDLE {
                let moved = ledger::sweep(conn, &self.replicas, sale, shard, remaining).await?;
                swept += usize::from(moved > 0);
            }
        }
        Ok(swept)
    }

    /// How long this instance has seen shard `key` hold `remaining` units (zero when they
    /// just changed: the shard sold, or was refilled).
    fn unchanged_for(&self, key: &str, remaining: i64) -> Duration {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(key) {
            Some(&(units, since)) if units == remaining => since.elapsed(),
            _ => {
                seen.insert(key.to_owned(), (remaining, Instant::now()));
                Duration::ZERO
            }
        }
    }
}

/// The units in `field` (the pool's, or a shard's `remaining`) of the sale hash of `keys`.
async fn units(conn: &mut Conn, keys: &SaleKeys, field: &str) -> redis::RedisResult<i64> {
    let n: Option<i64> = redis::cmd("HGET")
        .arg(keys.sale())
        .arg(field)
        .query_async(conn)
        .await?;
    Ok(n.unwrap_or(0))
}
