//! The business side of the API, free of HTTP types, as the stages an order passes:
//!
//! 1. [`front_door`]: what a request is — who sends it, whether it is authentic and
//!    fresh, what its body means — and the limits and violations around it.
//! 2. [`admission`]: the one Redis decision (`lua/admit.lua`) with what protects it.
//! 3. [`handoff`]: an accepted order (or an ended reservation) on its way to Kafka, and
//!    the relay that finishes what a crashed instance left.
//! 4. [`reservations`]: a reservation ended on request (cancel, payment) or expired.
//!
//! In front of the admission of a hot product stands its waiting [`room`] (optional per
//! sale): only the shoppers it admitted may order.
//!
//! [`place`] runs stages 2 and 3 for one validated order; [`lookup`] reads an order's
//! status back. Each stage imports only the stages before it (`ingest-api/tests/layers.rs`).

pub mod admission;
pub mod front_door;
pub mod handoff;
pub mod lookup;
pub mod place;
pub mod reservations;
pub mod room;
