//! HTTP routes. Each module exposes `config` for `App::configure`; handlers translate
//! between HTTP and the business functions in [`crate::order`]. What handlers share is
//! in [`state`] (built once) and [`request`] (reading a request, limiting it, holding
//! its body); the answer to `POST /order` is built in [`answer`].

pub mod admin;
pub mod answer;
pub mod order;
pub mod queue;
pub mod request;
pub mod reservation;
pub mod state;
