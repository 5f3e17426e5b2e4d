//! The hand-off from Redis to Kafka.
//!
//! In: an outbox entry the admission script (or `lua/transition.lua`) wrote in the same
//! atomic step that took the stock (or ended a reservation). Out: the event acknowledged
//! by Kafka (idempotent producer, `acks=all`) and the entry confirmed
//! (`lua/handoff_done.lua`, batched by [`confirm`]), or the entry left pending for the
//! [`relay`], which every instance runs and which republishes entries stranded by a
//! crash or a Kafka failure. A duplicate publish is harmless: the worker's write is keyed
//! by the order id.

pub mod confirm;
pub mod publish;
pub mod relay;

pub use confirm::{Confirmation, Confirmer};
pub use publish::{Handoff, PublishError};
