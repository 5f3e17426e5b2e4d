//! The stores as every process sets them up and reaches them, in one place: PostgreSQL
//! migrations and connections ([`postgres`]), Kafka topics and the idempotent producer
//! ([`kafka`]), Redis connections ([`redis`]), every record kept in Redis
//! ([`records`]), calling a Lua script ([`script`]) and reading its reply ([`reply`]),
//! holding a write until enough replicas have it ([`replicas`]), a lease on a periodic
//! job ([`lease`]), ending a reservation ([`reservations`], a script every process that
//! moves orders runs), and where a sharded sale's shards live and how units reach them
//! ([`shards`]).
//!
//! The worker migrates at start-up, `flashctl migrate` and `flashctl topics create` do it
//! for operators, and the test kit for every test's database and topics — none of them
//! needs to link the others for it.
#![forbid(unsafe_code)]

pub mod kafka;
pub mod lease;
pub mod postgres;
pub mod records;
pub mod redis;
pub mod replicas;
pub mod reply;
pub mod reservations;
pub mod script;
pub mod shards;

pub use kafka::{
    TopicError, TopicOutcome, client_config, create_topics, delete_topics, idempotent_producer,
    list_topics,
};
pub use postgres::migrate;
pub use replicas::{NotReplicated, Replicas};
pub use script::Script;
