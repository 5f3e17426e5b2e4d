//! The load-test harness as a library: a signing HTTP client for `POST /order`
//! ([`client`]), isolated resources on the local stack for tests and benchmarks
//! ([`stack`]), and the audit that joins answers with PostgreSQL ([`audit`]).
//!
//! The `loadtest` binary drives crowds with it; the integration tests of every crate use
//! the same client and stack helpers, so tests and load runs exercise one code path.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bench;
pub mod burst;
pub mod charts;
pub mod client;
pub mod engine;
pub mod measure;
pub mod report;
pub mod scenario;
pub mod stack;
pub mod wire;
