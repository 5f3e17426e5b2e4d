//! What arrives during a run, and who sends it: the crowd's arrival-rate [`Schedule`],
//! the kinds of bots ([`BotKind`]) and the whole [`Plan`], shared by the scenario files
//! that describe a run and the engine that plays it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the arrival rate changes over the run (requests per second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate throughout.
    Constant {
        /// Requests per second.
        rate: f64,
    },
    /// From `from` to `to`, linearly over the run.
    Ramp {
        /// Starting rate.
        from: f64,
        /// Final rate.
        to: f64,
    },
    /// `base`, with `peak` for `hold_s` seconds from `at_s` (the sale opening).
    Spike {
        /// Rate outside the spike.
        base: f64,
        /// Rate during the spike.
        peak: f64,
        /// When the spike starts, seconds into the run.
        at_s: f64,
        /// How long it lasts.
        hold_s: f64,
    },
}

impl Schedule {
    /// The rate at `t` seconds into a run of `duration` seconds.
    pub fn rate_at(&self, t: f64, duration: f64) -> f64 {
        match *self {
            Self::Constant { rate } => rate,
            Self::Ramp { from, to } => {
                from + (to - from) * (t / duration.max(1e-9)).clamp(0.0, 1.0)
            }
            Self::Spike {
                base,
                peak,
                at_s,
                hold_s,
            } => {
                if t >= at_s && t < at_s + hold_s {
                    peak
                } else {
                    base
                }
            }
        }
    }

    /// Scheduled send offsets over `duration`: the `i`-th arrival is where the integral of
    /// the rate reaches `i` (evenly spaced while the rate is constant).
    pub fn arrivals(&self, duration: Duration) -> Vec<Duration> {
        const STEP: f64 = 0.001;
        let total = duration.as_secs_f64();
        let mut out = Vec::new();
        // Work still to be done (in arrivals) before the next one; 0 = one is due now.
        let mut due = 0.0f64;
        let mut t = 0.0f64;
        while t < total {
            let end = (t + STEP).min(total);
            let rate = self.rate_at((t + end) / 2.0, total);
            let mut cur = t;
            if rate > 0.0 {
                while due <= rate * (end - cur) + 1e-12 {
                    cur += due / rate;
                    if cur >= total - 1e-9 {
                        break;
                    }
                    out.push(Duration::from_secs_f64(cur));
                    due = 1.0;
                }
                due -= rate * (end - cur);
            }
            t = end;
        }
        out
    }
}

/// Who sends an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// A shopper of the crowd.
    Shopper,
    /// The `n`-th bot of the scenario.
    Bot(usize, BotKind),
}

impl Actor {
    /// `shopper`, or `bot:<kind>`.
    pub fn label(self) -> String {
        match self {
            Self::Shopper => "shopper".into(),
            Self::Bot(_, kind) => format!("bot:{}", kind.as_str()),
        }
    }
}

/// Kinds of abuse the front door must absorb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotKind {
    /// One device fingerprint from one address, a new user id each time.
    DeviceBurst,
    /// One user, a fresh idempotency key for every request.
    KeyRotator,
    /// One captured, validly signed request, sent again verbatim.
    Replayer,
    /// Requests with signatures that do not match.
    Forger,
    /// Requests signed with a timestamp ten minutes old.
    Stale,
    /// Correctly signed bodies that break the schema.
    Malformed,
}

impl BotKind {
    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceBurst => "device_burst",
            Self::KeyRotator => "key_rotator",
            Self::Replayer => "replayer",
            Self::Forger => "forger",
            Self::Stale => "stale",
            Self::Malformed => "malformed",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The product every order is for.
    pub product: String,
    /// The crowd's arrival rates.
    pub schedule: Schedule,
    /// Length of the arrival phase.
    pub duration: Duration,
    /// Distinct users; arrival `i` is user `i % users`.
    pub users: usize,
    /// Distinct loopback source addresses (one per user, modulo); 0 = default address.
    pub source_ips: usize,
    /// Name clients in `X-Forwarded-For` instead of binding addresses.
    pub forwarded_for: bool,
    /// Attempts per order before giving up on an unknown outcome.
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Most orders in flight at once (a safety valve, counted when hit).
    pub max_in_flight: usize,
    /// Bots and their constant rates.
    pub bots: Vec<(BotKind, f64)>,
    /// What shoppers do after a 202 (sales with a payment window); `None`: nothing.
    pub settle: Option<crate::settle::Settle>,
}

impl Plan {
    /// A crowd-only plan at a constant rate (the fault suite's stream).
    pub fn steady(
        product: &str,
        rate: f64,
        duration: Duration,
        users: usize,
        source_ips: usize,
    ) -> Self {
        Self {
            product: product.to_owned(),
            schedule: Schedule::Constant { rate },
            duration,
            users,
            source_ips,
            forwarded_for: false,
            max_attempts: 30,
            attempt_timeout: Duration::from_secs(5),
            max_in_flight: 10_000,
            bots: Vec::new(),
            settle: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_place_the_right_number_of_arrivals() {
        let ten_s = Duration::from_secs(10);
        assert_eq!(
            Schedule::Constant { rate: 100.0 }.arrivals(ten_s).len(),
            1_000
        );
        let ramp = Schedule::Ramp {
            from: 0.0,
            to: 200.0,
        }
        .arrivals(ten_s)
        .len();
        assert!((990..=1_010).contains(&ramp), "{ramp}");
        let spike = Schedule::Spike {
            base: 10.0,
            peak: 1_000.0,
            at_s: 2.0,
            hold_s: 1.0,
        };
        let n = spike.arrivals(ten_s).len();
        assert!((1_085..=1_095).contains(&n), "{n}");
        assert_eq!(spike.rate_at(2.5, 10.0), 1_000.0);
        assert_eq!(spike.rate_at(3.0, 10.0), 10.0);
    }
}
