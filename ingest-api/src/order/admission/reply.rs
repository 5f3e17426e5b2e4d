//! What `lua/admit.lua` decided ([`Admitted`]), read from its reply (the script's
//! header documents every shape): the one place that interprets the script's positions
//! and integers.

use redis::Value;
use shared::keys::{SaleKeys, Scope};
use shared::sale::NotOpen;
use stores::NotReplicated;
use stores::reply::{int, items, text, unsigned};

use super::refusal::Refusal;
use crate::order::front_door::RateInfo;

/// What the admission script decided.
#[derive(Debug)]
pub enum Decision {
    /// Stock taken and outbox entry written; the order must now reach Kafka.
    Take {
        /// Units left after this order.
        remaining: i64,
        /// The outbox entry to confirm after publishing.
        entry_id: String,
        /// The reservation's payment deadline (Unix ms, Redis time; 0: none).
        deadline_ms: u64,
    },
    /// Same key and request as an earlier, confirmed acceptance.
    Replay {
        /// The stored status.
        status: u16,
        /// The stored body, byte for byte.
        body: String,
        /// The order it answered.
        order_id: String,
        /// The payment deadline it was accepted with (0: none).
        deadline_ms: u64,
    },
    /// Refused; nothing was taken.
    Refuse(Refusal),
}

/// What the script says about rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateReport {
    /// It returned before the limits step (the in-process limiter applies instead).
    NotEvaluated,
    /// Evaluated; this sale has no limit configured.
    Unlimited,
    /// Evaluated; the limit closest to exhaustion.
    Limited(RateInfo),
}

