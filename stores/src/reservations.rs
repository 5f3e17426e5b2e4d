//! Ending a reservation: one call of `lua/transition.lua`, for every process that moves
//! orders (the API's endpoints and expiry sweeper, `flashctl order cancel`), and, once
//! PostgreSQL has applied a return, one call of `lua/release.lua` by the worker to put
//! the units back on sale.
//!
//! The script decides and writes everything in one step, including the
//! `OrderTransitioned` event in the product's outbox; whoever calls it may publish the
//! event at once, and otherwise the API's relay does once the entry has been pending for
//! `RELAY_IDLE_MS`.

use redis::Value;
use shared::ReservationState;
use shared::keys::SaleKeys;

use crate::redis::Conn;

const TRANSITION_LUA: &str = include_str!("../../lua/transition.lua");
static TRANSITION: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(TRANSITION_LUA));
static RELEASE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../../lua/release.lua")));

/// What the script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Moved now to `state` (`Expired` when the deadline had passed, whatever was asked).
    Moved {
        /// The state reached.
        state: ReservationState,
        /// The sale's units on their way back after the move (returned, not yet on sale).
        returning: i64,
        /// The event's entry in the outbox.
        entry_id: String,
        /// The `OrderTransitioned` event, as JSON.
        event: String,
    },
    /// Already in the requested state: a repeat.
    Same(ReservationState),
    /// Already ended in another state.
    NotReserved(ReservationState),
    /// The placement is not yet acknowledged by Kafka: nothing changed, retry shortly.
    InFlight,
    /// Expiry asked before the deadline, ms (0: the sale has no payment window).
    NotDue {
        /// The order's deadline.
        deadline_ms: i64,
    },
    /// No reservation record for this order under this product.
    NotFound,
}

/// A reply the script never gives.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    /// Redis failed or refused.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// Unreadable reply (a script and a binary of different versions?).
    #[error("unexpected reply from transition.lua: {0}")]
    BadReply(String),
}

/// Asks for `order_id` (of `product`, whose keys are `keys`) to move to `to`; `reason`
/// travels with the event, and an ended record is kept `retention_secs`.
pub async fn transition(
    conn: &mut Conn,
    keys: &SaleKeys,
    product: &str,
    order_id: &str,
    to: ReservationState,
    reason: &str,
    retention_secs: u64,
) -> Result<Transition, TransitionError> {
    let call = |source| transition_cmd(source, keys, product, order_id, to, reason, retention_secs);
    let reply: Value = match call(false).query_async(conn).await {
        // Redis lost its scripts (a restart, a failover): send the script itself.
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            call(true).query_async(conn).await?
        }
        other => other?,
    };
    read_reply(&reply)
}

/// The same call as one command, to send in a pipeline (with a `WAIT`, say): `EVALSHA`,
/// or with `source` the script's text (`EVAL`, after `NOSCRIPT`; it also caches the
/// script on the product's master).
pub fn transition_cmd(
    source: bool,
    keys: &SaleKeys,
    product: &str,
    order_id: &str,
    to: ReservationState,
    reason: &str,
    retention_secs: u64,
) -> redis::Cmd {
    let mut cmd = if source {
        redis::cmd("EVAL").arg(TRANSITION_LUA).to_owned()
    } else {
        redis::cmd("EVALSHA").arg(TRANSITION.get_hash()).to_owned()
    };
    cmd.arg(5)
        .arg(keys.sale())
        .arg(keys.bought())
        .arg(keys.reservation(order_id))
        .arg(keys.outbox())
        .arg(keys.deadlines())
        .arg(order_id)
        .arg(product)
        .arg(to.as_str())
        .arg(reason)
        .arg(retention_secs);
    cmd
}

/// Reads a reply of the script.
pub fn read_reply(reply: &Value) -> Result<Transition, TransitionError> {
    match reply {
        Value::Array(items) => parse(items),
        other => Err(TransitionError::BadReply(format!("{other:?}"))),
    }
}

/// Puts the units of `order_id`, cancelled or expired and applied in PostgreSQL, back
/// on sale; `true` if this call did (a repeat, or an order that returned nothing, is a
/// no-op).
pub async fn release(conn: &mut Conn, keys: &SaleKeys, order_id: &str) -> redis::RedisResult<bool> {
    let released: i64 = RELEASE
        .key(keys.sale())
        .key(keys.reservation(order_id))
        .invoke_async(conn)
        .await?;
    Ok(released == 1)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn parse(reply: &[Value]) -> Result<Transition, TransitionError> {
    let bad = || TransitionError::BadReply(format!("{reply:?}"));
    let at = |i: usize| text(reply.get(i));
    let state = |i: usize| {
        at(i)
            .and_then(|s| ReservationState::parse(&s))
            .ok_or_else(bad)
    };
    let int = |i: usize| at(i).and_then(|s| s.parse::<i64>().ok()).ok_or_else(bad);
    Ok(match at(0).ok_or_else(bad)?.as_str() {
        "MOVED" => Transition::Moved {
            state: state(1)?,
            returning: int(2)?,
            entry_id: at(3).ok_or_else(bad)?,
            event: at(4).ok_or_else(bad)?,
        },
        "SAME" => Transition::Same(state(1)?),
        "NOT_RESERVED" => Transition::NotReserved(state(1)?),
        "IN_FLIGHT" => Transition::InFlight,
        "NOT_DUE" => Transition::NotDue {
            deadline_ms: int(1)?,
        },
        "ORDER_NOT_FOUND" => Transition::NotFound,
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_every_reply_and_refuses_others() {
        let moved = parse(&[
            bulk("MOVED"),
            bulk("expired"),
            Value::Int(3),
            bulk("1-0"),
            bulk("{}"),
        ])
        .expect("moved");
        assert!(matches!(
            moved,
            Transition::Moved {
                state: ReservationState::Expired,
                returning: 3,
                ..
            }
        ));
        assert_eq!(
            parse(&[bulk("SAME"), bulk("paid")]).expect("same"),
            Transition::Same(ReservationState::Paid)
        );
        assert_eq!(
            parse(&[bulk("NOT_DUE"), Value::Int(0)]).expect("not due"),
            Transition::NotDue { deadline_ms: 0 }
        );
        assert_eq!(
            parse(&[bulk("IN_FLIGHT")]).expect("in flight"),
            Transition::InFlight
        );
        assert!(parse(&[bulk("NOT_RESERVED"), bulk("sold")]).is_err());
        assert!(parse(&[bulk("WHAT")]).is_err());
        assert!(parse(&[]).is_err());
    }
}
