//! Who may call: request signatures ([`signing`]), payment webhooks' signatures
//! ([`webhook`]), and the wrapper that keeps the keys of both out of logs ([`secret`]).

pub mod secret;
pub mod signing;
pub mod webhook;