/// A decision, what the limits said, and whether the replicas hold it.
#[derive(Debug)]
pub struct Admitted {
    /// The decision.
    pub decision: Decision,
    /// For the rate-limit headers.
    pub rate: RateReport,
    /// Whether `REDIS_MIN_REPLICAS` replicas acknowledged the script's writes (`WAIT` in
    /// the same pipeline); an acceptance is promised only if they did.
    pub replicated: Result<(), NotReplicated>,
    /// The keys the decision was made on: the product's, or a shard's (set by
    /// `Admission::admit`; `None` straight from [`parse_reply`]).
    pub on: Option<SaleKeys>,
    /// Made on a shard of a sharded sale: a shard with nothing left is not a sale sold
    /// out (only a `SOLD_OUT` after the census is).
    pub sharded: bool,
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
    /// The sale's layout could not be read (before any script ran: nothing was
    /// accepted).
    #[error("redis unavailable (reading the sale's layout)")]
    Layout(#[source] redis::RedisError),
}

fn scope(v: Option<&Value>) -> Option<Scope> {
    Scope::parse(&text(v)?)
}

/// The `rl` part of a gated script's reply (`lua/lib/gate.lua`): what the limits said.
pub fn rate_report(v: Option<&Value>) -> Option<RateReport> {
    let parts = items(v)?;
    if parts.is_empty() {
        return Some(RateReport::NotEvaluated);
    }
    if text(parts.first()).as_deref() == Some("off") {
        return Some(RateReport::Unlimited);
    }
    let n = |i: usize| unsigned(parts.get(i));
    Some(RateReport::Limited(RateInfo {
        scope: scope(parts.first())?,
        limit: n(1)?,
        remaining: n(2)?,
        reset_ms: n(3)?,
        window_s: n(4)?,
    }))
}

/// Turns the script's reply into a decision; see the header of `lua/admit.lua`.
pub fn parse_reply(reply: &[Value]) -> Result<Admitted, AdmissionError> {
    let bad = || AdmissionError::BadReply(format!("{reply:?}"));
    let code = text(reply.first()).ok_or_else(bad)?;
    let at = |i: usize| reply.get(i);
    let unsigned = |i: usize| unsigned(at(i));
    let decision = match code.as_str() {
        "ACCEPTED" => Decision::Take {
            remaining: int(at(2)).ok_or_else(bad)?,
            entry_id: text(at(3)).ok_or_else(bad)?,
            deadline_ms: unsigned(4).ok_or_else(bad)?,
        },
        "REPLAY" => Decision::Replay {
            status: int(at(2))
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(bad)?,
            body: text(at(3)).ok_or_else(bad)?,
            order_id: text(at(4)).ok_or_else(bad)?,
            deadline_ms: unsigned(5).ok_or_else(bad)?,
        },
        "IN_FLIGHT" => Decision::Refuse(Refusal::InFlight),
        "KEY_REUSED" => Decision::Refuse(Refusal::KeyReused),
        "SALE_NOT_FOUND" => Decision::Refuse(Refusal::SaleNotFound),
        "SALE_NOT_OPEN" => Decision::Refuse(Refusal::SaleNotOpen {
            state: NotOpen::parse(&text(at(2)).unwrap_or_default()),
        }),
        "BLOCKED" => Decision::Refuse(Refusal::Blocked {
            scope: scope(at(2)).ok_or_else(bad)?,
        }),
        "RATE_LIMITED" => Decision::Refuse(Refusal::RateLimited {
            scope: scope(at(2)).ok_or_else(bad)?,
            retry_after_ms: unsigned(3).ok_or_else(bad)?,
        }),
        "PURCHASE_LIMIT_REACHED" => Decision::Refuse(Refusal::PurchaseLimitReached {
            bought: unsigned(2).ok_or_else(bad)?,
            cap: unsigned(3).ok_or_else(bad)?,
        }),
        "SOLD_OUT" => Decision::Refuse(Refusal::SoldOut {
            remaining: int(at(2)).ok_or_else(bad)?,
        }),
        "NOT_ADMITTED" => Decision::Refuse(Refusal::NotAdmitted {
            why: text(at(2)).unwrap_or_default(),
        }),
        _ => return Err(bad()),
    };
    Ok(Admitted {
        decision,
        rate: rate_report(at(1)).ok_or_else(bad)?,
        replicated: Ok(()),
        on: None,
        sharded: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn none() -> Value {
        Value::Array(vec![])
    }

    fn decision(reply: &[Value]) -> String {
        format!("{:?}", parse_reply(reply).expect("parses").decision)
    }

    #[test]
    fn parses_every_documented_reply() {
        let rl = Value::Array(vec![
            bulk("fingerprint"),
            Value::Int(10),
            Value::Int(3),
            Value::Int(1500),
            Value::Int(2),
        ]);
        let a = parse_reply(&[
            bulk("ACCEPTED"),
            rl,
            Value::Int(7),
            bulk("1-0"),
            Value::Int(9),
        ])
        .expect("ok");
        assert!(matches!(
            a.decision,
            Decision::Take { remaining: 7, ref entry_id, deadline_ms: 9 } if entry_id == "1-0"
        ));
        let RateReport::Limited(rate) = a.rate else {
            panic!("rate info expected")
        };
        assert_eq!(
            (
                rate.scope,
                rate.limit,
                rate.remaining,
                rate.reset_ms,
                rate.window_s
            ),
            (Scope::Fingerprint, 10, 3, 1500, 2)
        );
        assert_eq!(
            decision(&[
                bulk("REPLAY"),
                none(),
                bulk("202"),
                bulk("{}"),
                bulk("id"),
                bulk("0")
            ]),
            r#"Replay { status: 202, body: "{}", order_id: "id", deadline_ms: 0 }"#
        );
        assert_eq!(
            decision(&[bulk("SOLD_OUT"), none(), Value::Int(0)]),
            "Refuse(SoldOut { remaining: 0 })"
        );
        assert_eq!(
            decision(&[
                bulk("PURCHASE_LIMIT_REACHED"),
                none(),
                Value::Int(1),
                Value::Int(1)
            ]),
            "Refuse(PurchaseLimitReached { bought: 1, cap: 1 })"
        );
        assert_eq!(
            decision(&[bulk("BLOCKED"), none(), bulk("user")]),
            "Refuse(Blocked { scope: User })"
        );
        assert_eq!(
            decision(&[bulk("RATE_LIMITED"), none(), bulk("ip"), Value::Int(250)]),
            "Refuse(RateLimited { scope: Ip, retry_after_ms: 250 })"
        );
        assert_eq!(
            decision(&[bulk("SALE_NOT_OPEN"), none(), bulk("scheduled")]),
            "Refuse(SaleNotOpen { state: Scheduled })"
        );
        for (code, d) in [
            ("IN_FLIGHT", "Refuse(InFlight)"),
            ("KEY_REUSED", "Refuse(KeyReused)"),
            ("SALE_NOT_FOUND", "Refuse(SaleNotFound)"),
        ] {
            let a = parse_reply(&[bulk(code), none()]).expect("ok");
            assert_eq!(format!("{:?}", a.decision), d);
            assert_eq!(a.rate, RateReport::NotEvaluated);
        }
        let off = Value::Array(vec![bulk("off")]);
        let a = parse_reply(&[bulk("IN_FLIGHT"), off]).expect("ok");
        assert_eq!(a.rate, RateReport::Unlimited);
    }

    #[test]
    fn refuses_unknown_or_truncated_replies() {
        assert!(parse_reply(&[]).is_err());
        assert!(parse_reply(&[bulk("MAYBE"), none()]).is_err());
        assert!(parse_reply(&[bulk("ACCEPTED"), none()]).is_err());
        assert!(parse_reply(&[bulk("ACCEPTED"), none(), Value::Int(1), bulk("1-0")]).is_err());
        assert!(parse_reply(&[bulk("REPLAY"), none(), bulk("x"), bulk("{}"), bulk("id")]).is_err());
        assert!(parse_reply(&[bulk("BLOCKED"), none(), bulk("planet")]).is_err());
    }
}
