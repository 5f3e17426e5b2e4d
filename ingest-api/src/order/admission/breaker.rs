//! A circuit breaker in front of Redis.
//!
//! After `threshold` consecutive failures the breaker opens and orders fail closed at
//! once (503, nothing taken) instead of each waiting for a timeout; after `cooldown` one
//! request probes Redis, and a success closes the breaker again. Recovery needs no
//! operator.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; if it never reports back (its request was dropped), another may
    /// go after `until`.
    HalfOpen {
        until: Instant,
    },
}

/// Tracks Redis health from the outcomes of real calls.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    /// Opens after `threshold` consecutive failures, probes after `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cooldown,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go to Redis now. While open, `false`; the first caller after
    /// the cooldown gets `true` as the probe.
    pub fn allow(&self) -> bool {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { until } if Instant::now() >= until => {
                *state = State::HalfOpen {
                    until: Instant::now() + self.cooldown,
                };
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    /// A call succeeded.
    pub fn success(&self) {
        *self.state() = State::Closed { failures: 0 };
    }

    /// A call failed (connection, timeout).
    pub fn failure(&self) {
        let mut state = self.state();
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            State::Closed { .. } | State::Open { .. } | State::HalfOpen { .. } => State::Open {
                until: Instant::now() + self.cooldown,
            },
        };
    }

    /// Whether the breaker currently refuses calls.
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_probes_and_closes() {
        let b = Breaker::new(3, Duration::from_secs(1));
        b.failure();
        b.failure();
        assert!(b.allow(), "two failures: still closed");
        b.failure();
        assert!(!b.allow(), "three: open");
        assert!(b.is_open());
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!b.allow());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(b.allow(), "the probe");
        assert!(!b.allow(), "only one probe at a time");
        b.failure();
        assert!(!b.allow(), "failed probe: open again");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.allow());
        b.success();
        assert!(b.allow() && b.allow(), "closed again");
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_probe_does_not_close_the_door_forever() {
        let b = Breaker::new(1, Duration::from_secs(1));
        b.failure();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.allow(), "probe");
        // The probe's request is dropped: it never reports success or failure.
        assert!(!b.allow());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.allow(), "another probe after the cooldown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(1));
        b.failure();
        b.success();
        b.failure();
        assert!(b.allow());
    }
}
