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
use crate::reply::text;
use crate::script::{Script, ScriptCall};

static TRANSITION: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../lua/transition.lua")));
static RELEASE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../lua/release.lua")));

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

/// One move of a reservation: which order (of which product, whose keys are `keys`), to
/// which state, why (`reason` travels with the event), and how long an ended record is
/// kept.
#[derive(Debug, Clone, Copy)]
pub struct Move<'a> {
    /// The product's keys.
    pub keys: &'a SaleKeys,
    /// The product id, as the event names it.
    pub product: &'a str,
    /// The order.
    pub order_id: &'a str,
    /// The state asked for.
    pub to: ReservationState,
    /// Who or what asks.
    pub reason: &'a str,
    /// Retention of the ended record, seconds.
    pub retention_secs: u64,
}

impl Move<'_> {
    /// The call of `lua/transition.lua` for this move, to send alone ([`transition`]) or
    /// pipelined with a `WAIT` ([`crate::Replicas::write_then_wait`]).
    pub fn call(&self) -> ScriptCall<'static> {
        let k = self.keys;
        TRANSITION.call(
            &[
                k.sale(),
                k.bought(),
                k.reservation(self.order_id),
                k.outbox(),
                k.deadlines(),
            ],
            &[
                self.order_id.to_owned(),
                self.product.to_owned(),
                self.to.as_str().to_owned(),
                self.reason.to_owned(),
                self.retention_secs.to_string(),
            ],
        )
    }
}

/// Makes `m` now, without waiting for replicas.
pub async fn transition(conn: &mut Conn, m: &Move<'_>) -> Result<Transition, TransitionError> {
    let reply: Value = m.call().query(conn).await?;
    read_reply(&reply)
}

/// Reads a reply of the script.
pub fn read_reply(reply: &Value) -> Result<Transition, TransitionError> {
    match crate::reply::items(Some(reply)) {
        Some(items) => parse(items),
        None => Err(TransitionError::BadReply(format!("{reply:?}"))),
    }
}

/// Puts the units of `order_id`, cancelled or expired and applied in PostgreSQL, back
/// on sale; `true` if this call did (a repeat, or an order that returned nothing, is a
/// no-op).
pub async fn release(conn: &mut Conn, keys: &SaleKeys, order_id: &str) -> redis::RedisResult<bool> {
    let released: i64 = RELEASE
        .call(&[keys.sale(), keys.reservation(order_id)], &[] as &[&str])
        .query(conn)
        .await?;
    Ok(released == 1)
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
