//! The business side of an order, free of HTTP types: who is asking ([`identity`]), what
//! the body means ([`schema`]), whether it is authentic ([`signature`]); then placing it
//! ([`place`]): the one Redis decision ([`admission`], its reply read by
//! [`admit_reply`]) and the hand-off to Kafka
//! ([`handoff`], confirmed in batches by [`confirm`]), each acceptance first held by
//! enough Redis replicas ([`replicas`]), ending in an acceptance or a
//! [`refusal`]; the protections around them ([`rate`], [`breaker`], [`sold_out`],
//! [`violations`]); ending reservations: cancelled or paid on request
//! ([`reservations`]), expired unpaid ([`expiry`]); and reading an order's status back
//! ([`lookup`]).

pub mod admission;
pub mod admit_reply;
pub mod breaker;
pub mod confirm;
pub mod expiry;
pub mod handoff;
pub mod identity;
pub mod lookup;
pub mod place;
pub mod rate;
pub mod refusal;
pub mod replicas;
pub mod reservations;
pub mod schema;
pub mod signature;
pub mod sold_out;
pub mod ticket;
pub mod violations;

pub use admission::{Admission, AdmissionError, Admitted, Decision, RateReport};
pub use expiry::Sweeper;
pub use handoff::{Handoff, PublishError};
pub use identity::{Client, TrustedProxies};
pub use place::{Placed, Placer};
pub use rate::{LocalLimiter, RateInfo};
pub use refusal::{Accepted, Dependency, Refusal};
pub use replicas::{NotReplicated, Replicas};
pub use reservations::{EndRefusal, Reservations};
pub use schema::{OrderRequest, OrderSchema};
pub use signature::{SignatureError, SignedRequest, Verifier};
pub use ticket::Ticket;
