//! The audit: join what clients were told with what PostgreSQL and Redis hold.
//!
//! Counting rows is not enough: the audit checks that every order id answered `202` has
//! exactly one row, that no row exists without an acceptance, that units persisted never
//! exceed stock, that no user holds more than the per-user cap, and that Redis remaining plus persisted units equals the stock (nothing
//! leaked) once the pipeline has drained. On a sale with a payment window, `sales.sold`
//! counts live orders (reserved or paid) only: every accepted unit is then live or
//! returned (cancelled, expired), remaining + live = stock (a unit returned twice shows
//! as leaked), the cap counts live orders, and every order a shopper was told is `paid`,
//! `cancelled` or `expired` is in that state in PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::burst::BurstResult;
use crate::outcome::Outcome;

use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;
use tokio_postgres::Client;

/// Waits until everything Redis took is persisted and every return is back on sale: no
/// outbox entry pending, `stock - remaining - returning == sold`, nothing returning.
/// Returns the last status seen.
pub async fn wait_drained(
    pg: &Client,
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    product: &ProductId,
    timeout: Duration,
) -> anyhow::Result<flashctl::sale::SaleStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = flashctl::sale::status(pg, redis, keys, product).await?;
        if status.pending_handoff == 0 && status.in_transit == Some(0) && status.returning == 0 {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the clients were told, as the audit needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    /// Order id → units, for every final `202`.
    pub accepted: HashMap<String, i64>,
    /// (user, idempotency key) of orders whose outcome the client never learned (a 503,
    /// 409 in flight or dropped connection to the end): they may legitimately be persisted.
    pub unresolved: HashSet<(String, String)>,
    /// Final answers with a server error other than 503 (a 500 is a bug, never an outage).
    pub server_errors: usize,
    /// Order id → the state its shopper was told on paying or cancelling.
    pub told: HashMap<String, String>,
}

impl Expectation {
    /// From the outcomes of an engine run.
    pub fn from_outcomes(outcomes: &[Outcome]) -> Self {
        let mut e = Self::default();
        for o in outcomes {
            if o.status == 202 {
                if let Some(id) = &o.order_id {
                    e.accepted.insert(id.clone(), i64::from(o.quantity));
                }
            } else if o.unresolved() {
                e.unresolved.insert((o.user.clone(), o.key.clone()));
            }
            if o.status >= 500 && o.status != 503 {
                e.server_errors += 1;
            }
            if let (Some(id), Some(state)) = (&o.order_id, &o.settled)
                && shared::ReservationState::parse(state).is_some()
            {
                e.told.insert(id.clone(), state.clone());
            }
        }
        e
    }

    /// From a burst (quantity 1 per order).
    pub fn from_burst(result: &BurstResult) -> Self {
        let mut e = Self::default();
        for s in &result.sent {
            match &s.answer {
                Ok(a) if a.status == 202 => {
                    if let Some(id) = a.order_id() {
                        e.accepted.insert(id, 1);
                    }
                }
                Ok(a) if a.status >= 500 && a.status != 503 => e.server_errors += 1,
                Ok(a) if !flashsale_client::outcome_unknown(a) => {}
                _ => {
                    e.unresolved.insert((s.user.clone(), s.key.clone()));
                }
            }
        }
        e
    }
}

