//! Rate limits: the `rate/period:burst` notation and the GCRA arithmetic.
//!
//! Every limit is a GCRA (generic cell rate algorithm, the "leaky bucket as a meter"):
//! each client key stores one number, its theoretical arrival time (TAT). A request is
//! admitted if `now >= TAT + T - burst·T`, and then moves TAT forward by `T`, the emission
//! interval. We chose it because it is exact: in any window of length `L` at most
//! `burst + L/T` requests pass (no fixed-window edge where twice the rate slips through),
//! it needs one key per client, and it tells the client exactly when to retry. Time is in
//! integer microseconds and `T` is rounded *up*, so rounding can only make a limit
//! stricter, never looser.
//!
//! The same arithmetic runs in `lua/admit.lua` (with Redis server time, shared by every
//! instance) and in [`LocalLimiter`]-style in-process fallbacks; `ingest-api`'s tests
//! run the Lua copy against this one.

use std::fmt;
use std::str::FromStr;

/// A limit such as `10/s:20`: `rate` requests per `period`, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitSpec {
    /// Requests per period.
    pub rate: u32,
    /// Period in microseconds (1 s, 1 min or 1 h).
    pub period_us: u64,
    /// Requests that may arrive at once.
    pub burst: u32,
}

/// Why a limit spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "limit {0:?} is not of the form RATE/PERIOD[:BURST] (e.g. 10/s:20; PERIOD is s, m or h; RATE and BURST positive)"
)]
pub struct LimitSpecError(pub String);

impl LimitSpec {
    /// The emission interval `T` in µs, rounded up.
    pub fn emission_interval_us(&self) -> u64 {
        self.period_us.div_ceil(u64::from(self.rate))
    }

    /// The window of the IETF `RateLimit-Policy` (`w`): time to refill a full burst, in
    /// seconds, rounded up.
    pub fn window_secs(&self) -> u64 {
        (self.emission_interval_us() * u64::from(self.burst)).div_ceil(1_000_000)
    }
}

impl FromStr for LimitSpec {
    type Err = LimitSpecError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let err = || LimitSpecError(raw.to_owned());
        let (rate_part, burst) = match raw.trim().split_once(':') {
            Some((r, b)) => (r, Some(b.trim().parse::<u32>().map_err(|_| err())?)),
            None => (raw.trim(), None),
        };
        let (rate, period) = rate_part.split_once('/').ok_or_else(err)?;
        let rate: u32 = rate.trim().parse().map_err(|_| err())?;
        let period_us = match period.trim() {
            "s" | "sec" | "second" => 1_000_000,
            "m" | "min" | "minute" => 60_000_000,
            "h" | "hour" => 3_600_000_000,
            _ => return Err(err()),
        };
        let burst = burst.unwrap_or(rate);
        if rate == 0 || burst == 0 {
            return Err(err());
        }
        Ok(Self {
            rate,
            period_us,
            burst,
        })
    }
}

impl fmt::Display for LimitSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period_us {
            1_000_000 => "s",
            60_000_000 => "m",
            _ => "h",
        };
        write!(f, "{}/{}:{}", self.rate, unit, self.burst)
    }
}

/// The limits a sale gets unless the operator says otherwise: per client network
/// 10/s bursting to 20 (a shopper's app retries, a household shares an address), per
/// device 5/s:10, per user 2/s:5, and 5000/s:10000 for the whole product, which keeps a
/// botnet spread over many addresses from swamping Redis and Kafka.
pub fn default_limit(scope: crate::keys::Scope) -> LimitSpec {
    use crate::keys::Scope;
    let (rate, burst) = match scope {
        Scope::Ip => (10, 20),
        Scope::Fingerprint => (5, 10),
        Scope::User => (2, 5),
        Scope::Global => (5_000, 10_000),
    };
    LimitSpec {
        rate,
        period_us: 1_000_000,
        burst,
    }
}

/// The outcome of one GCRA step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Whether the request conforms.
    pub allowed: bool,
    /// The TAT to store (unchanged when refused).
    pub tat_us: u64,
    /// Further requests that would conform right now.
    pub remaining: u64,
    /// Time until a full burst is available again.
    pub reset_us: u64,
    /// When refused, time until this request would conform.
    pub retry_us: u64,
}

