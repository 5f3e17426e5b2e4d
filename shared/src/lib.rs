//! Framework-free pieces every flash-sale binary needs: the domain newtypes, the
//! versioned events handed from the API to the worker ([`event`], [`reservation`]),
//! request signing ([`signing`]), the Redis key layout ([`keys`]),
//! the states several processes name ([`status`], [`sale`]) and the kinds of violation
//! ([`violation`]), the stores' default addresses ([`defaults`]), typed settings,
//! telemetry and the shutdown signal.
//!
//! Nothing here knows about actix, rdkafka or PostgreSQL, so the types can be shared by
//! the API, the worker, the ops CLI and the load generator without dragging their stacks
//! along.
#![forbid(unsafe_code)]

pub mod client;
pub mod defaults;
pub mod domain;
pub mod event;
pub mod health;
pub mod keys;
pub mod limits;
pub mod reservation;
pub mod room;
pub mod sale;
pub mod secret;
pub mod settings;
pub mod shutdown;
pub mod signing;
pub mod status;
pub mod telemetry;
pub mod violation;
pub mod webhook;

pub use domain::{DomainError, Fingerprint, IdempotencyKey, ProductId, Quantity, UserId};
pub use event::{OrderEvent, OrderPlaced};
pub use reservation::{OrderTransitioned, ReservationState};
pub use secret::Secret;
pub use violation::ViolationKind;
