//! The waiting room under load: a scenario (`loadtest/scenarios/waiting-room.toml`) of
//! tens of thousands of waiters who join before and after the opening, poll as
//! `refreshAfterMs` says, leave the line or do not show up when their turn comes, claim
//! and order; bots that forge, share, reuse and carry over tokens; a sampler of the room
//! and of Redis's own command counts; then the checks of the room's promises and a report
//! with charts ([`checks`], [`report`]).

pub mod bots;
pub mod checks;
pub mod failover;
pub mod report;
pub mod sampler;
pub mod scenario;
pub mod waiter;

pub use scenario::RoomScenario;
