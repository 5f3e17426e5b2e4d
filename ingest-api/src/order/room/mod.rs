//! The waiting room: a fair, inventory-aware line in front of a hot product's admission
//! (`ingest-api/API.md`, "Waiting room").
//!
//! In: a signed join from a user's device, then that ticket's polls and, once its turn
//! has come, its claim. Out: a ticket (a signed token, `shared::room`), the waiter's view
//! of the line ([`view`], answered from this instance's [`cache`]), and an admission the
//! order then presents: `lua/admit.lua` refuses an order without one while the product's
//! room is on. The scripts ([`calls`]) keep the room in the product's slot, so it works
//! on a Redis Cluster and survives a failover like an admission; the [`drain`] releases
//! positions at the room's rate.

pub mod cache;
pub mod calls;
pub mod drain;
pub mod refusal;
pub mod view;

pub use cache::{RoomCache, Snapshot};
pub use calls::{Claimed, Drained, Joined, RoomCalls, RoomError};
pub use drain::Drain;
pub use refusal::RoomRefusal;
pub use view::{WaitState, WaitView, view};