/// What the audit found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Units on sale.
    pub stock: i64,
    /// `202` answers (distinct order ids).
    pub accepted_orders: usize,
    /// Units in those answers.
    pub accepted_units: i64,
    /// Rows in `orders` for the product.
    pub persisted_orders: usize,
    /// `sales.sold`.
    pub persisted_units: i64,
    /// Sum of `quantity` over the live rows, reserved or paid (must equal `sales.sold`).
    pub row_units: i64,
    /// Units of paid orders.
    pub paid_units: i64,
    /// Units of cancelled and expired orders: back on sale, not in `sales.sold`.
    pub returned_units: i64,
    /// Orders whose row is not in the state their shopper was told.
    pub contradicted: usize,
    /// Redis remaining after drain.
    pub redis_remaining: Option<i64>,
    /// Outbox entries still pending.
    pub pending_handoff: i64,
    /// Accepted order ids without a row.
    pub lost: usize,
    /// Rows of orders whose client never learned the outcome (a 503 that later resolved
    /// to accepted).
    pub resolved_late: usize,
    /// Their units.
    pub resolved_late_units: i64,
    /// Rows that no request explains (neither a 202 nor an unresolved request).
    pub unexplained_rows: usize,
    /// (user, idempotency key) pairs with more than one row.
    pub duplicated: usize,
    /// Units persisted beyond stock.
    pub oversold: i64,
    /// Users holding more units than the sale's per-user cap (0 when there is no cap).
    pub over_cap_users: usize,
    /// Final answers with a server error other than 503.
    pub server_errors: usize,
    /// `stock - remaining - persisted`: units taken that ended nowhere.
    pub leaked: Option<i64>,
}

impl Report {
    /// Every invariant holds.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// `PASS`, or `FAIL: ` and what failed.
    pub fn verdict(&self) -> String {
        let failures = self.failures();
        if failures.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL: {}", failures.join("; "))
        }
    }

    /// The failed invariants, for a FAIL message.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.lost > 0 {
            f.push(format!("{} accepted order(s) have no row", self.lost));
        }
        if self.unexplained_rows > 0 {
            f.push(format!("{} row(s) without a 202", self.unexplained_rows));
        }
        if self.duplicated > 0 {
            f.push(format!("{} duplicated order(s)", self.duplicated));
        }
        if self.oversold > 0 {
            f.push(format!("oversold by {} unit(s)", self.oversold));
        }
        if self.server_errors > 0 {
            f.push(format!(
                "{} answer(s) with a server error other than 503",
                self.server_errors
            ));
        }
        if self.over_cap_users > 0 {
            f.push(format!(
                "{} user(s) above the per-user cap",
                self.over_cap_users
            ));
        }
        if self.row_units != self.persisted_units {
            f.push(format!(
                "sales.sold = {} but rows hold {} unit(s)",
                self.persisted_units, self.row_units
            ));
        }
        if self.accepted_units != self.persisted_units + self.returned_units {
            f.push(format!(
                "{} unit(s) accepted but {} persisted and {} returned",
                self.accepted_units, self.persisted_units, self.returned_units
            ));
        }
        if self.contradicted > 0 {
            f.push(format!(
                "{} order(s) not in the state their shopper was told",
                self.contradicted
            ));
        }
        if self.leaked != Some(0) {
            f.push(format!("leaked units: {:?}", self.leaked));
        }
        if self.pending_handoff != 0 {
            f.push(format!(
                "{} outbox entries still pending",
                self.pending_handoff
            ));
        }
        f
    }
}

/// Waits (up to `timeout`) for the pipeline to drain, then [`audit`]s.
pub async fn drained_audit(
    pg: &Client,
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    product: &ProductId,
    expect: &Expectation,
    timeout: Duration,
) -> anyhow::Result<Report> {
    wait_drained(pg, redis, keys, product, timeout).await?;
    audit(pg, redis, keys, product, expect).await
}