/// One GCRA step with emission interval `t_us` and burst `burst`, at `now_us`, given the
/// stored TAT (`None` for a new key). Mirrors `gcra()` in `lua/admit.lua`.
pub fn gcra(tat_us: Option<u64>, t_us: u64, burst: u64, now_us: u64) -> Gcra {
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let new_tat = tat + t_us;
    let allow_at = new_tat.saturating_sub(burst * t_us);
    if now_us < allow_at {
        return Gcra {
            allowed: false,
            tat_us: tat,
            remaining: 0,
            reset_us: tat - now_us,
            retry_us: allow_at - now_us,
        };
    }
    Gcra {
        allowed: true,
        tat_us: new_tat,
        remaining: (now_us - allow_at) / t_us,
        reset_us: new_tat - now_us,
        retry_us: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_notation() {
        let l: LimitSpec = "10/s:20".parse().expect("valid");
        assert_eq!((l.rate, l.period_us, l.burst), (10, 1_000_000, 20));
        assert_eq!(l.emission_interval_us(), 100_000);
        assert_eq!(l.window_secs(), 2);
        assert_eq!(l.to_string(), "10/s:20");
        let l: LimitSpec = "100/m".parse().expect("burst defaults to rate");
        assert_eq!(l.burst, 100);
        assert_eq!(
            "3/s:1"
                .parse::<LimitSpec>()
                .expect("valid")
                .emission_interval_us(),
            333_334
        );
        for bad in ["", "10", "10/x", "0/s", "10/s:0", "-1/s", "10/s:", "a/s:1"] {
            assert!(bad.parse::<LimitSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fresh_key_allows_exactly_a_burst_then_says_when() {
        let (t, b, now) = (100_000, 3, 1_000_000_000);
        let mut tat = None;
        for expect_remaining in [2, 1, 0] {
            let g = gcra(tat, t, b, now);
            assert!(g.allowed);
            assert_eq!(g.remaining, expect_remaining);
            tat = Some(g.tat_us);
        }
        let refused = gcra(tat, t, b, now);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_us, t);
        assert_eq!(
            refused.tat_us,
            tat.expect("set"),
            "a refusal consumes nothing"
        );
        assert!(gcra(tat, t, b, now + t).allowed);
    }

    proptest! {
        /// Never more than `burst + elapsed / T` admissions in any run of requests,
        /// whatever their timing.
        #[test]
        fn never_admits_more_than_rate_times_time_plus_burst(
            rate in 1u32..1_000,
            burst in 1u32..50,
            gaps in proptest::collection::vec(0u64..200_000, 1..400),
        ) {
            let spec = LimitSpec { rate, period_us: 1_000_000, burst };
            let t = spec.emission_interval_us();
            let start = 1_700_000_000_000_000u64;
            let mut now = start;
            let mut tat = None;
            let mut admitted: Vec<u64> = Vec::new();
            for gap in gaps {
                now += gap;
                let g = gcra(tat, t, u64::from(burst), now);
                if g.allowed {
                    admitted.push(now);
                    tat = Some(g.tat_us);
                }
            }
            // Every window [admitted[i], admitted[j]] holds at most burst + span/T + ...
            for i in 0..admitted.len() {
                for j in i..admitted.len() {
                    let span = admitted[j] - admitted[i];
                    let count = (j - i + 1) as u64;
                    prop_assert!(
                        count <= u64::from(burst) + span / t,
                        "{count} admitted within {span} µs (T = {t}, burst = {burst})"
                    );
                    // And never more than the configured rate allows (T rounds up).
                    prop_assert!(
                        count as f64 <= f64::from(burst) + span as f64 * f64::from(rate) / 1e6 + 1e-9
                    );
                }
            }
        }

        /// A client that respects `retry_us` is admitted; one that retries earlier is not.
        #[test]
        fn retry_after_is_exact(rate in 1u32..100, burst in 1u32..10, extra in 0u32..20) {
            let t = LimitSpec { rate, period_us: 1_000_000, burst }.emission_interval_us();
            let now = 5_000_000_000u64;
            let mut tat = None;
            for _ in 0..(burst + extra) {
                let g = gcra(tat, t, u64::from(burst), now);
                if g.allowed { tat = Some(g.tat_us); }
            }
            let refused = gcra(tat, t, u64::from(burst), now);
            prop_assert!(!refused.allowed);
            prop_assert!(!gcra(tat, t, u64::from(burst), now + refused.retry_us - 1).allowed);
            prop_assert!(gcra(tat, t, u64::from(burst), now + refused.retry_us).allowed);
        }
    }
}
