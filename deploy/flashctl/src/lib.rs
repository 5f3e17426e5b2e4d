//! `flashctl`: the operators' tool for a flash sale.
//!
//! It lives under `deploy/` beside the incident scripts that wrap it (`deploy/ops/`),
//! because its users are the people who deploy and run the sale, not the shoppers. It is
//! a library plus a thin binary (`main.rs`, and a module per command under `commands/`
//! for its arguments and output), so the services' integration tests and the load
//! generator drive sales through exactly the code operators use.
//!
//! Every command talks to the real stores: Redis for the live sale (what the admission
//! script reads), PostgreSQL for the durable record, Kafka for topics and lag.
#![forbid(unsafe_code)]

pub mod erase;
pub mod error;
pub mod guard;
pub mod insight;
pub mod order;
pub mod recover;
pub mod room;
pub mod sale;
pub mod topics;
pub mod trail;
pub mod verdict;

pub use error::OpsError;
pub use verdict::Verdict;
