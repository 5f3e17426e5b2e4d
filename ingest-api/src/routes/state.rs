//! What the request handlers share, built once at start-up ([`crate::app`]); handlers
//! get it through `web::Data`. Each part has one job; the background tasks (relay,
//! sweeper, refreshers) are not here but in [`crate::app`].

use std::sync::Arc;
use std::time::Duration;

use shared::auth::webhook::WebhookSecrets;
use shared::keys::Keyspace;
use stores::redis::Conn;

use crate::metrics::Metrics;
use crate::order::front_door::{LocalLimiter, OrderSchema, TrustedProxies, Verifier, Violations};
use crate::order::place::Placer;
use crate::order::reservations::Reservations;
use crate::order::room::{RoomCache, RoomCalls};
use shared::room::TokenKeys;

/// Everything a handler may need.
#[derive(Debug)]
pub struct AppState {
    /// Reading and checking requests.
    pub front_door: FrontDoor,
    /// This instance's limits and the violation record.
    pub limits: Limits,
    /// Admission and hand-off over the main Redis connection (the relay, the sold-out
    /// refresher and readiness use it; each HTTP worker places orders through its own
    /// [`Placer::with_connection`]).
    pub placer: Placer,
    /// The read side: order status records.
    pub lookup: Lookup,
    /// Cancels and payments.
    pub reservations: Reservations,
    /// The waiting rooms.
    pub room: RoomPart,
    /// Metrics.
    pub metrics: Metrics,
}

/// The waiting rooms: their scripts, this instance's cache of them, and the keys their
/// tokens are signed with.
#[derive(Debug)]
pub struct RoomPart {
    /// Join and claim.
    pub calls: RoomCalls,
    /// What polls are answered from.
    pub cache: Arc<RoomCache>,
    /// `ROOM_TOKEN_KEYS`.
    pub tokens: TokenKeys,
}

/// Reading and checking requests: who may send what.
#[derive(Debug)]
pub struct FrontDoor {
    /// The compiled body schema of `POST /order`.
    pub schema: OrderSchema,
    /// Signing keys and window of signed requests.
    pub verifier: Verifier,
    /// Secrets of `POST /webhooks/payment`.
    pub webhook_secrets: WebhookSecrets,
    /// Who may set `X-Forwarded-For`.
    pub proxies: TrustedProxies,
    /// Longest wait for a request body.
    pub request_timeout: Duration,
}

/// This instance's limits, and the record of refusals that say something about the
/// client.
#[derive(Debug)]
pub struct Limits {
    /// Whether rate limits apply at all (`RATE_LIMIT_ENABLED`).
    pub enabled: bool,
    /// Per-network limiter of `POST /order` when the Redis limits were not evaluated.
    pub orders: LocalLimiter,
    /// Per-network limiter of `GET /order/{id}` and `POST /order/{id}/cancel`.
    pub lookups: LocalLimiter,
    /// Violation log, metrics and counters.
    pub violations: Arc<Violations>,
}

/// The read side.
#[derive(Debug)]
pub struct Lookup {
    /// Redis, for order status records.
    pub redis: Conn,
    /// Key layout.
    pub keys: Keyspace,
}
