//! Refills of a sharded sale: units move from the pool (in the product's slot) to one
//! shard (in the shard's slot) through a transfer ledger that can neither lose nor double
//! a unit, in three idempotent steps (`lua/shard_take.lua`, `lua/shard_apply.lua`,
//! `lua/shard_close.lua`).
//!
//! Each step goes with a `WAIT` for the required replicas, like an admission, and the
//! next step runs only once the replicas hold the last: a failover can take back a step
//! only together with what came after it in the same slot, and an open transfer is
//! finished by whoever finds it ([`recover`]). At any moment a transfer's units are in
//! exactly one place: in the ledger while it is open and not applied, in the shard once
//! the shard's marker holds its id.

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

/// What the take step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The transfer holds `units` for `shard` (now, or from an earlier take of this id).
    Taken {
        /// The shard it goes to.
        shard: u32,
        /// Its units.
        units: i64,
        /// Still open (not yet closed).
        open: bool,
    },
    /// The shard has another open transfer (this id).
    Busy(String),
    /// The pool is empty.
    Empty,
}

/// One transfer still open in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTransfer {
    /// Its id.
    pub id: String,
    /// The shard it goes to.
    pub shard: u32,
    /// Its units.
    pub units: i64,
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

/// Takes up to `want` units from the pool of `sale` for `shard` as transfer `id`.
pub async fn take(
    conn: &mut Conn,
    replicas: &Replicas,
    sale: &SaleKeys,
    id: &str,
    shard: u32,
    want: i64,
) -> Result<Taken, LedgerError> {
    let keys = [sale.sale(), sale.transfers()];
    let args = [id.to_owned(), shard.to_string(), want.to_string()];
    let reply = step(conn, replicas, TAKE.call(&keys, &args)).await?;
    let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
    match text(parts.first()).as_deref() {
        Some("TAKEN") => Ok(Taken::Taken {
            shard: int(parts.get(1))
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| unexpected(&reply))?,
            units: int(parts.get(2)).ok_or_else(|| unexpected(&reply))?,
            open: text(parts.get(3)).as_deref() == Some("open"),
        }),
        Some("BUSY") => Ok(Taken::Busy(text(parts.get(1)).unwrap_or_default())),
        Some("EMPTY") => Ok(Taken::Empty),
        _ => Err(unexpected(&reply)),
    }
}

/// Adds transfer `id`'s `units` to `shard` once; returns the shard's remaining units and
/// whether this call applied it (`false`: applied before, nothing changed).
pub async fn apply(
    conn: &mut Conn,
    replicas: &Replicas,
    shard: &SaleKeys,
    id: &str,
    units: i64,
) -> Result<(i64, bool), LedgerError> {
    let keys = [shard.sale(), shard.applied()];
    let args = [id.to_owned(), units.to_string()];
    let reply = step(conn, replicas, APPLY.call(&keys, &args)).await?;
    let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
    let remaining = int(parts.get(1)).ok_or_else(|| unexpected(&reply))?;
    match text(parts.first()).as_deref() {
        Some("APPLIED") => Ok((remaining, true)),
        Some("REPEAT") => Ok((remaining, false)),
        _ => Err(unexpected(&reply)),
    }
}

/// Closes transfer `id` (after its shard applied it); `false` if the ledger has no such id.
pub async fn close(
    conn: &mut Conn,
    replicas: &Replicas,
    sale: &SaleKeys,
    id: &str,
) -> Result<bool, LedgerError> {
    let keys = [sale.transfers()];
    let reply = step(conn, replicas, CLOSE.call(&keys, &[id])).await?;
    let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
    match text(parts.first()).as_deref() {
        Some("CLOSED") => Ok(true),
        Some("UNKNOWN") => Ok(false),
        _ => Err(unexpected(&reply)),
    }
}

/// One whole refill of `shard` (whose keys are `shard_keys`) from the pool of `sale`: take,
/// apply, close. Returns the units moved (0 when the pool is empty or the shard already
/// has a refill under way). On an error the transfer stays open: [`recover`] finishes it.
pub async fn refill(
    conn: &mut Conn,
    replicas: &Replicas,
    sale: &SaleKeys,
    shard_keys: &SaleKeys,
    shard: u32,
    want: i64,
) -> Result<i64, LedgerError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let Taken::Taken { units, .. } = take(conn, replicas, sale, &id, shard, want).await? else {
        return Ok(0);
    };
    apply(conn, replicas, shard_keys, &id, units).await?;
    close(conn, replicas, sale, &id).await?;
    Ok(units)
}

/// The transfers of `sale` still open.
pub async fn open_transfers(
    conn: &mut Conn,
    sale: &SaleKeys,
) -> Result<Vec<OpenTransfer>, LedgerError> {
    let all: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(sale.transfers())
        .query_async(conn)
        .await?;
    Ok(all
        .into_iter()
        .filter_map(|(id, record)| {
            let mut parts = record.split(':');
            let (shard, units, state) = (parts.next()?, parts.next()?, parts.next()?);
            (state == "open").then_some(())?;
            Some(OpenTransfer {
                id,
                shard: shard.parse().ok()?,
                units: units.parse().ok()?,
            })
        })
        .collect())
}

