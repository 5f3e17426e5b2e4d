//! Transfers of a sharded sale's units: refills from the pool (in the product's slot) to
//! one shard (in the shard's slot), and sweeps from a shard back to the pool, through
//! transfer ledgers that can neither lose nor double a unit, in three idempotent steps
//! (`lua/shard_take.lua`, `lua/shard_apply.lua`, `lua/shard_close.lua`). A refill is
//! recorded in the product's ledger, a sweep in the shard's own.
//!
//! Each step goes with a `WAIT` for the required replicas, like an admission, and the
//! next step runs only once the replicas hold the last: a failover can take back a step
//! only together with what came after it in the same slot, and an open transfer is
//! finished by whoever finds it ([`recover`]). At any moment a transfer's units are in
//! exactly one place: in the ledger while it is open and not applied, at the destination
//! once the destination's marker holds its id.

use std::collections::HashSet;

use redis::Value;
use shared::keys::SaleKeys;

use crate::redis::Conn;
use crate::replicas::{NotReplicated, Replicas};
use crate::reply::{int, items, text};
use crate::script::Script;

static TAKE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../../lua/shard_take.lua")));
static APPLY: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../../lua/shard_apply.lua")));
static CLOSE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../../lua/shard_close.lua")));

/// Why a step did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Redis failed or refused.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// The replicas did not acknowledge the step: the transfer stays open for a retry.
    #[error(transparent)]
    NotReplicated(#[from] NotReplicated),
    /// A reply the scripts never give.
    #[error("unexpected reply from a shard script: {0}")]
    Unexpected(String),
}

/// The pool's field in the product's sale hash.
pub const POOL: &str = "pool";
/// A shard's field of units on sale in its sale hash.
pub const REMAINING: &str = "remaining";

/// One end of a transfer: a hash and its field of units.
#[derive(Debug, Clone, Copy)]
pub struct End<'a> {
    /// The keys of the sale (the pool's) or of the shard.
    pub keys: &'a SaleKeys,
    /// [`POOL`] or [`REMAINING`].
    pub field: &'static str,
}

impl<'a> End<'a> {
    /// The pool of the sale whose keys are `keys`.
    pub fn pool(keys: &'a SaleKeys) -> Self {
        Self { keys, field: POOL }
    }

    /// The shard whose keys are `keys`.
    pub fn shard(keys: &'a SaleKeys) -> Self {
        Self {
            keys,
            field: REMAINING,
        }
    }
}

/// What the take step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The transfer holds `units` for `dest` (now, or from an earlier take of this id).
    Taken {
        /// Where it goes: a shard's index, or `pool`.
        dest: String,
        /// Its units.
        units: i64,
        /// Still open (not yet closed).
        open: bool,
    },
    /// The destination has another open transfer (this id) in this ledger.
    Busy(String),
    /// The source has no unit.
    Empty,
}

/// One transfer recorded in a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Its id.
    pub id: String,
    /// Where it goes: a shard's index, or `pool`.
    pub dest: String,
    /// Its units.
    pub units: i64,
    /// Not yet closed.
    pub open: bool,
}

async fn step(
    conn: &mut Conn,
    replicas: &Replicas,
    call: crate::script::ScriptCall<'_>,
) -> Result<Value, LedgerError> {
    let (reply, replicated) = call.query_then_wait(conn, replicas).await?;
    replicated?;
    Ok(reply)
}

fn unexpected(v: &Value) -> LedgerError {
    LedgerError::Unexpected(format!("{v:?}"))
}

/// Takes up to `want` units from `from` for `dest` (a shard's index, or `pool`) as
/// transfer `id`, recorded in `from`'s ledger.
pub async fn take(
    conn: &mut Conn,
    replicas: &Replicas,
    from: End<'_>,
    id: &str,
    dest: &str,
    want: i64,
) -> Result<Taken, LedgerError> {
    let keys = [from.keys.sale(), from.keys.transfers()];
    let args = [id, dest, &want.to_string(), from.field];
    let reply = step(conn, replicas, TAKE.call(&keys, &args)).await?;
    let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
    match text(parts.first()).as_deref() {
        Some("TAKEN") => Ok(Taken::Taken {
            dest: text(parts.get(1)).ok_or_else(|| unexpected(&reply))?,
            units: int(parts.get(2)).ok_or_else(|| unexpected(&reply))?,
            open: text(parts.get(3)).as_deref() == Some("open"),
        }),
        Some("BUSY") => Ok(Taken::Busy(text(parts.get(1)).unwrap_or_default())),
        Some("EMPTY") => Ok(Taken::Empty),
        _ => Err(unexpected(&reply)),
    }
}

/// Adds transfer `id`'s `units` to `to` once; returns `to`'s units after it and whether
/// this call applied it (`false`: applied before, nothing changed).
pub async fn apply(
    conn: &mut Conn,
    replicas: &Replicas,
    to: End<'_>,
    id: &str,
    units: i64,
) -> Result<(i64, bool), LedgerError> {
    let keys = [to.keys.sale(), to.keys.applied()];
    let args = [id, &units.to_string(), to.field];
    let reply = step(conn, replicas, APPLY.call(&keys, &args)).await?;
    let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
    let remaining = int(parts.get(1)).ok_or_else(|| unexpected(&reply))?;
    match text(parts.first()).as_deref() {
        Some("APPLIED") => Ok((remaining, true)),
        Some("REPEAT") => Ok((remaining, false)),
        _ => Err(unexpected(&reply)),
    }
}

