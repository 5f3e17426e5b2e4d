//! Framework-free pieces every flash-sale binary needs: the domain newtypes, the
//! versioned events handed from the API to the worker ([`event`], [`reservation`]),
//! request and webhook signing ([`auth`]), the Redis key layout ([`keys`]),
//! the states several processes name ([`status`], [`sale`]) and the kinds of violation
//! ([`violation`]), the stores' default addresses ([`defaults`]), typed settings,
//! and what every service runs on: readiness, the shutdown signal, telemetry ([`service`]).
//!
//! Nothing here knows about actix, rdkafka or PostgreSQL, so the types can be shared by
//! the API, the worker, the ops CLI and the load generator without dragging their stacks
//! along.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod defaults;
pub mod domain;
pub mod event;
pub mod keys;
pub mod limits;
pub mod reservation;
pub mod room;
pub mod sale;
pub mod service;
pub mod settings;
pub mod status;
pub mod violation;

pub use auth::secret::Secret;
pub use domain::{DomainError, Fingerprint, IdempotencyKey, ProductId, Quantity, UserId};
pub use event::{OrderEvent, OrderPlaced};
pub use reservation::{OrderTransitioned, ReservationState};
pub use violation::ViolationKind;
