//! What every long-running binary runs on: its readiness answer ([`health`]), the
//! shutdown signal and the loop of its background tasks ([`shutdown`]), and its logs
//! ([`telemetry`]).

pub mod health;
pub mod shutdown;
pub mod telemetry;
