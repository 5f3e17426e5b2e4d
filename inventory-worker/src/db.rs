//! PostgreSQL: the pool and the batch write (the migrations are `stores::migrate`).
//!
//! A batch is written by one statement, atomic as its own implicit transaction (no
//! BEGIN/COMMIT round trips): the orders are inserted with
//! `ON CONFLICT (order_id) DO NOTHING`, and `sales.sold` grows by exactly the units of the
//! rows that were inserted, so a redelivered message changes nothing. `CHECK (sold <=
//! stock)` is the last safety net against oversell; tripping it marks the batch for
//! isolation (see [`crate::consumer`]). Ended reservations are applied by a second
//! statement ([`write_transitions`]), as guarded: only a `reserved` row moves, so a
//! redelivered transition changes nothing either.

use std::time::SystemTime;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use shared::{OrderPlaced, OrderTransitioned};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data itself is refused (constraint, invalid value): retrying cannot help.
    #[error("rejected by the database: {0}")]
    Rejected(#[source] tokio_postgres::Error),
    /// Connection lost, pool exhausted, deadlock, shutdown: retry later.
    #[error("database unavailable: {0}")]
    Transient(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            // Class 23: integrity constraint violation; class 22: data exception.
            Some(code) if code.code().starts_with("23") || code.code().starts_with("22") => {
                StoreError::Rejected(e)
            }
            Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => {
                StoreError::Transient(format!("deadlock: {e}"))
            }
            _ => StoreError::Transient(format!("{e}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Transient(format!("pool: {e}"))
    }
}

/// A connection pool, with TLS as `DATABASE_URL`'s `sslmode` asks for
/// ([`stores::postgres::Target`]).
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let target = stores::postgres::Target::parse(url)?;
    let manager = Manager::from_config(
        target.config,
        target.tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

const WRITE_BATCH: &str = r#"
WITH input AS (
    SELECT DISTINCT ON (order_id) *
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::text[],
                $6::timestamptz[], $7::text[], $8::text[])
      AS t(order_id, product_id, user_id, quantity, idempotency_key, accepted_at,
           ip_hash, device_hash)
), inserted AS (
    INSERT INTO orders (order_id, product_id, user_id, quantity, idempotency_key,
                        accepted_at, ip_hash, device_hash)
    SELECT order_id, product_id, user_id, quantity, idempotency_key, accepted_at,
           ip_hash, device_hash
    FROM input
    ON CONFLICT (order_id) DO NOTHING
    RETURNING product_id, quantity
), per_product AS (
    SELECT product_id, sum(quantity)::int4 AS units, count(*) AS n
    FROM inserted GROUP BY product_id
), updated AS (
    -- Runs although nothing reads it: PostgreSQL executes every data-modifying CTE.
    UPDATE sales s SET sold = s.sold + p.units
    FROM per_product p WHERE s.product_id = p.product_id
)
SELECT coalesce(sum(n), 0)::int8 AS inserted FROM per_product
"#;

/// Writes orders and their units in one statement (atomic on its own, so no
/// BEGIN/COMMIT round trips), idempotently. Returns how many rows were new.
pub async fn write_batch(pool: &Pool, orders: &[&OrderPlaced]) -> Result<u64, StoreError> {
    if orders.is_empty() {
        return Ok(0);
    }
    let n = orders.len();
    let mut ids = Vec::<Uuid>::with_capacity(n);
    let mut products = Vec::<&str>::with_capacity(n);
    let mut users = Vec::<&str>::with_capacity(n);
    let mut quantities = Vec::<i32>::with_capacity(n);
    let mut keys = Vec::<&str>::with_capacity(n);
    let mut accepted = Vec::<SystemTime>::with_capacity(n);
    let mut ip_hashes = Vec::<Option<&str>>::with_capacity(n);
    let mut device_hashes = Vec::<Option<&str>>::with_capacity(n);
    for o in orders {
        ids.push(o.order_id);
        products.push(o.product_id.as_str());
        users.push(o.user_id.as_str());
        quantities.push(o.quantity.get() as i32);
        keys.push(o.idempotency_key.as_str());
        accepted.push(o.accepted_at());
        ip_hashes.push(o.ip_hash.as_deref());
        device_hashes.push(o.device_hash.as_deref());
    }
    let client = pool.get().await?;
    let stmt = client.prepare_cached(WRITE_BATCH).await?;
    let row = client
        .query_one(
            &stmt,
            &[
                &ids,
                &products,
                &users,
                &quantities,
                &keys,
                &accepted,
                &ip_hashes,
                &device_hashes,
            ],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

const WRITE_TRANSITIONS: &str = r#"
WITH input AS (
    SELECT DISTINCT ON (order_id) *
    FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[])
      AS t(order_id, state, state_at, reason)
), moved AS (
    UPDATE orders o SET state = i.state, state_at = i.state_at, state_reason = i.reason
    FROM input i
    WHERE o.order_id = i.order_id AND o.state = 'reserved'
    RETURNING o.product_id, o.quantity, o.state
), returned AS (
    SELECT product_id, sum(quantity)::int4 AS units
    FROM moved WHERE state <> 'paid' GROUP BY product_id
), updated AS (
    -- Runs although nothing reads it: PostgreSQL executes every data-modifying CTE.
    UPDATE sales s SET sold = s.sold - r.units
    FROM returned r WHERE s.product_id = r.product_id
)
SELECT (SELECT coalesce(array_agg(state), '{}') FROM moved) AS moved,
       (SELECT coalesce(array_agg(i.order_id), '{}') FROM input i
         WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = i.order_id)) AS unknown,
       -- Rows that had already left `reserved` for another state (read before this
       -- statement's update, so a row moved now is not among them).
       (SELECT coalesce(array_agg(i.order_id), '{}') FROM input i
          JOIN orders o ON o.order_id = i.order_id
         WHERE o.state <> 'reserved' AND o.state <> i.state) AS contradicted
"#;

/// What [`write_transitions`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The state each newly moved order reached (redeliveries are not here).
    pub moved: Vec<shared::ReservationState>,
    /// Transitions of orders that have no row (their placement was dead-lettered).
    pub unknown: Vec<Uuid>,
    /// Transitions of orders PostgreSQL already holds in another ended state (Redis
    /// decided twice: a failover lost the first decision). Nothing is moved or released.
    pub contradicted: Vec<Uuid>,
}

/// Applies ended reservations in one statement: each `reserved` row moves to its state
/// and `sales.sold` gives back the units of cancelled and expired orders; a row that
/// already moved is left alone.
pub async fn write_transitions(
    pool: &Pool,
    events: &[&OrderTransitioned],
) -> Result<Applied, StoreError> {
    if events.is_empty() {
        return Ok(Applied::default());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.order_id).collect();
    let states: Vec<&str> = events.iter().map(|e| e.state.as_str()).collect();
    let at: Vec<SystemTime> = events
        .iter()
        .map(|e| std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.at_ms))
        .collect();
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    let client = pool.get().await?;
    let stmt = client.prepare_cached(WRITE_TRANSITIONS).await?;
    let row = client
        .query_one(&stmt, &[&ids, &states, &at, &reasons])
        .await?;
    let moved: Vec<String> = row.get(0);
    Ok(Applied {
        moved: moved
            .iter()
            .filter_map(|s| shared::ReservationState::parse(s))
            .collect(),
        unknown: row.get(1),
        contradicted: row.get(2),
    })
}

/// One message the worker could not write, for `rejected_orders`.
#[derive(Debug, Clone)]
pub struct Rejection<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The order id, if the payload could be read that far.
    pub order_id: Option<Uuid>,
    /// The product, if known.
    pub product_id: Option<&'a str>,
    /// The raw payload.
    pub payload: &'a [u8],
    /// Why it was rejected.
    pub reason: &'a str,
}

/// Records a poison message; recording the same message twice is a no-op.
pub async fn record_rejection(pool: &Pool, r: &Rejection<'_>) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO rejected_orders \
               (topic, kafka_partition, kafka_offset, order_id, product_id, payload, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
        )
        .await
        .map_err(|e| StoreError::Transient(format!("recording a rejection: {e}")))?;
    client
        .execute(
            &stmt,
            &[
                &r.topic,
                &r.partition,
                &r.offset,
                &r.order_id,
                &r.product_id,
                &r.payload,
                &r.reason,
            ],
        )
        .await
        .map_err(|e| StoreError::Transient(format!("recording a rejection: {e}")))?;
    Ok(())
}

/// `SELECT 1`, for readiness.
pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}
