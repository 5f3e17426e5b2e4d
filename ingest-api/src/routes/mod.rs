//! HTTP routes. Each module exposes `config` for `App::configure`; handlers translate
//! between HTTP and the business functions in [`crate::order`].

pub mod admin;
pub mod order;
pub mod request;
pub mod reservation;
