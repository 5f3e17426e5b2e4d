//! The admission: the one Redis decision per order.
//!
//! In: a validated order from the front door and who sends it, made into a [`Ticket`]
//! (the event and answer the script stores if it accepts). Out: a [`Decision`] —
//! stock taken (with the outbox entry to confirm and the payment deadline), the replay
//! of an earlier answer, or a [`Refusal`] — with what the limits said ([`RateReport`])
//! and whether the replicas hold it. [`call`] makes the call of `lua/admit.lua`,
//! [`reply`] reads its answer; the [`Breaker`] fails closed while Redis is down, and
//! [`SoldOut`] answers the sold-out stampede from memory; [`restock`] keeps a sharded
//! sale's shards stocked.

pub mod breaker;
pub mod call;
pub mod refusal;
pub mod reply;
pub mod restock;
pub mod sold_out;
pub mod ticket;

pub use breaker::Breaker;
pub use call::{Admission, AdmitCall};
pub use refusal::{Accepted, Dependency, Refusal};
pub use reply::{AdmissionError, Admitted, Decision, RateReport};
pub use sold_out::SoldOut;
pub use ticket::Ticket;
