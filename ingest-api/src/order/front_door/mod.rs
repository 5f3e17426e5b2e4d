//! The front door: what a request is, before anything is decided.
//!
//! In: a request's raw parts (the peer address and `X-Forwarded-For`, the device
//! header, the signed headers and the body bytes). Out: a [`Client`] (network and
//! device, as limits and blocks see them), a verified signature ([`Verifier`]), a
//! validated [`OrderRequest`] (or the [`FieldError`]s that refuse it); and, around them,
//! this instance's fallback limiter ([`LocalLimiter`], with the [`RateInfo`] every answer
//! reports) and the [`Violations`] record of refusals that say something about the
//! client.

pub mod identity;
pub mod rate;
pub mod schema;
pub mod signature;
pub mod violations;

pub use identity::{Client, TrustedProxies};
pub use rate::{LocalDecision, LocalLimiter, RateInfo};
pub use schema::{FieldError, OrderRequest, OrderSchema};
pub use signature::{SignatureError, SignedRequest, Verifier};
pub use violations::Violations;
