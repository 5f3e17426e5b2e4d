//! `ingest-api`: the front door of the flash sale.
//!
//! `POST /order` checks size and media type, verifies the HMAC signature and freshness,
//! validates the body against the JSON Schema, then asks Redis once (`lua/admit.lua`)
//! whether the order is admitted. An admitted order is published to Kafka and confirmed
//! before the client gets `202`. See [`routes::order`] for the pipeline and
//! [`order::handoff`] for what happens when the process dies halfway.
#![forbid(unsafe_code)]

pub mod metrics;
pub mod order;
pub mod problem;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use settings::Settings;
pub use startup::Application;
