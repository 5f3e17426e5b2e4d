//! The business side of an order, free of HTTP types: who is asking ([`identity`]), what
//! the body means ([`schema`]), whether it is authentic ([`signature`]), the one Redis
//! decision ([`admission`]), the hand-off to Kafka ([`handoff`], confirmed in batches by [`confirm`]), and the protections
//! around them ([`rate`], [`breaker`], [`sold_out`], [`violations`]).

pub mod admission;
pub mod breaker;
pub mod confirm;
pub mod handoff;
pub mod identity;
pub mod rate;
pub mod schema;
pub mod signature;
pub mod sold_out;
pub mod ticket;
pub mod violations;

pub use admission::{Admission, AdmissionError, Admitted, Decision, RateReport};
pub use handoff::{Handoff, PublishError};
pub use identity::{Client, TrustedProxies};
pub use rate::{LocalLimiter, RateInfo};
pub use schema::{OrderRequest, OrderSchema};
pub use signature::{SignatureError, SignedRequest, Verifier};
pub use ticket::{OrderView, Ticket};