/// Finishes every open transfer of `sale` (apply, which a shard that has it ignores, then
/// close); `shards` are the shards' keys by index. Returns how many it finished.
pub async fn recover(
    conn: &mut Conn,
    replicas: &Replicas,
    sale: &SaleKeys,
    shards: &[SaleKeys],
) -> Result<usize, LedgerError> {
    let open = open_transfers(conn, sale).await?;
    for t in &open {
        let keys = shards
            .get(t.shard as usize)
            .ok_or_else(|| LedgerError::Unexpected(format!("transfer to shard {}", t.shard)))?;
        apply(conn, replicas, keys, &t.id, t.units).await?;
        close(conn, replicas, sale, &t.id).await?;
    }
    Ok(open.len())
}

/// Reads the pool and the ledger together (one slot, one atomic read).
static READ_LEDGER: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        "return {tonumber(redis.call('HGET', KEYS[1], 'pool')) or 0, \
         redis.call('HGETALL', KEYS[2])}",
    )
});
/// Reads a shard's units and applied transfers together (one slot, one atomic read).
static READ_SHARD: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        "return {tonumber(redis.call('HGET', KEYS[1], 'remaining')) or 0, \
         redis.call('SMEMBERS', KEYS[2])}",
    )
});

/// Where a sharded sale's unsold units are, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    /// In the pool.
    pub pool: i64,
    /// On each shard (its `remaining`), by index.
    pub shards: Vec<i64>,
    /// In transfers taken from the pool and not yet applied to their shard.
    pub in_transit: i64,
}

impl Census {
    /// pool + Σ shards + in transit: with the units taken and those on their way back,
    /// what must equal the stock.
    pub fn total(&self) -> i64 {
        self.pool + self.shards.iter().sum::<i64>() + self.in_transit
    }
}

/// Every transfer of a ledger (`HGETALL` of it): id -> (shard, units, open).
fn transfers(v: Option<&Value>) -> std::collections::HashMap<String, (u32, i64, bool)> {
    let fields = items(v).unwrap_or_default();
    fields
        .chunks(2)
        .filter_map(|kv| {
            let record = text(kv.get(1))?;
            let mut parts = record.split(':');
            let (shard, units, state) = (parts.next()?, parts.next()?, parts.next()?);
            Some((
                text(kv.first())?,
                (shard.parse().ok()?, units.parse().ok()?, state == "open"),
            ))
        })
        .collect()
}

/// Counts where the units of `sale` are while refills go on, without stopping them: the
/// pool and the ledger are read (P), then each shard (S), then the ledger again (P'). A
/// transfer counts in transit if open in P and not applied in S; one taken after P had
/// its units in P's pool, so if S already has it applied it is taken off the shards'
/// count. Each unit is counted once whichever steps fall between the reads.
pub async fn census(
    conn: &mut Conn,
    sale: &SaleKeys,
    shards: &[SaleKeys],
) -> Result<Census, LedgerError> {
    let ledger_keys = [sale.sale(), sale.transfers()];
    let before: Value = READ_LEDGER
        .call(&ledger_keys, &[0u8; 0])
        .query(conn)
        .await?;
    let before_parts = items(Some(&before)).ok_or_else(|| unexpected(&before))?;
    let pool = int(before_parts.first()).ok_or_else(|| unexpected(&before))?;
    let known = transfers(before_parts.get(1));
    let mut counts = Vec::with_capacity(shards.len());
    let mut applied = Vec::with_capacity(shards.len());
    for s in shards {
        let reply: Value = READ_SHARD
            .call(&[s.sale(), s.applied()], &[0u8; 0])
            .query(conn)
            .await?;
        let parts = items(Some(&reply)).ok_or_else(|| unexpected(&reply))?;
        counts.push(int(parts.first()).ok_or_else(|| unexpected(&reply))?);
        let ids: std::collections::HashSet<String> = items(parts.get(1))
            .unwrap_or_default()
            .iter()
            .filter_map(|v| text(Some(v)))
            .collect();
        applied.push(ids);
    }
    let after: Value = READ_LEDGER
        .call(&ledger_keys, &[0u8; 0])
        .query(conn)
        .await?;
    let after_parts = items(Some(&after)).ok_or_else(|| unexpected(&after))?;
    let is_applied =
        |shard: u32, id: &str| applied.get(shard as usize).is_some_and(|a| a.contains(id));
    let in_transit = known
        .iter()
        .filter(|(id, (shard, _, open))| *open && !is_applied(*shard, id))
        .map(|(_, (_, units, _))| units)
        .sum();
    for (id, (shard, units, _)) in transfers(after_parts.get(1)) {
        if !known.contains_key(&id)
            && is_applied(shard, &id)
            && let Some(c) = counts.get_mut(shard as usize)
        {
            *c -= units;
        }
    }
    Ok(Census {
        pool,
        shards: counts,
        in_transit,
    })
}
