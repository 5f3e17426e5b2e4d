//! Sales: open one (unsharded, or spread over shards: [`shards`]), and read its state
//! across Redis and PostgreSQL.

pub mod shards;
mod status;

pub use status::{SaleStatus, ShardStatus, status};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionLike;
use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;
use shared::sale::SaleState;
use stores::records::sale::field as sale_field;
use tokio_postgres::Client;

use crate::OpsError;
use crate::guard::Limits;

static SALE_OPEN: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../../../../lua/sale_open.lua")));

/// The most shards a sale may have (`CHECK` in `sql/V4__shards.sql`).
pub const MAX_SHARDS: u32 = 64;

/// The longest payment window a sale may have: 30 days.
pub const MAX_PAYMENT_WINDOW_MS: u64 = 30 * 24 * 3600 * 1000;

/// The parameters of a new sale.
#[derive(Debug, Clone)]
pub struct NewSale {
    /// The product.
    pub product: ProductId,
    /// Units on sale.
    pub stock: u32,
    /// Most units per user (0 = no cap).
    pub per_user: u32,
    /// When the sale opens (None = now).
    pub starts_at: Option<SystemTime>,
    /// When it ends (None = never).
    pub ends_at: Option<SystemTime>,
    /// Rate limits (usually [`Limits::defaults`]).
    pub limits: Limits,
    /// How long an accepted order stays reserved unpaid before it expires and its units
    /// go back on sale (None = never).
    pub payment_window: Option<Duration>,
    /// Shards its stock is spread over (1 = unsharded: the product's own keys).
    pub shards: u32,
}

impl NewSale {
    /// The payment window in ms, 0 for none (at most [`MAX_PAYMENT_WINDOW_MS`]).
    pub(crate) fn payment_window_ms(&self) -> u64 {
        self.payment_window.map_or(0, |w| w.as_millis() as u64)
    }
}

