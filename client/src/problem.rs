//! Refusals as the API writes them: `application/problem+json` (RFC 9457) with a stable
//! `code` (`ingest-api/API.md`, "Errors"), read into a [`Problem`].

use std::time::Duration;

use serde::Deserialize;

use crate::codes::ProblemCode;

/// One schema violation of a `VALIDATION_FAILED` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    /// JSON Pointer into the request body (`""`: the whole body).
    pub pointer: String,
    /// What is wrong (never the value itself).
    pub detail: String,
}

/// A refusal: an `application/problem+json` answer, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status.
    pub status: u16,
    /// The stable code.
    pub code: ProblemCode,
    /// The code as sent (the same text unless [`ProblemCode::Unknown`]).
    pub raw_code: String,
    /// A short title.
    pub title: String,
    /// What happened, for people.
    pub detail: String,
    /// `Retry-After`, when the answer has one (429, 503, `IDEMPOTENCY_IN_FLIGHT`).
    pub retry_after: Option<Duration>,
    /// The limit or block that refused (`ip`, `fingerprint`, `user`, `global`).
    pub scope: Option<String>,
    /// How the order ended, for `ORDER_NOT_RESERVED`.
    pub state: Option<String>,
    /// For `UNAVAILABLE`: the order may stand; retry with the same key to learn it.
    pub outcome_unknown: bool,
    /// The violations of a `VALIDATION_FAILED` answer.
    pub errors: Vec<FieldError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    code: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    outcome_unknown: bool,
    #[serde(default)]
    errors: Vec<FieldError>,
}

impl Problem {
    /// Reads a problem body of an answer with `status` and `Retry-After` seconds; `None`
    /// when the body is not a problem document (no `code`).
    pub fn parse(status: u16, body: &[u8], retry_after_secs: Option<u64>) -> Option<Self> {
        let wire: Wire = serde_json::from_slice(body).ok()?;
        if wire.code.is_empty() {
            return None;
        }
        Some(Self {
            status,
            code: ProblemCode::parse(&wire.code),
            raw_code: wire.code,
            title: wire.title,
            detail: wire.detail,
            retry_after: retry_after_secs.map(Duration::from_secs),
            scope: wire.scope,
            state: wire.state,
            outcome_unknown: wire.outcome_unknown,
            errors: wire.errors,
        })
    }

    /// Whether the answer leaves the outcome open, so only a retry with the same
    /// `Idempotency-Key` tells it: a store was unavailable (503), the first request
    /// with this key is still in flight (409), or the server gave up waiting for this
    /// request (408).
    pub fn outcome_pending(&self) -> bool {
        matches!(
            self.code,
            ProblemCode::Unavailable
                | ProblemCode::IdempotencyInFlight
                | ProblemCode::RequestTimeout
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.raw_code, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_problem_with_its_extras() {
        let body = br#"{"type":"t","title":"Rate limit exceeded","status":429,
            "detail":"too many requests for this ip","code":"RATE_LIMIT_EXCEEDED","scope":"ip"}"#;
        let p = Problem::parse(429, body, Some(2)).expect("a problem");
        assert_eq!(p.code, ProblemCode::RateLimitExceeded);
        assert_eq!(p.scope.as_deref(), Some("ip"));
        assert_eq!(p.retry_after, Some(Duration::from_secs(2)));
        assert!(!p.outcome_pending());
        let p = Problem::parse(
            503,
            br#"{"code":"UNAVAILABLE","outcomeUnknown":true}"#,
            None,
        )
        .expect("a problem");
        assert!(p.outcome_unknown && p.outcome_pending());
        assert_eq!(Problem::parse(200, br#"{"orderId":"x"}"#, None), None);
        assert_eq!(Problem::parse(500, b"oops", None), None);
    }
}
