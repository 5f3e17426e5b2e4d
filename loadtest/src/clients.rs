//! Helpers for crafting requests the way the harness's crowd and bots (and the tests)
//! send them, beside the shoppers' signing client (`flashsale_client`): many source
//! addresses on one machine, a tampered header, a payment service's signed webhook.

use std::net::IpAddr;

use flashsale_client::{Client, headers};

/// The `i`-th loopback source address, from 127.0.0.2 on: the whole 127.0.0.0/8 is
/// local on Linux, so binding to these makes one machine look like many clients.
pub fn loopback_ip(i: usize) -> IpAddr {
    let n = (i + 2) as u32;
    std::net::Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8).into()
}

/// Replaces (rather than adds) one header of a request, to tamper with it.
pub fn replace_header(
    req: reqwest::RequestBuilder,
    name: &'static str,
    value: &str,
) -> reqwest::RequestBuilder {
    let mut map = reqwest::header::HeaderMap::new();
    if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
        map.insert(name, v);
    }
    req.headers(map)
}

/// A `POST /webhooks/payment` for `order_id` with `status`, signed by `secret`
/// (`whsec_…`) as webhook `id`, now: what the payment service sends.
pub fn payment_request(
    client: &Client,
    secret: &str,
    id: &str,
    order_id: &str,
    status: &str,
) -> reqwest::RequestBuilder {
    let body = serde_json::json!({ "orderId": order_id, "status": status })
        .to_string()
        .into_bytes();
    let timestamp = (shared::event::now_ms() / 1000).to_string();
    let signature = shared::auth::webhook::sign(secret, id, &timestamp, &body).unwrap_or_default();
    client
        .http()
        .post(format!("{}/webhooks/payment", client.base_url()))
        .header("content-type", "application/json")
        .header(headers::WEBHOOK_ID, id)
        .header(headers::WEBHOOK_TIMESTAMP, timestamp)
        .header(headers::WEBHOOK_SIGNATURE, signature)
        .body(body)
}
