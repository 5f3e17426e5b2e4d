//! What a client is told about its limits, and the in-process limiter used whenever the
//! Redis limits were not evaluated.
//!
//! Every `POST /order` is subject to exactly one limiter: the admission script's (shared
//! by every instance) when the request reached it, otherwise this process's per-network
//! GCRA (`FALLBACK_IP_LIMIT`): requests refused before admission, the sold-out fast path,
//! sales that are missing or not open, and every request while Redis is unreachable, so
//! limiting degrades to per-instance instead of vanishing.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::keys::Scope;
use shared::limits::{LimitSpec, gcra};
use tokio::time::Instant;

/// The limit closest to exhaustion, for the `RateLimit*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateInfo {
    /// Which limit.
    pub scope: Scope,
    /// Its burst (`q`).
    pub limit: u64,
    /// Requests left right now (`r`).
    pub remaining: u64,
    /// Milliseconds until a full burst is available again.
    pub reset_ms: u64,
    /// Seconds to refill a full burst (`w`).
    pub window_s: u64,
}

impl RateInfo {
    /// Seconds until reset, rounded up (`t`, `X-RateLimit-Reset`).
    pub fn reset_secs(&self) -> u64 {
        self.reset_ms.div_ceil(1000)
    }

    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10).
    pub fn policy_header(&self) -> String {
        format!(
            "\"{}\";q={};w={}",
            self.scope.as_str(),
            self.limit,
            self.window_s
        )
    }

    /// `RateLimit`.
    pub fn state_header(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.scope.as_str(),
            self.remaining,
            self.reset_secs()
        )
    }
}

/// The outcome of the in-process limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDecision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Headers to report.
    pub info: RateInfo,
    /// When refused, seconds until it would pass (at least 1).
    pub retry_after_secs: u64,
}

/// Per-network GCRA in this process. Entries whose TAT has passed carry no
/// information and are swept when the table grows, so rotating addresses cannot grow
/// it without bound.
#[derive(Debug)]
pub struct LocalLimiter {
    spec: LimitSpec,
    t_us: u64,
    /// Added to the clock so that `now - burst·T` never goes below zero.
    offset_us: u64,
    epoch: Instant,
    tats: Mutex<HashMap<String, u64>>,
}

const SWEEP_ABOVE: usize = 50_000;

impl LocalLimiter {
    /// A limiter applying `spec` per key.
    pub fn new(spec: LimitSpec) -> Self {
        Self {
            spec,
            t_us: spec.emission_interval_us(),
            offset_us: spec.emission_interval_us() * u64::from(spec.burst) + 1_000_000,
            epoch: Instant::now(),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// Charges one request to `key`.
    pub fn check(&self, key: &str) -> LocalDecision {
        let now = self.epoch.elapsed().as_micros() as u64 + self.offset_us;
        let burst = u64::from(self.spec.burst);
        let step = {
            let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
            let step = gcra(tats.get(key).copied(), self.t_us, burst, now);
            if step.allowed {
                tats.insert(key.to_owned(), step.tat_us);
            }
            if tats.len() > SWEEP_ABOVE {
                tats.retain(|_, tat| *tat > now);
            }
            step
        };
        LocalDecision {
            allowed: step.allowed,
            info: RateInfo {
                scope: Scope::Ip,
                limit: burst,
                remaining: step.remaining,
                reset_ms: step.reset_us.div_ceil(1000),
                window_s: self.spec.window_secs(),
            },
            retry_after_secs: step.retry_us.div_ceil(1_000_000).max(1),
        }
    }

    /// Keys currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.tats.lock().map(|t| t.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limits_per_key_and_recovers_with_time() {
        let l = LocalLimiter::new("10/s:3".parse().expect("valid"));
        for left in [2, 1, 0] {
            let d = l.check("a");
            assert!(d.allowed);
            assert_eq!(d.info.remaining, left);
        }
        let refused = l.check("a");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert!(l.check("b").allowed, "keys are independent");
        tokio::time::advance(std::time::Duration::from_millis(100)).await;
        assert!(l.check("a").allowed, "one emission interval later");
        assert_eq!(refused.info.policy_header(), "\"ip\";q=3;w=1");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_limits_report_the_right_remaining_from_the_start() {
        let l = LocalLimiter::new("10/h:20".parse().expect("valid"));
        assert_eq!(l.check("a").info.remaining, 19);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_entries_are_swept() {
        let l = LocalLimiter::new("1000/s:1".parse().expect("valid"));
        for i in 0..=SWEEP_ABOVE {
            l.check(&i.to_string());
        }
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        l.check("x");
        assert!(l.tracked() < 10, "{}", l.tracked());
    }
}
