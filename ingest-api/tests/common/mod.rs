//! Helpers shared by the API's integration tests: request pieces, assertions on answers,
//! metrics and Redis readings.
#![allow(dead_code)]

pub mod room;

use flashctl::guard::{Limits, parse_limit};
use shared::ReservationState;
use shared::keys::Scope;
use std::collections::HashMap;
use stores::records::sale::field as sale_field;
use stores::redis::Conn;
use stores::reservations::{Move, Transition, transition};
use testkit::TestStack;
use testkit::api::RunningApi;
use testkit::client::{Answer, Client, send};

/// A fresh idempotency key.
pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The body of one unit of `product` for `user`.
pub fn body(product: &str, user: &str) -> Vec<u8> {
    Client::body(product, user, 1)
}

/// Limits with only the given scopes set (`10/s:20` style).
pub fn limits(spec: &[(Scope, &str)]) -> Limits {
    let mut l = Limits::off();
    for (scope, raw) in spec {
        l.0.insert(*scope, parse_limit(raw).expect("valid limit"));
    }
    l
}

/// The answer has this status and code.
#[track_caller]
pub fn expect(a: &Answer, status: u16, code: &str) {
    assert_eq!(
        a.status,
        status,
        "{code}: {}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.code(), code);
}

/// The answer is a complete `application/problem+json` with this status and code.
#[track_caller]
pub fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(
        a.status,
        status,
        "{code}: {}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    let body = a.json();
    assert_eq!(body["code"], code);
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
}

/// The API's `/metrics` text.
pub async fn metrics(api: &RunningApi) -> anyhow::Result<String> {
    let a = send(
        api.client
            .http()
            .get(format!("http://127.0.0.1:{}/metrics", api.admin_port)),
    )
    .await?;
    Ok(String::from_utf8_lossy(&a.body).into_owned())
}

/// Sum of the samples of `name` whose labels contain `labels`.
pub fn sample(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Units left of `product` in Redis.
pub async fn remaining(stack: &TestStack, product: &str) -> anyhow::Result<i64> {
    let mut redis = stack.redis().await?;
    Ok(redis::cmd("HGET")
        .arg(stack.keys.sale(&product.parse()?).sale())
        .arg(sale_field::REMAINING)
        .query_async(&mut redis)
        .await?)
}

/// Units of `product` returned (cancelled, expired) and not yet back on sale.
pub async fn returning(stack: &TestStack, product: &str) -> anyhow::Result<i64> {
    let mut redis = stack.redis().await?;
    let n: Option<i64> = redis::cmd("HGET")
        .arg(stack.keys.sale(&product.parse()?).sale())
        .arg(sale_field::RETURNING)
        .query_async(&mut redis)
        .await?;
    Ok(n.unwrap_or(0))
}

/// Polls `check` every 50 ms until it holds or `timeout` passes; whether it held.
pub async fn eventually<F: std::future::Future<Output = anyhow::Result<bool>>>(
    timeout: std::time::Duration,
    mut check: impl FnMut() -> F,
) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    loop {
        if check().await? {
            return Ok(true);
        }
        if started.elapsed() > timeout {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asks `lua/transition.lua` directly to move `order` of `product` to `to`.
pub async fn move_to(
    stack: &TestStack,
    conn: &mut Conn,
    product: &str,
    order: &str,
    to: ReservationState,
) -> anyhow::Result<Transition> {
    let keys = stack.keys.sale(&product.parse()?);
    let wanted = Move {
        keys: &keys,
        product,
        order_id: order,
        to,
        reason: "test",
        retention_secs: 3600,
    };
    Ok(transition(conn, &wanted).await?)
}

/// The reservation record of `order` (empty when there is none).
pub async fn record(
    stack: &TestStack,
    conn: &mut Conn,
    product: &str,
    order: &str,
) -> anyhow::Result<HashMap<String, String>> {
    let key = stack.keys.sale(&product.parse()?).reservation(order);
    Ok(redis::cmd("HGETALL").arg(key).query_async(conn).await?)
}
