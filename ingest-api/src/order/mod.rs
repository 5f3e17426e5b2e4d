//! The business side of an order, free of HTTP types: what the body means
//! ([`schema`]), the one Redis decision ([`admission`]) and the hand-off to Kafka
//! ([`handoff`]).

pub mod admission;
pub mod handoff;
pub mod schema;
pub mod signature;
pub mod ticket;

pub use admission::{Admission, AdmissionError, Decision};
pub use handoff::{Handoff, PublishError};
pub use schema::{OrderRequest, OrderSchema};
pub use signature::{SignatureError, SignedRequest, Verifier};
pub use ticket::{OrderView, Ticket};