/// Joins what clients were told with the database and Redis.
pub async fn audit(
    pg: &Client,
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    product: &ProductId,
    expect: &Expectation,
) -> anyhow::Result<Report> {
    let accepted = &expect.accepted;
    let status = flashctl::sale::status(pg, redis, keys, product).await?;
    let rows = pg
        .query(
            "SELECT order_id::text, quantity, user_id, idempotency_key, state FROM orders \
             WHERE product_id = $1",
            &[&product.as_str()],
        )
        .await?;
    let t = Tally::of(&rows, expect);
    let lost = accepted
        .keys()
        .filter(|id| !t.persisted.contains_key(*id))
        .count();
    let over_cap_users = if status.per_user > 0 {
        t.per_user
            .values()
            .filter(|u| **u > status.per_user)
            .count()
    } else {
        0
    };
    Ok(Report {
        stock: status.stock,
        accepted_orders: accepted.len(),
        accepted_units: accepted.values().sum::<i64>() + t.resolved_late_units,
        persisted_orders: rows.len(),
        resolved_late: t.resolved_late,
        resolved_late_units: t.resolved_late_units,
        persisted_units: status.persisted,
        row_units: t.row_units,
        paid_units: t.paid_units,
        returned_units: t.returned_units,
        contradicted: t.contradicted,
        redis_remaining: status.redis_remaining,
        pending_handoff: status.pending_handoff,
        lost,
        unexplained_rows: t.unexplained_rows,
        duplicated: t.per_key.values().filter(|n| **n > 1).count(),
        oversold: (status.persisted - status.stock).max(0),
        over_cap_users,
        server_errors: expect.server_errors,
        // After the drain, units taken in Redis that never reached PostgreSQL.
        leaked: status.in_transit,
    })
}

/// The product's rows, counted against what clients were told.
#[derive(Default)]
struct Tally {
    /// Units by order id.
    persisted: HashMap<String, i64>,
    /// Rows by (user, idempotency key): more than one is a duplicate.
    per_key: HashMap<(String, String), usize>,
    /// Live units by user.
    per_user: HashMap<String, i64>,
    /// Units of live rows (reserved or paid).
    row_units: i64,
    paid_units: i64,
    returned_units: i64,
    /// Rows in a state other than the one their shopper was told.
    contradicted: usize,
    /// Rows of orders whose outcome the client never learned (an unknown 503).
    resolved_late: usize,
    resolved_late_units: i64,
    /// Rows no 202 and no unknown outcome explains.
    unexplained_rows: usize,
}

impl Tally {
    fn of(rows: &[tokio_postgres::Row], expect: &Expectation) -> Self {
        let mut t = Self::default();
        for r in rows {
            let id: String = r.get(0);
            let q = i64::from(r.get::<_, i32>(1));
            let who: (String, String) = (r.get(2), r.get(3));
            let state: String = r.get(4);
            let live = state == "reserved" || state == "paid";
            if live {
                t.row_units += q;
                *t.per_user.entry(who.0.clone()).or_insert(0) += q;
            } else {
                t.returned_units += q;
            }
            if state == "paid" {
                t.paid_units += q;
            }
            if expect.told.get(&id).is_some_and(|told| *told != state) {
                t.contradicted += 1;
            }
            if !expect.accepted.contains_key(&id) {
                if expect.unresolved.contains(&who) {
                    t.resolved_late += 1;
                    t.resolved_late_units += q;
                } else {
                    t.unexplained_rows += 1;
                }
            }
            t.persisted.insert(id, q);
            *t.per_key.entry(who).or_insert(0) += 1;
        }
        t
    }
}

/// What one bot managed to buy, against what the sale's rules allow it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BotVerdict {
    /// `bot:<kind>`.
    pub bot: String,
    /// Units persisted for the bot's user ids.
    pub units: i64,
    /// The most the rules allow (`None`: unbounded, because the limits are off).
    pub allowed: Option<i64>,
    /// `units <= allowed`.
    pub passed: bool,
}

/// Counts the units persisted for one bot's user ids (`user` itself, or `user-…`).
pub async fn bot_units(pg: &Client, product: &ProductId, user: &str) -> anyhow::Result<i64> {
    let row = pg
        .query_one(
            "SELECT coalesce(sum(quantity), 0)::int8 FROM orders \
             WHERE product_id = $1 AND (user_id = $2 OR user_id LIKE $3)",
            &[&product.as_str(), &user, &format!("{user}-%")],
        )
        .await?;
    Ok(row.get(0))
}

/// Audits on a test's slice of the local stack.
pub trait AuditStack {
    /// Waits (up to a minute) for the pipeline to drain, then audits `product` against
    /// what clients were told.
    fn drained_audit(
        &self,
        product: &str,
        expect: &Expectation,
    ) -> impl Future<Output = anyhow::Result<Report>> + Send;
}
