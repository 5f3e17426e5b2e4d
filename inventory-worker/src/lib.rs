//! `inventory-worker`: consumes accepted orders and ended reservations from Kafka and
//! writes them to PostgreSQL effectively once.
//!
//! See [`consumer`] for the batch loop and its error split, [`db`] for the idempotent
//! writes, [`dead_letter`] for poison.
#![forbid(unsafe_code)]

pub mod admin;
pub mod consumer;
pub mod db;
pub mod dead_letter;
pub mod group;
pub mod lag;
pub mod metrics;
pub mod settings;
pub mod startup;
pub mod transitions;

pub use settings::Settings;
pub use startup::Application;