pub(crate) fn ms(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How `open` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenOutcome {
    /// The sale is new.
    Created,
    /// The same sale was already open (a re-run of the same command).
    AlreadyOpen,
}

/// Creates the sale in PostgreSQL (the durable record, `CHECK (sold <= stock)`) and then
/// in Redis (what admission reads). Re-running the same command completes a half-done
/// open and otherwise changes nothing; different parameters for an existing sale are
/// refused.
pub async fn open(
    pg: &Client,
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    sale: &NewSale,
) -> Result<OpenOutcome, OpsError> {
    let row = SaleRow::checked(sale)?;
    let inserted = pg
        .execute(
            "INSERT INTO sales (product_id, stock, per_user_limit, starts_at, ends_at, \
                                payment_window_ms, shards) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (product_id) DO NOTHING",
            &[
                &sale.product.as_str(),
                &row.stock,
                &row.per_user,
                &sale.starts_at,
                &sale.ends_at,
                &row.payment_window_ms,
                &row.shards,
            ],
        )
        .await?;
    if inserted == 0 {
        same_sale(pg, redis, keys, sale, row.stock).await?;
    }
    let open = SaleState::Open.as_str();
    let created = if sale.shards > 1 {
        shards::open_sharded(pg, redis, keys, sale, (sale.stock, open)).await?
    } else {
        open_in_redis(redis, keys, sale, sale.stock, open).await?
    };
    Ok(if inserted == 1 || created {
        OpenOutcome::Created
    } else {
        OpenOutcome::AlreadyOpen
    })
}

/// A new sale's columns, checked.
struct SaleRow {
    stock: i32,
    per_user: i32,
    payment_window_ms: i64,
    shards: i32,
}

impl SaleRow {
    fn checked(sale: &NewSale) -> Result<Self, OpsError> {
        if let (Some(s), Some(e)) = (sale.starts_at, sale.ends_at)
            && e <= s
        {
            return Err(OpsError::Invalid(
                "--ends-at must be after --starts-at".into(),
            ));
        }
        if sale.payment_window_ms() > MAX_PAYMENT_WINDOW_MS {
            return Err(OpsError::Invalid(
                "--payment-window is too long (at most 30 days)".into(),
            ));
        }
        if !(1..=MAX_SHARDS).contains(&sale.shards) {
            return Err(OpsError::Invalid(format!(
                "--shards must be 1 to {MAX_SHARDS}"
            )));
        }
        Ok(Self {
            shards: sale.shards as i32,
            stock: i32::try_from(sale.stock)
                .map_err(|_| OpsError::Invalid("--stock is too large".into()))?,
            per_user: i32::try_from(sale.per_user)
                .map_err(|_| OpsError::Invalid("--per-user is too large".into()))?,
            payment_window_ms: i64::try_from(sale.payment_window_ms())
                .map_err(|_| OpsError::Invalid("--payment-window is too long".into()))?,
        })
    }
}

/// For a sale PostgreSQL already has: refuses another stock, and a sale that sold units
/// but lost its Redis state (that is `sale recover`'s job).
async fn same_sale(
    pg: &Client,
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    sale: &NewSale,
    stock: i32,
) -> Result<(), OpsError> {
    let row = pg
        .query_one(
            "SELECT stock, sold, shards FROM sales WHERE product_id = $1",
            &[&sale.product.as_str()],
        )
        .await?;
    let (old_stock, sold, shards): (i32, i32, i32) = (row.get(0), row.get(1), row.get(2));
    if shards != sale.shards as i32 {
        return Err(OpsError::Conflict(format!(
            "a sale for {} already exists with {shards} shard(s); see `flashctl sale status`",
            sale.product
        )));
    }
    if old_stock != stock {
        return Err(OpsError::Conflict(format!(
            "a sale for {} already exists with stock {old_stock}; see `flashctl sale status`",
            sale.product
        )));
    }
    if sold > 0 && !exists_in_redis(redis, keys, &sale.product).await? {
        return Err(OpsError::Conflict(format!(
            "{} has {sold} units persisted but no Redis state: use `flashctl sale recover`",
            sale.product
        )));
    }
    Ok(())
}

/// Creates the Redis side of a sale with `remaining` units; `false` if it already
/// exists. Tests of the API use it directly; operators go through [`open`].
pub async fn open_in_redis(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    sale: &NewSale,
    remaining: u32,
    state: &str,
) -> Result<bool, OpsError> {
    let sk = keys.sale(&sale.product);
    let mut open = SALE_OPEN.prepare_invoke();
    open.key(sk.sale())
        .key(sk.outbox())
        .arg(sale.stock)
        .arg(sale.per_user)
        .arg(ms(sale.starts_at))
        .arg(ms(sale.ends_at))
        .arg(remaining)
        .arg(state)
        .arg(sale_field::REMAINING);
    for (field, value) in sale.limits.fields() {
        open.arg(field).arg(value);
    }
    if sale.payment_window_ms() > 0 {
        open.arg(sale_field::PAYMENT_WINDOW_MS)
            .arg(sale.payment_window_ms());
    }
    let created: i64 = open.invoke_async(redis).await?;
    register(redis, keys, &sale.product).await?;
    Ok(created == 1)
}

pub(crate) async fn exists_in_redis(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<bool, OpsError> {
    let n: i64 = redis::cmd("EXISTS")
        .arg(keys.sale(product).sale())
        .query_async(redis)
        .await?;
    Ok(n == 1)
}

/// Halts or resumes a live sale; the next request on every instance sees it. The sale is
/// (re-)registered for the outbox relay too, in case an earlier `open` stopped short.
pub async fn set_state(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
    state: SaleState,
) -> Result<(), OpsError> {
    crate::guard::set_fields(
        redis,
        keys,
        product,
        &[(sale_field::STATE.to_owned(), state.as_str())],
    )
    .await?;
    register(redis, keys, product).await
}

/// Adds the product to the registry of sales (what the relay and global blocks walk).
pub(crate) async fn register(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<(), OpsError> {
    redis::cmd("SADD")
        .arg(keys.sales_registry())
        .arg(product.as_str())
        .exec_async(redis)
        .await?;
    Ok(())
}

/// Parses a time given as RFC 3339 (`2026-11-22T18:00:00Z`) or Unix milliseconds.
pub fn parse_time(raw: &str) -> Result<SystemTime, OpsError> {
    if let Ok(ms) = raw.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_millis(ms));
    }
    humantime::parse_rfc3339_weak(raw).map_err(|e| {
        OpsError::Invalid(format!(
            "{raw:?} is neither RFC 3339 nor Unix milliseconds: {e}"
        ))
    })
}
