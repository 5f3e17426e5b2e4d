//! The stores as every process sets them up and reaches them, in one place: PostgreSQL
//! migrations and connections ([`postgres`]), Kafka topics and the idempotent producer
//! ([`kafka`]), Redis connections ([`redis`]), and ending a reservation
//! ([`reservations`], a script every process that moves orders runs).
//!
//! The worker migrates at start-up, `flashctl migrate` and `flashctl topics create` do it
//! for operators, and the test kit for every test's database and topics — none of them
//! needs to link the others for it.
#![forbid(unsafe_code)]

pub mod kafka;
pub mod postgres;
pub mod redis;
pub mod reservations;

pub use kafka::{
    TopicError, TopicOutcome, create_topics, delete_topics, idempotent_producer, list_topics,
};
pub use postgres::migrate;
