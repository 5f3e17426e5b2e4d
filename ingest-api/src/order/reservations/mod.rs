//! Ending reservations: a `202` is a reservation, and it ends exactly once.
//!
//! In: a cancel from its shopper, a payment from the payment service ([`end`]), or a
//! payment deadline that passed ([`expiry`], the sweeper). Out: the state the order is
//! in, decided by `lua/transition.lua` and held by the required Redis replicas before
//! anyone is told, and its event on its way to Kafka through the hand-off.

pub mod end;
pub mod expiry;

pub use end::{EndRefusal, Reservations};
pub use expiry::Sweeper;
