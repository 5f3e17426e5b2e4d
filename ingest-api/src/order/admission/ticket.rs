//! A request on its way through admission: the validated order plus everything the
//! admission script stores if it accepts it.

use shared::event::{SCHEMA_VERSION, now_ms};
use shared::status::{OrderState, OrderStatus};
use shared::{IdempotencyKey, OrderPlaced};
use uuid::Uuid;

use crate::order::front_door::{Client, OrderRequest};

/// One admission attempt: the order as it would be handed off, and the two JSON texts
/// the admission script stores if it accepts it, each serialized once.
#[derive(Debug, Clone)]
pub struct Ticket<'a> {
    /// The event handed to Kafka if accepted (a fresh time-ordered UUIDv7 as order id).
    pub event: OrderPlaced,
    /// `event` as JSON: the outbox entry and the Kafka payload.
    pub event_json: String,
    /// The order as the `202` shows it, before the admission script sets its payment
    /// deadline.
    pub accepted: OrderStatus,
    /// `accepted` as JSON, stored by the admission script for replays.
    pub accepted_body: String,
    /// Who is asking.
    pub client: &'a Client,
    /// The waiting room's admission the order presents (its token's id, verified), if
    /// any.
    pub admission: Option<String>,
}

impl<'a> Ticket<'a> {
    /// A fresh ticket for a validated order from `client`; `pseudonyms` are the keyed
    /// hashes of its network and device.
    pub fn new(
        order: OrderRequest,
        idempotency_key: IdempotencyKey,
        client: &'a Client,
        pseudonyms: (String, Option<String>),
        admission: Option<String>,
    ) -> Self {
        let event = OrderPlaced {
            schema_version: SCHEMA_VERSION,
            order_id: Uuid::now_v7(),
            product_id: order.product_id,
            user_id: order.user_id,
            quantity: order.quantity,
            idempotency_key,
            accepted_at_ms: now_ms(),
            ip_hash: Some(pseudonyms.0),
            device_hash: pseudonyms.1,
        };
        // The body of the `202`: the order's status record as `GET /order/{id}` shows it.
        let accepted = OrderStatus {
            order_id: event.order_id,
            status: OrderState::Accepted,
            product_id: event.product_id.clone(),
            user_id: event.user_id.clone(),
            quantity: event.quantity,
            state: Some(shared::ReservationState::Reserved),
            // Decided by the admission script (Redis time): see `answer`.
            payment_deadline: None,
        };
        Self {
            event_json: event.to_json(),
            accepted_body: accepted.to_json(),
            accepted,
            event,
            client,
            admission,
        }
    }

    /// The `202` body of this order, accepted with `deadline_ms` (0: no payment window).
    pub fn answer(&self, deadline_ms: u64) -> String {
        self.accepted.clone().with_deadline(deadline_ms).to_json()
    }

    /// The replay of an earlier `202` whose stored body is `stored` and deadline
    /// `deadline_ms`: built the way the first answer was ([`Ticket::answer`]), so the bytes
    /// are the same. A stored body this build cannot read is replayed as stored.
    pub fn replay(stored: String, deadline_ms: u64) -> String {
        match serde_json::from_str::<OrderStatus>(&stored) {
            Ok(order) => order.with_deadline(deadline_ms).to_json(),
            Err(_) => stored,
        }
    }

    /// What a replay must match: the normalized order, so a retry that serializes the
    /// same order differently (key order, an explicit `"quantity":1`) still replays.
    pub fn request_fingerprint(&self) -> String {
        let e = &self.event;
        format!("v1:{}:{}:{}", e.product_id, e.user_id, e.quantity)
    }
}
