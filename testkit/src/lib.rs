//! The test kit of the services' integration tests: each test's own slice of the real
//! local stack ([`TestStack`]: a Redis namespace, Kafka topics, a migrated database), the
//! services on it in the test's process ([`api`], [`worker`]: settings for the slice, a
//! running service to stop), sales opened through the code operators use ([`sales`]),
//! the audit of a test's sale ([`audit`]), the signing client and the harness's client
//! helpers ([`client`]), a private Redis server to kill ([`PrivateRedis`]) and a TCP
//! proxy to cut ([`FaultProxy`]).
//!
//! The arrows point from here to the services: the services' own crates know nothing of
//! it, and their tests use it as a dev-dependency.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod client;
pub mod private_redis;
pub mod proxy;
pub mod resources;
pub mod running;
pub mod sales;
pub mod stack;
pub mod worker;

pub use private_redis::PrivateRedis;
pub use proxy::{FaultProxy, host_port, via_port};
pub use resources::{StackEnv, TestDatabase, TestTopics, unique};
pub use running::Running;
pub use stack::{TEST_KEY_ID, TEST_SECRET, TestStack};
