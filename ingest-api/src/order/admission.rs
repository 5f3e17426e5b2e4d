//! The admission decision: one call of `lua/admit.lua` per order.
//!
//! The script decides sale state, idempotency, the per-user cap and the stock
//! decrement atomically and writes the outbox entry in the same step. This module only
//! builds the call and turns the reply into a [`Decision`]; it never interprets raw
//! integers anywhere else.

use std::sync::atomic::{AtomicU64, Ordering};

use redis::Value;
use redis::aio::ConnectionManager;
use shared::keys::Keyspace;

use super::ticket::Ticket;

static ADMIT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../../../lua/admit.lua")));

/// What the admission script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Stock taken and outbox entry written; the order must now reach Kafka.
    Accepted {
        /// Units left after this order.
        remaining: i64,
        /// The outbox entry to confirm after publishing.
        entry_id: String,
    },
    /// Same key and request as an earlier, confirmed acceptance.
    Replay {
        /// The stored status.
        status: u16,
        /// The stored body, byte for byte.
        body: String,
        /// The order it answered.
        order_id: String,
    },
    /// Same key and request; the first is still being handed off.
    InFlight,
    /// Same key, different request.
    KeyReused,
    /// No sale hash for this product.
    SaleNotFound,
    /// The sale is halted, closed, scheduled or ended.
    SaleNotOpen {
        /// Which of those.
        state: String,
    },
    /// The user's cap would be exceeded.
    PurchaseLimitReached {
        /// Units already bought.
        bought: u64,
        /// The cap.
        cap: u64,
    },
    /// Not enough stock for this quantity.
    SoldOut {
        /// Units left (0 = fully sold out).
        remaining: i64,
    },
}

/// Why no decision could be made. Either way nothing was accepted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Redis could not be reached or did not answer in time.
    #[error("redis unavailable")]
    Unavailable(#[source] redis::RedisError),
    /// The script answered something this build does not understand.
    #[error("unexpected admission reply: {0}")]
    BadReply(String),
}

/// Runs the admission script.
#[derive(Clone)]
pub struct Admission {
    conn: ConnectionManager,
    keys: Keyspace,
    idempotency_ttl_secs: u64,
    calls: std::sync::Arc<AtomicU64>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("keys", &self.keys)
            .finish()
    }
}

impl Admission {
    /// Uses `conn` (a multiplexed, reconnecting connection) and the deployment's keyspace.
    pub fn new(conn: ConnectionManager, keys: Keyspace, idempotency_ttl_secs: u64) -> Self {
        Self {
            conn,
            keys,
            idempotency_ttl_secs,
            calls: Default::default(),
        }
    }

    /// Redis round trips made by admissions so far (exported as a metric; tests use it to
    /// show one call per order).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Decides one order in one Redis round trip.
    #[tracing::instrument(name = "admit", skip_all, fields(product = %ticket.order.product_id))]
    pub async fn admit(&self, ticket: &Ticket) -> Result<Decision, AdmissionError> {
        let keys = self.keys.sale(&ticket.order.product_id);
        let mut conn = self.conn.clone();
        self.calls.fetch_add(1, Ordering::Relaxed);
        let reply: Vec<Value> = ADMIT
            .key(keys.sale())
            .key(keys.bought())
            .key(keys.idempotency(&ticket.order.user_id, &ticket.idempotency_key))
            .key(keys.outbox())
            .arg(ticket.order.user_id.as_str())
            .arg(ticket.order.quantity.get())
            .arg(ticket.request_fingerprint())
            .arg(ticket.order_id.to_string())
            .arg(ticket.accepted_body())
            .arg(ticket.event().to_json())
            .arg(self.idempotency_ttl_secs)
            .invoke_async(&mut conn)
            .await
            .map_err(AdmissionError::Unavailable)?;
        parse_reply(&reply)
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Int(i) => Some(*i),
        other => text(Some(other))?.parse().ok(),
    }
}

/// Turns the script's reply into a [`Decision`]; see the header of `lua/admit.lua`.
pub fn parse_reply(reply: &[Value]) -> Result<Decision, AdmissionError> {
    let bad = || AdmissionError::BadReply(format!("{reply:?}"));
    let code = text(reply.first()).ok_or_else(bad)?;
    let at = |i: usize| reply.get(i);
    let decision = match code.as_str() {
        "ACCEPTED" => Decision::Accepted {
            remaining: int(at(1)).ok_or_else(bad)?,
            entry_id: text(at(2)).ok_or_else(bad)?,
        },
        "REPLAY" => Decision::Replay {
            status: int(at(1))
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(bad)?,
            body: text(at(2)).ok_or_else(bad)?,
            order_id: text(at(3)).ok_or_else(bad)?,
        },
        "IN_FLIGHT" => Decision::InFlight,
        "KEY_REUSED" => Decision::KeyReused,
        "SALE_NOT_FOUND" => Decision::SaleNotFound,
        "SALE_NOT_OPEN" => Decision::SaleNotOpen {
            state: text(at(1)).unwrap_or_else(|| "closed".into()),
        },
        "PURCHASE_LIMIT_REACHED" => Decision::PurchaseLimitReached {
            bought: int(at(1))
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(bad)?,
            cap: int(at(2))
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(bad)?,
        },
        "SOLD_OUT" => Decision::SoldOut {
            remaining: int(at(1)).ok_or_else(bad)?,
        },
        _ => return Err(bad()),
    };
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_every_documented_reply() {
        assert_eq!(
            parse_reply(&[bulk("ACCEPTED"), Value::Int(7), bulk("1-0")]).expect("ok"),
            Decision::Accepted {
                remaining: 7,
                entry_id: "1-0".into()
            }
        );
        assert_eq!(
            parse_reply(&[bulk("REPLAY"), bulk("202"), bulk("{}"), bulk("id")]).expect("ok"),
            Decision::Replay {
                status: 202,
                body: "{}".into(),
                order_id: "id".into(),
            }
        );
        assert_eq!(
            parse_reply(&[bulk("SOLD_OUT"), Value::Int(0)]).expect("ok"),
            Decision::SoldOut { remaining: 0 }
        );
        assert_eq!(
            parse_reply(&[bulk("PURCHASE_LIMIT_REACHED"), Value::Int(1), Value::Int(1)])
                .expect("ok"),
            Decision::PurchaseLimitReached { bought: 1, cap: 1 }
        );
        for (code, d) in [
            ("IN_FLIGHT", Decision::InFlight),
            ("KEY_REUSED", Decision::KeyReused),
            ("SALE_NOT_FOUND", Decision::SaleNotFound),
        ] {
            assert_eq!(parse_reply(&[bulk(code)]).expect("ok"), d);
        }
    }

    #[test]
    fn refuses_unknown_or_truncated_replies() {
        assert!(parse_reply(&[]).is_err());
        assert!(parse_reply(&[bulk("MAYBE")]).is_err());
        assert!(parse_reply(&[bulk("ACCEPTED")]).is_err());
        assert!(parse_reply(&[bulk("REPLAY"), bulk("x"), bulk("{}"), bulk("id")]).is_err());
    }
}
