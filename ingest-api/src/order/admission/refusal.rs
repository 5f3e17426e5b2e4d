//! How placing an order ends, free of HTTP types: [`Accepted`] or a [`Refusal`].
//!
//! The admission script's reply codes become refusals in
//! [`super::reply::parse_reply`]; [`crate::problem`] turns each refusal into its
//! answer. A new refusal code therefore touches `lua/admit.lua`, that parser, this enum,
//! the problem module (its conversion, its answer's shape and detail) and
//! `ingest-api/API.md`, and the test in `ingest-api/tests/codes.rs` fails until all of
//! them agree.

use shared::keys::Scope;
use shared::sale::NotOpen;
use uuid::Uuid;

/// An order that stands: new, or the replay of an earlier answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stock taken and Kafka acknowledged the order.
    New {
        /// The new order.
        order_id: Uuid,
        /// The `202` body (what the script stored for replays).
        body: String,
    },
    /// The same key and request as an earlier, handed-off acceptance: its answer.
    Replayed {
        /// The stored status.
        status: u16,
        /// The order it answered.
        order_id: Uuid,
        /// The stored body, byte for byte.
        body: String,
    },
}

/// A store the order could not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The admission (or the circuit breaker in front of it).
    Redis,
    /// The hand-off of an accepted order.
    Kafka,
}

impl Dependency {
    /// Its name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Kafka => "kafka",
        }
    }
}

/// Why an order was not accepted (or its outcome is not known yet).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Same key and request; the first is still being handed off.
    #[error("idempotency key in flight")]
    InFlight,
    /// Same key, different request.
    #[error("idempotency key reused with a different request")]
    KeyReused,
    /// No sale for this product.
    #[error("sale not found")]
    SaleNotFound,
    /// The sale exists but does not admit orders now.
    #[error("sale not open ({})", state.as_str())]
    SaleNotOpen {
        /// Why.
        state: NotOpen,
    },
    /// A blocklist matched.
    #[error("blocked ({})", scope.as_str())]
    Blocked {
        /// Which one.
        scope: Scope,
    },
    /// A rate limit refused; no limit was consumed.
    #[error("rate limited ({})", scope.as_str())]
    RateLimited {
        /// The refusing limit.
        scope: Scope,
        /// When every refusing limit will pass again.
        retry_after_ms: u64,
    },
    /// The user's cap would be exceeded.
    #[error("purchase limit reached ({bought} of {cap})")]
    PurchaseLimitReached {
        /// Units already bought.
        bought: u64,
        /// The cap.
        cap: u64,
    },
    /// Not enough stock for this quantity.
    #[error("sold out ({remaining} left)")]
    SoldOut {
        /// Units left (0 = fully sold out).
        remaining: i64,
    },
    /// The product has a waiting room and this user holds no valid admission from it.
    #[error("not admitted ({why})")]
    NotAdmitted {
        /// `missing`, `used`, `expired` or `closed` (`lua/admit.lua`).
        why: String,
    },
    /// A store failed. Either nothing was taken, or the outcome is unknown and a retry
    /// with the same key tells it.
    #[error("{} unavailable", dependency.as_str())]
    Unavailable {
        /// Which store.
        dependency: Dependency,
        /// Whether the order may stand.
        outcome_unknown: bool,
    },
    /// A bug (an earlier answer that cannot be replayed).
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl Refusal {
    /// Whether the admission script already counted this refusal as a violation in
    /// Redis (so the API must not count it again).
    pub fn counted_by_script(&self) -> bool {
        match self {
            Self::KeyReused | Self::Blocked { .. } | Self::RateLimited { .. } => true,
            Self::InFlight
            | Self::SaleNotFound
            | Self::SaleNotOpen { .. }
            | Self::PurchaseLimitReached { .. }
            | Self::SoldOut { .. }
            | Self::NotAdmitted { .. }
            | Self::Unavailable { .. }
            | Self::Internal(_) => false,
        }
    }
}
