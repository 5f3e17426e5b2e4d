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
//! once the destination's marker holds its id ([`super::census`] counts them so).

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

/// The error of a reply the scripts never give.
pub(super) fn unexpected(v: &Value) -> LedgerError {
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

/// How many units a refill of one of `shards` shards asks for: `base` while the pool
/// holds plenty, shrinking as it empties (a shard's equal share of half the pool, at
/// least 1), so that when the pool runs dry few units sit on a shard nobody buys from.
pub fn chunk(pool: i64, shards: u32, base: i64) -> i64 {
    if pool <= 0 {
        return 0;
    }
    (pool / (2 * i64::from(shards.max(1)))).clamp(1, base.max(1))
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

/// Finishes every open transfer of `sale` and its `shards` (keys by index) taken at
/// least `min_age` ago: the take repeated (it takes nothing again, and its `WAIT` returns
/// only once the source's replicas hold the first take, so a failover of the source can
/// no longer undo it), then apply, which a destination that has it ignores, then close.
/// Returns how many it finished. A transfer's id is a UUIDv7, so its age is known; a
/// recoverer beside live transfers passes an age past a step's duration, so it seldom
/// repeats work their movers are doing (which would be harmless).
pub async fn recover(
    conn: &mut Conn,
    replicas: &Replicas,
    (sale, shards): (&SaleKeys, &[SaleKeys]),
    min_age: std::time::Duration,
) -> Result<usize, LedgerError> {
    let stale = |t: &Transfer| t.open && age(&t.id).is_none_or(|a| a >= min_age);
    let mut finished = 0;
    for t in transfers(conn, sale).await?.into_iter().filter(stale) {
        // A refill to no shard of this layout is a bug; it must not stop the others.
        let Some(to) = t.dest.parse::<usize>().ok().and_then(|i| shards.get(i)) else {
            tracing::error!(
                id = t.id,
                dest = t.dest,
                "an open refill to an unknown shard left as it is"
            );
            continue;
        };
        finish(conn, replicas, (End::pool(sale), End::shard(to)), &t).await?;
        finished += 1;
    }
    for shard in shards {
        for t in transfers(conn, shard).await?.into_iter().filter(stale) {
            finish(conn, replicas, (End::shard(shard), End::pool(sale)), &t).await?;
            finished += 1;
        }
    }
    Ok(finished)
}

/// Confirms, applies and closes one open transfer `t` from `from` to `to`. What is
/// applied is what the repeated take answers, never the record read before it: a take a
/// failover undid meanwhile is taken afresh (or finds the source empty, or the
/// destination busy, and then nothing moves).
async fn finish(
    conn: &mut Conn,
    replicas: &Replicas,
    (from, to): (End<'_>, End<'_>),
    t: &Transfer,
) -> Result<(), LedgerError> {
    let Taken::Taken { units, .. } = take(conn, replicas, from, &t.id, &t.dest, t.units).await?
    else {
        return Ok(());
    };
    apply(conn, replicas, to, &t.id, units).await?;
    close(conn, replicas, from.keys, &t.id).await?;
    Ok(())
}

/// How long ago transfer `id` (a UUIDv7) was made; `None` for an id that is not one.
fn age(id: &str) -> Option<std::time::Duration> {
    let (secs, nanos) = uuid::Uuid::parse_str(id).ok()?.get_timestamp()?.to_unix();
    let made = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    Some(
        std::time::SystemTime::now()
            .duration_since(made)
            .unwrap_or_default(),
    )
}

/// The transfers of a ledger read with `HGETALL` (the `open:<dest>` fields left out).
pub(super) fn read_ledger(v: Option<&Value>) -> Vec<Transfer> {
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

#[cfg(test)]
mod tests {
    use super::chunk;

    #[test]
    fn chunks_shrink_as_the_pool_empties() {
        assert_eq!(chunk(10_000, 3, 50), 50);
        assert_eq!(chunk(60, 3, 50), 10);
        assert_eq!(chunk(5, 3, 50), 1, "never 0 while a unit is left");
        assert_eq!(chunk(0, 3, 50), 0);
        assert_eq!(chunk(-1, 3, 50), 0);
        assert_eq!(
            chunk(100, 0, 0),
            1,
            "0 shards and a base of 0 are taken as 1"
        );
        // One shard sells, two idle ones got their first chunks: once the pool is dry,
        // what the busy shard took last is at most a share of what was left.
        let (mut pool, mut last) = (1_000, 0);
        while pool > 0 {
            last = chunk(pool, 3, 50);
            pool -= last;
        }
        assert_eq!(last, 1);
    }
}
