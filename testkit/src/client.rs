//! The client tests send with: the shoppers' signing client ([`flashsale_client`]) and
//! the load harness's helpers for crafting requests (`loadtest::clients`), in one place.

pub use flashsale_client::{Answer, Client, send};
pub use loadtest::clients::{loopback_ip, payment_request, replace_header};
