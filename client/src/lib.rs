//! A client for the flash-sale ingest API (`ingest-api/API.md`): what a shop's backend
//! in Rust uses to place orders for its shoppers.
//!
//! - [`signing`]: the HMAC-SHA256 signature every `POST` carries, over the exact bytes
//!   sent (the API verifies with the same functions).
//! - [`Client`] (feature `http`, on by default): signed requests, and
//!   [`Client::place_order`], which asks again **with the same `Idempotency-Key`** after a
//!   `503`, a `409 IDEMPOTENCY_IN_FLIGHT`, a `408`, a dropped connection or a timeout,
//!   honouring `Retry-After` ([`RetryPolicy`]); a repeated key is answered with the first
//!   answer, so retrying never buys twice.
//! - [`Problem`]: every refusal (`application/problem+json`) read into a type with its
//!   stable [`ProblemCode`].
//! - The waiting room: [`Client::join`], [`Client::queue_status`], [`Client::claim`] and
//!   [`Client::place_admitted`].
//! - [`headers`]: the header names of the contract.
//!
//! ```no_run
//! # async fn example() -> Result<(), flashsale_client::Error> {
//! use flashsale_client::{Client, Error, Order, ProblemCode, RetryPolicy, new_key};
//!
//! let client = Client::new("https://orders.example.com", Some("shop-1"), b"the shop's secret");
//! let order = Order { product_id: "iphone-15", user_id: "u-1001", quantity: 1 };
//! // One key per order, kept across its retries (store it with the shopper's cart).
//! let key = new_key();
//! match client.place_order(&order, &key, &RetryPolicy::default()).await {
//!     Ok(placed) => println!("reserved {}", placed.order.order_id),
//!     Err(Error::Refused(p)) if p.code == ProblemCode::SoldOut => println!("sold out"),
//!     Err(Error::Refused(p)) if p.outcome_pending() => println!("unknown yet: retry {key} later"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod codes;
pub mod headers;
pub mod signing;

pub use codes::ProblemCode;

#[cfg(feature = "http")]
mod answer;
#[cfg(feature = "http")]
mod client;
#[cfg(feature = "http")]
mod order;
#[cfg(feature = "http")]
mod problem;
#[cfg(feature = "http")]
mod queue;
#[cfg(feature = "http")]
mod retry;

#[cfg(feature = "http")]
pub use answer::{Answer, send};
#[cfg(feature = "http")]
pub use client::{Client, Signed, new_key, now_ms};
#[cfg(feature = "http")]
pub use order::{Error, Order, OrderView, Placed};
#[cfg(feature = "http")]
pub use problem::{FieldError, Problem};
#[cfg(feature = "http")]
pub use retry::{RetryPolicy, outcome_unknown};
