//! The names of the headers the API reads and writes (`ingest-api/API.md`), in one
//! place for the API, this client and the tools. HTTP header names are case-insensitive;
//! these are the lowercase forms.

/// The idempotency key of a signed request (8–128 of `[A-Za-z0-9_-]`, may be quoted).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Accepted as an alias of [`IDEMPOTENCY_KEY`].
pub const IDEMPOTENCY_KEY_ALIAS: &str = "x-idempotency-key";
/// Unix time in milliseconds of a signed request.
pub const REQUEST_TIME: &str = "x-request-time";
/// Which signing key was used (may be omitted when the API has one key).
pub const KEY_ID: &str = "x-key-id";
/// `v1=` + lowercase hex HMAC-SHA256 of the canonical string.
pub const SIGNATURE: &str = "x-signature";
/// An opaque device id, 1–128 printable ASCII.
pub const DEVICE_FINGERPRINT: &str = "x-device-fingerprint";
/// The client address chain, believed only from trusted proxies.
pub const FORWARDED_FOR: &str = "x-forwarded-for";
/// `true` on an answer replayed for a repeated `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// A waiting room's ticket (`GET /queue/{p}/status`, `POST /queue/{p}/claim`).
pub const QUEUE_TICKET: &str = "x-queue-ticket";
/// The waiting room's admission an order presents.
pub const ADMISSION_TOKEN: &str = "x-admission-token";
/// Standard Webhooks: the webhook's id.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks: Unix seconds of the webhook.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64>` signatures, space separated.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The request headers a browser may send cross-origin (the API's CORS policy).
pub const SIGNED_REQUEST: [&str; 9] = [
    "content-type",
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_ALIAS,
    REQUEST_TIME,
    KEY_ID,
    SIGNATURE,
    DEVICE_FINGERPRINT,
    QUEUE_TICKET,
    ADMISSION_TOKEN,
];
