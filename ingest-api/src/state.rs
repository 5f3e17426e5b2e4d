//! What every request handler shares.

use redis::aio::ConnectionManager;
use shared::keys::Keyspace;

use crate::metrics::Metrics;
use crate::order::{Admission, Handoff, OrderSchema, Verifier};

/// Built once at start-up; handlers get it through `web::Data`.
#[derive(Debug)]
pub struct AppState {
    /// Compiled body schema.
    pub schema: OrderSchema,
    /// Signature keys and window.
    pub verifier: Verifier,
    /// The admission script.
    pub admission: Admission,
    /// Kafka publish and outbox confirmation.
    pub handoff: Handoff,
    /// Redis, for order lookups.
    pub redis: ConnectionManager,
    /// Key layout.
    pub keys: Keyspace,
    /// Metrics.
    pub metrics: Metrics,
}
