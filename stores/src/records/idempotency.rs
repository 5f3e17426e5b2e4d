//! The stored answer of an accepted order, per (product, user, idempotency key) (a hash,
//! `SaleKeys::idempotency`): written by `lua/admit.lua` as `pending` when it takes the
//! stock, marked `done` by `lua/handoff_done.lua` once Kafka has the order, and read by
//! `admit.lua` to answer a repeat of the same request with the same answer.

use super::{Fields, number};

/// The hash's fields.
pub mod field {
    /// The normalized order the key was first used for.
    pub const FINGERPRINT: &str = "fp";
    /// `pending` until Kafka acknowledged the order, then `done`.
    pub const STATE: &str = "state";
    /// The answer's HTTP status.
    pub const STATUS: &str = "status";
    /// The answer's body without its payment deadline.
    pub const BODY: &str = "body";
    /// The order it accepted.
    pub const ORDER_ID: &str = "order_id";
    /// Its outbox entry (only this entry's confirmation marks the record `done`).
    pub const ENTRY: &str = "entry";
    /// Its payment deadline, Unix ms (0: none).
    pub const DEADLINE: &str = "deadline";
}

/// A stored answer as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyAnswer {
    /// The normalized order (`v1:product:user:quantity`).
    pub request_fingerprint: String,
    /// Whether the order is handed off (a repeat replays) or not yet (a repeat waits).
    pub done: bool,
    /// The answer's status.
    pub status: u16,
    /// The answer's body without its payment deadline.
    pub body: String,
    /// The order.
    pub order_id: String,
    /// Its outbox entry.
    pub entry: String,
    /// Its payment deadline (0: none).
    pub deadline_ms: u64,
}

impl IdempotencyAnswer {
    /// The record from its hash's fields; `None` when there is none.
    pub fn from_fields(fields: &Fields) -> Option<Self> {
        Some(Self {
            request_fingerprint: fields.get(field::FINGERPRINT)?.clone(),
            done: fields.get(field::STATE).map(String::as_str) == Some("done"),
            status: number(fields, field::STATUS)?,
            body: fields.get(field::BODY)?.clone(),
            order_id: fields.get(field::ORDER_ID)?.clone(),
            entry: fields.get(field::ENTRY)?.clone(),
            deadline_ms: number(fields, field::DEADLINE).unwrap_or(0),
        })
    }
}
