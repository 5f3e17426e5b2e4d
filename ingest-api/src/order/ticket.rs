//! A request on its way through admission: the validated order plus everything the
//! admission script stores if it accepts it.

use serde::{Deserialize, Serialize};
use shared::event::{SCHEMA_VERSION, now_ms};
use shared::{IdempotencyKey, OrderPlaced, ProductId, Quantity, UserId};
use uuid::Uuid;

use super::identity::Client;
use super::schema::OrderRequest;

/// The JSON body of `202 Accepted` and of `GET /order/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// The order id (also in `Location`).
    pub order_id: Uuid,
    /// `accepted` (in Kafka) or `persisted` (in PostgreSQL).
    pub status: String,
    /// What was bought.
    pub product_id: ProductId,
    /// Who bought it.
    pub user_id: UserId,
    /// How many units.
    pub quantity: Quantity,
}

/// One admission attempt.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The validated body.
    pub order: OrderRequest,
    /// The client's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// The id the order gets if accepted (time-ordered UUIDv7).
    pub order_id: Uuid,
    /// When the API handled it.
    pub accepted_at_ms: u64,
    /// Who is asking.
    pub client: Client,
    /// Keyed hash of the client network.
    pub ip_hash: Option<String>,
    /// Keyed hash of the device fingerprint, if sent.
    pub device_hash: Option<String>,
}

impl Ticket {
    /// A fresh ticket for a validated order from `client`; `pseudonyms` are the keyed
    /// hashes of its network and device.
    pub fn new(
        order: OrderRequest,
        idempotency_key: IdempotencyKey,
        client: Client,
        pseudonyms: (String, Option<String>),
    ) -> Self {
        Self {
            order,
            idempotency_key,
            order_id: Uuid::now_v7(),
            accepted_at_ms: now_ms(),
            client,
            ip_hash: Some(pseudonyms.0),
            device_hash: pseudonyms.1,
        }
    }

    /// What a replay must match: the normalized order, so a retry that serializes the
    /// same order differently (key order, an explicit `"quantity":1`) still replays.
    pub fn request_fingerprint(&self) -> String {
        format!(
            "v1:{}:{}:{}",
            self.order.product_id, self.order.user_id, self.order.quantity
        )
    }

    /// The view of this order with a given status.
    pub fn view(&self, status: &str) -> OrderView {
        OrderView {
            order_id: self.order_id,
            status: status.to_owned(),
            product_id: self.order.product_id.clone(),
            user_id: self.order.user_id.clone(),
            quantity: self.order.quantity,
        }
    }

    /// The exact body of the `202`, stored by the admission script for replays.
    pub fn accepted_body(&self) -> String {
        serde_json::to_string(&self.view("accepted")).unwrap_or_default()
    }

    /// The event handed to Kafka.
    pub fn event(&self) -> OrderPlaced {
        OrderPlaced {
            schema_version: SCHEMA_VERSION,
            order_id: self.order_id,
            product_id: self.order.product_id.clone(),
            user_id: self.order.user_id.clone(),
            quantity: self.order.quantity,
            idempotency_key: self.idempotency_key.clone(),
            accepted_at_ms: self.accepted_at_ms,
            ip_hash: self.ip_hash.clone(),
            device_hash: self.device_hash.clone(),
        }
    }
}
