//! A product's sale: its state, stock and counters, cap, window and limits (a hash,
//! `SaleKeys::sale`). Created by `lua/sale_open.lua`, changed by `sale_set.lua`; the
//! admission takes from `remaining`, a return moves units to `returning`
//! (`transition.lua`) and back to `remaining` (`release.lua`).

use shared::keys::{SaleKeys, Scope};
use shared::sale::SaleState;

use super::{Fields, number, read_hash};
use redis::aio::ConnectionLike;

/// The hash's fields (rate limits: [`Scope::interval_field`], [`Scope::burst_field`]).
pub mod field {
    /// `open`, `halted` or `closed` ([`shared::sale::SaleState`]).
    pub const STATE: &str = "state";
    /// Units the sale started with.
    pub const STOCK: &str = "stock";
    /// Units not yet taken; the admission script decrements it.
    pub const REMAINING: &str = "remaining";
    /// Units of cancelled or expired orders not yet back in `remaining` (the worker
    /// releases them once PostgreSQL has the return).
    pub const RETURNING: &str = "returning";
    /// Units put back on sale so far (by `lua/release.lua`).
    pub const RELEASED: &str = "released";
    /// Most units one user may buy (0 = no cap).
    pub const PER_USER: &str = "per_user";
    /// Sale window start, ms since the epoch (0 = open now).
    pub const STARTS_AT: &str = "starts_at";
    /// Sale window end, ms since the epoch (0 = no end).
    pub const ENDS_AT: &str = "ends_at";
    /// How long an accepted order stays reserved unpaid, ms (absent or 0 = no expiry).
    pub const PAYMENT_WINDOW_MS: &str = "payment_window_ms";
}

/// One scope's limit as stored: GCRA emission interval (µs) and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLimit {
    /// Microseconds between two requests at the sustained rate.
    pub interval_us: u64,
    /// Requests allowed at once.
    pub burst: u64,
}

/// A sale as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    /// Its state (an unknown stored state reads as closed: never as open).
    pub state: SaleState,
    /// Units it started with.
    pub stock: i64,
    /// Units not yet taken.
    pub remaining: i64,
    /// Units on their way back on sale.
    pub returning: i64,
    /// Units put back on sale so far.
    pub released: i64,
    /// Per-user cap (0 = none).
    pub per_user: i64,
    /// Window start, ms (0 = now).
    pub starts_at_ms: u64,
    /// Window end, ms (0 = none).
    pub ends_at_ms: u64,
    /// Payment window, ms (0 = none).
    pub payment_window_ms: u64,
    /// Limits by scope, in [`Scope::ALL`] order (`None`: no limit in that scope).
    pub limits: [Option<StoredLimit>; 4],
}

impl SaleRecord {
    /// The record from its hash's fields; `None` when there is no sale (or it lacks its
    /// state or remaining stock, which admission treats as no sale).
    pub fn from_fields(fields: &Fields) -> Option<Self> {
        let state = fields.get(field::STATE)?;
        let remaining = number(fields, field::REMAINING)?;
        let n = |name: &str| number::<i64>(fields, name).unwrap_or(0);
        let ms = |name: &str| number::<u64>(fields, name).unwrap_or(0);
        let limits = Scope::ALL.map(|scope| {
            let interval_us = number::<u64>(fields, &scope.interval_field()).unwrap_or(0);
            let burst = number::<u64>(fields, &scope.burst_field()).unwrap_or(0);
            (interval_us > 0 && burst > 0).then_some(StoredLimit { interval_us, burst })
        });
        Some(Self {
            state: SaleState::parse(state).unwrap_or(SaleState::Closed),
            stock: n(field::STOCK),
            remaining,
            returning: n(field::RETURNING),
            released: n(field::RELEASED),
            per_user: n(field::PER_USER),
            starts_at_ms: ms(field::STARTS_AT),
            ends_at_ms: ms(field::ENDS_AT),
            payment_window_ms: ms(field::PAYMENT_WINDOW_MS),
            limits,
        })
    }

    /// Reads the sale of `keys`' product.
    pub async fn read(
        conn: &mut impl ConnectionLike,
        keys: &SaleKeys,
    ) -> redis::RedisResult<Option<Self>> {
        Ok(Self::from_fields(&read_hash(conn, &keys.sale()).await?))
    }

    /// The limit of `scope`, if one is set.
    pub fn limit(&self, scope: Scope) -> Option<StoredLimit> {
        let i = Scope::ALL.iter().position(|s| *s == scope)?;
        self.limits[i]
    }
}
