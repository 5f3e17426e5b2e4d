//! The test kit of the services' integration tests: each test's own slice of the real
//! local stack ([`TestStack`]: a Redis namespace, Kafka topics, a migrated database), a
//! way to run a service in the test's process ([`Running`]), the signing client shoppers
//! use ([`client::OrderClient`]), a private Redis server to kill ([`PrivateRedis`]) and a
//! TCP proxy to cut ([`FaultProxy`]).
//!
//! It depends on no service crate, so every service's tests can use it; each service
//! builds its settings from a [`TestStack`] itself (`ingest_api::testkit`,
//! `inventory_worker::testkit`, `flashctl::testkit`).
#![forbid(unsafe_code)]

pub mod client;
pub mod private_redis;
pub mod proxy;
pub mod resources;
pub mod running;
pub mod stack;

pub use private_redis::PrivateRedis;
pub use proxy::{FaultProxy, host_port, via_port};
pub use resources::{StackEnv, TestDatabase, TestTopics, unique};
pub use running::Running;
pub use stack::{TEST_KEY_ID, TEST_SECRET, TestStack};
