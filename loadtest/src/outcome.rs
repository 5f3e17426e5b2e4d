//! What each order finally got, as the client knows it: the record the audit joins with
//! the database.

use serde::{Deserialize, Serialize};

/// The final state of one order, as the client knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Outcome {
    /// `shopper` or `bot:<kind>`.
    #[serde(default = "shopper")]
    pub actor: String,
    /// The user.
    pub user: String,
    /// The idempotency key (kept across retries).
    pub key: String,
    /// Units ordered.
    pub quantity: u32,
    /// Final code: `ACCEPTED`, a problem code, or `TRANSPORT_ERROR`.
    pub code: String,
    /// Final HTTP status (0 for transport errors).
    pub status: u16,
    /// The order id of a 202.
    pub order_id: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Some attempt ended with an unknown outcome (503, 409 in flight, timeout, reset).
    pub saw_unknown: bool,
    /// Scheduled send, ms from the start of the run.
    pub scheduled_ms: u64,
    /// Scheduled send to first answer, µs (coordinated-omission corrected).
    pub first_us: u64,
    /// Scheduled send to final answer, µs.
    pub final_us: u64,
    /// How late the generator itself sent the first attempt, µs (part of `first_us`;
    /// large values mean the generator, not the server, was the bottleneck).
    #[serde(default)]
    pub lag_us: u64,
    /// For an accepted order on a sale with a payment window: the state the shopper was
    /// told on paying or cancelling (`paid`, `cancelled`, `expired`, or the final code);
    /// `None` when the shopper did neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<String>,
}

fn shopper() -> String {
    "shopper".into()
}

impl Outcome {
    /// Whether the order may stand without a 202 in hand (the audit checks the database):
    /// the last answer did not tell. A decisive refusal (say `SOLD_OUT`) after an unknown
    /// attempt is not unresolved: idempotency makes that retry answer for the first
    /// attempt, so a row for it would be an order the shopper was told had failed.
    pub fn unresolved(&self) -> bool {
        self.status != 202
            && matches!(
                self.code.as_str(),
                "UNAVAILABLE"
                    | "IDEMPOTENCY_IN_FLIGHT"
                    | "TRANSPORT_ERROR"
                    | "REQUEST_TIMEOUT"
                    | "HTTP_408"
            )
    }
}

/// Progress callback data, once a second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Seconds into the run.
    pub elapsed_s: f64,
    /// Orders scheduled so far.
    pub scheduled: usize,
    /// Orders finished.
    pub finished: usize,
    /// Orders in flight.
    pub in_flight: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_outcomes_are_unresolved() {
        let mut o = Outcome {
            actor: "shopper".into(),
            user: "u".into(),
            key: "k".into(),
            quantity: 1,
            code: "UNAVAILABLE".into(),
            status: 503,
            order_id: None,
            attempts: 5,
            saw_unknown: true,
            scheduled_ms: 0,
            first_us: 1,
            final_us: 1,
            lag_us: 0,
            settled: None,
        };
        assert!(o.unresolved());
        o.code = "HTTP_408".into();
        o.status = 408;
        assert!(
            o.unresolved(),
            "the server gave up on the request: still unknown"
        );
        o.code = "SOLD_OUT".into();
        o.status = 409;
        assert!(!o.unresolved());
    }
}
