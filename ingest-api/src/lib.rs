//! `ingest-api`: the front door of the flash sale.
//!
//! `POST /order` checks size and media type, verifies the HMAC signature and freshness,
//! validates the body against the JSON Schema, then asks Redis once (`lua/admit.lua`)
//! whether the order is admitted. An admitted order is published to Kafka and confirmed
//! before the client gets `202`. See [`routes::order`] for the pipeline and
//! [`order::handoff`] for what happens when the process dies halfway.
//!
//! The modules are layers; each imports only the layers below it
//! (`ingest-api/tests/layers.rs` checks it):
//!
//! ```text
//! app          building and running: parts, servers, background tasks
//! settings     what the process reads at start-up
//! routes       HTTP: handlers, the handlers' state, reading a request, the answer
//! problem      every refusal as problem+json
//! order        the business side, stage by stage (no HTTP types):
//!   place, lookup      placing one order; reading its status back
//!   reservations       ending reservations
//!   handoff            to Kafka, and the relay
//!   room               the waiting room: joins, polls, claims, the drain
//!   admission          the one Redis decision
//!   front_door         who asks, authentic, well-formed; limits and violations
//! metrics      what every layer counts
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod metrics;
pub mod order;
pub mod problem;
pub mod routes;
pub mod settings;

pub use app::Application;
pub use settings::Settings;
