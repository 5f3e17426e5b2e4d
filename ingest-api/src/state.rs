//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use shared::keys::Keyspace;
use stores::redis::Conn;

use crate::metrics::Metrics;
use crate::order::violations::Violations;
use crate::order::{
    LocalLimiter, OrderSchema, Placer, Reservations, Sweeper, TrustedProxies, Verifier,
};

/// Built once at start-up; handlers get it through `web::Data`.
#[derive(Debug)]
pub struct AppState {
    /// Compiled body schema.
    pub schema: OrderSchema,
    /// Signature keys and window.
    pub verifier: Verifier,
    /// Admission and hand-off over the main Redis connection (the relay, the sold-out
    /// watcher and readiness use it; each HTTP worker places orders through its own
    /// [`Placer::with_connection`]).
    pub placer: Placer,
    /// Per-network limiter of `POST /order` when Redis limits are not consulted.
    pub order_limiter: LocalLimiter,
    /// Per-network limiter of `GET /order/{id}`.
    pub lookup_limiter: LocalLimiter,
    /// Whether rate limits apply at all.
    pub limits_enabled: bool,
    /// Violation log, metrics and counters.
    pub violations: Arc<Violations>,
    /// Who may set `X-Forwarded-For`.
    pub trusted_proxies: TrustedProxies,
    /// Longest wait for a request body.
    pub request_timeout: Duration,
    /// Redis, for order lookups.
    pub redis: Conn,
    /// Key layout.
    pub keys: Keyspace,
    /// The expiry sweeper (run beside the relay).
    pub sweeper: Sweeper,
    /// Cancels and payments.
    pub reservations: Reservations,
    /// Secrets of `POST /webhooks/payment`.
    pub webhook_secrets: shared::webhook::WebhookSecrets,
    /// Metrics.
    pub metrics: Metrics,
}
