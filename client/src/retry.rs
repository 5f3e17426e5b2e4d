//! When to try again: only while the outcome is unknown, always with the same
//! `Idempotency-Key`, waiting as `Retry-After` says (`ingest-api/API.md`, "Retrying").
//!
//! A `503` (a store was unavailable: nothing was taken, or the order may stand), a `409
//! IDEMPOTENCY_IN_FLIGHT` (the first request with this key is still being processed), a
//! `408` (the server gave up waiting for the request), a dropped connection or a timeout
//! do not tell whether the order stands; the same key asked again does, because the API
//! answers a repeated key with the first answer. Every other answer is final.

use std::time::Duration;

use crate::answer::Answer;
use crate::codes::ProblemCode;

/// How persistent a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Longest wait for one answer; past it the attempt counts as a dropped connection.
    pub attempt_timeout: Duration,
    /// `Retry-After` is honoured up to this long (and at least a second).
    pub max_wait: Duration,
    /// The wait after a dropped connection or a timeout (no `Retry-After` to go by).
    pub transport_wait: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, 10 s each, `Retry-After` up to 5 s, 500 ms after a dropped connection.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(10),
            max_wait: Duration::from_secs(5),
            transport_wait: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before retrying after `answer` (`None`: the connection dropped or
    /// the attempt timed out); `None` when the answer is final.
    pub fn wait_after(&self, answer: Option<&Answer>) -> Option<Duration> {
        let Some(answer) = answer else {
            return Some(self.transport_wait);
        };
        if !outcome_unknown(answer) {
            return None;
        }
        let secs = answer.retry_after_secs().unwrap_or(1);
        Some(Duration::from_secs(secs).clamp(
            Duration::from_secs(1),
            self.max_wait.max(Duration::from_secs(1)),
        ))
    }
}

/// Whether `answer` leaves the outcome open (see the module documentation).
pub fn outcome_unknown(answer: &Answer) -> bool {
    match answer.status {
        503 | 408 => true,
        409 => answer
            .problem()
            .is_some_and(|p| p.code == ProblemCode::IdempotencyInFlight),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, retry_after: Option<&str>) -> Answer {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert("retry-after", v.parse().unwrap_or_else(|_| unreachable!()));
        }
        Answer {
            status,
            headers,
            body: body.as_bytes().to_vec(),
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn retries_only_unknown_outcomes_as_retry_after_says() {
        let p = RetryPolicy::default();
        let in_flight = answer(409, r#"{"code":"IDEMPOTENCY_IN_FLIGHT"}"#, Some("1"));
        assert_eq!(p.wait_after(Some(&in_flight)), Some(Duration::from_secs(1)));
        let sold_out = answer(409, r#"{"code":"SOLD_OUT"}"#, None);
        assert_eq!(p.wait_after(Some(&sold_out)), None);
        let unavailable = answer(503, r#"{"code":"UNAVAILABLE"}"#, Some("30"));
        assert_eq!(p.wait_after(Some(&unavailable)), Some(p.max_wait), "capped");
        let timeout = answer(408, "", None);
        assert_eq!(p.wait_after(Some(&timeout)), Some(Duration::from_secs(1)));
        assert_eq!(p.wait_after(None), Some(p.transport_wait));
        assert_eq!(p.wait_after(Some(&answer(202, "{}", None))), None);
    }
}