/// Closes transfer `id` in `from`'s ledger (after its destination applied it); `false`
/// if the ledger has no such id.
pub async fn close(
    conn: &mut Conn,
    replicas: &Replicas,
    from: &SaleKeys,
    id: &str,
) -> Result<bool, LedgerError> {
    let keys = [from.transfers()];
    let reply = step(conn, replicas, CLOSE.call(&keys, &[id])).await?;
    let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
    match text(parts.first()).as_deref() {
        Some("CLOSED") => Ok(true),
        Some("UNKNOWN") => Ok(false),
        _ => Err(unexpected(&reply)),
    }
}

/// One whole transfer of up to `want` units from `from` to `to` (`dest` names `to` in
/// the ledger): take, apply, close. Returns the units moved (0 when the source is empty
/// or the destination has a transfer from it under way). On an error the transfer stays
/// open: [`recover`] finishes it.
pub async fn transfer(
    conn: &mut Conn,
    replicas: &Replicas,
    (from, to): (End<'_>, End<'_>),
    dest: &str,
    want: i64,
) -> Result<i64, LedgerError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let Taken::Taken { units, .. } = take(conn, replicas, from, &id, dest, want).await? else {
        return Ok(0);
    };
    apply(conn, replicas, to, &id, units).await?;
    close(conn, replicas, from.keys, &id).await?;
    Ok(units)
}

/// A refill of shard `index` (keys `shard`) from the pool of `sale`; see [`transfer`].
pub async fn refill(
    conn: &mut Conn,
    replicas: &Replicas,
    sale: &SaleKeys,
    shard: &SaleKeys,
    index: u32,
    want: i64,
) -> Result<i64, LedgerError> {
    let ends = (End::pool(sale), End::shard(shard));
    transfer(conn, replicas, ends, &index.to_string(), want).await
}

/// A sweep of up to `want` units of a shard (keys `shard`) back to the pool of `sale`;
/// see [`transfer`].
pub async fn sweep(
    conn: &mut Conn,
    replicas: &Replicas,
    sale: &SaleKeys,
    shard: &SaleKeys,
    want: i64,
) -> Result<i64, LedgerError> {
    let ends = (End::shard(shard), End::pool(sale));
    transfer(conn, replicas, ends, POOL, want).await
}

/// Every transfer recorded in the ledger of `keys` (the product's: refills; a shard's:
/// sweeps).
pub async fn transfers(conn: &mut Conn, keys: &SaleKeys) -> Result<Vec<Transfer>, LedgerError> {
    let all: Value = redis::cmd("HGETALL")
        .arg(keys.transfers())
        .query_async(conn)
        .await?;
    Ok(read_ledger(Some(&all)))
}

/// Finishes every open transfer of `sale` and its `shards` (keys by index): apply, which
/// a destination that has it ignores, then close. Returns how many it finished.
pub async fn recover(
    conn: &mut Conn,
    replicas: &Replicas,
    sale: &SaleKeys,
    shards: &[SaleKeys],
) -> Result<usize, LedgerError> {
    let mut finished = 0;
    for t in transfers(conn, sale).await?.into_iter().filter(|t| t.open) {
        let to = t
            .dest
            .parse::<usize>()
            .ok()
            .and_then(|i| shards.get(i))
            .ok_or_else(|| LedgerError::Unexpected(format!("a refill to {:?}", t.dest)))?;
        apply(conn, replicas, End::shard(to), &t.id, t.units).await?;
        close(conn, replicas, sale, &t.id).await?;
        finished += 1;
    }
    for shard in shards {
        for t in transfers(conn, shard).await?.into_iter().filter(|t| t.open) {
            apply(conn, replicas, End::pool(sale), &t.id, t.units).await?;
            close(conn, replicas, shard, &t.id).await?;
            finished += 1;
        }
    }
    Ok(finished)
}

/// Reads the pool, the product's ledger and the pool's applied sweeps (one slot, one
/// atomic read).
static READ_POOL: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        "return {tonumber(redis.call('HGET', KEYS[1], 'pool')) or 0, \
         redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3])}",
    )
});
/// Reads a shard's units, its applied refills and its ledger of sweeps (one slot, one
/// atomic read).
static READ_SHARD: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        "return {tonumber(redis.call('HGET', KEYS[1], 'remaining')) or 0, \
         redis.call('SMEMBERS', KEYS[2]), redis.call('HGETALL', KEYS[3])}",
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
}

impl Census {
    /// pool + Σ shards + in transit: with the units taken and those on their way back,
    /// what must equal the stock.
    pub fn total(&self) -> i64 {
        self.pool + self.shards.iter().sum::<i64>() + self.in_transit
    }
}

/// The transfers of a ledger read with `HGETALL` (the `open:<dest>` fields left out).
fn read_ledger(v: Option<&Value>) -> Vec<Transfer> {
    items(v)
        .unwrap_or_default()
        .chunks(2)
        .filter_map(|kv| {
            let record = text(kv.get(1))?;
            let mut parts = record.split(':');
            let (dest, units, state) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Transfer {
                id: text(kv.first())?,
                dest: dest.to_owned(),
                units: units.parse().ok()?,
                open: state == "open",
            })
        })
        .collect()
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
    let mut counts = Vec::with_capacity(shards.len());
    let mut applied = Vec::with_capacity(shards.len());
    let mut in_transit = 0;
    for s in shards {
        let keys = [s.sale(), s.applied(), s.transfers()];
        let reply: Value = READ_SHARD.call(&keys, &[0u8; 0]).query(conn).await?;
        let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
        counts.push(int(parts.first()).ok_or_else(|| unexpected(&reply))?);
        applied.push(read_ids(parts.get(1)));
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
    })
}
