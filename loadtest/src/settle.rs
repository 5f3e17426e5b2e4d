//! After a `202`: what each shopper does with the reservation, for sales with a payment
//! window. A share pays by the payment service's signed webhook a little later, a share
//! cancels, a share pays only after the window (and must be told `expired`), and the rest
//! never pays, so their units expire and go back on sale to later shoppers. Which shopper
//! does what follows from the arrival's number, so a run is repeatable.

use std::time::Duration;

use flashsale_client::{Answer, Client, send};
use serde::{Deserialize, Serialize};

use crate::clients::payment_request;

use crate::outcome::Outcome;

/// What shoppers do after their 202: the shares (each 0..1, together at most 1; the rest
/// never pays) and timings. A scenario's `[payments]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Share of shoppers who pay `pay_after` after their 202.
    pub pay: f64,
    /// Share who cancel `pay_after` after their 202.
    #[serde(default)]
    pub cancel: f64,
    /// Share who pay `late_after` after their 202 (past the window: told `expired`).
    #[serde(default)]
    pub pay_late: f64,
    /// When the punctual ones act.
    #[serde(with = "crate::scenario::humantime_serde")]
    pub pay_after: Duration,
    /// When the late payers pay.
    #[serde(with = "crate::scenario::humantime_serde")]
    pub late_after: Duration,
}

impl Behaviour {
    /// Rejects shares outside 0..1 or adding up to more than 1, and late payments that
    /// would arrive within the window.
    pub fn check(&self, window: Duration) -> anyhow::Result<()> {
        for (name, share) in [
            ("pay", self.pay),
            ("cancel", self.cancel),
            ("pay_late", self.pay_late),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&share),
                "payments.{name} must be within 0..1"
            );
        }
        anyhow::ensure!(
            self.pay + self.cancel + self.pay_late <= 1.0,
            "payments: pay + cancel + pay_late must be at most 1"
        );
        anyhow::ensure!(
            self.pay_late == 0.0 || self.late_after > window,
            "payments.late_after must be past the payment window"
        );
        Ok(())
    }
}

/// The behaviour, with the secret that signs the payment webhook.
#[derive(Debug, Clone)]
pub struct Settle {
    /// The payment service's webhook secret (`whsec_…`).
    pub secret: String,
    /// What shoppers do.
    pub behaviour: Behaviour,
}

/// What one shopper will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Pay in time.
    Pay,
    /// Cancel.
    Cancel,
    /// Pay after the window.
    PayLate,
    /// Never pay.
    Never,
}

impl Settle {
    /// The intent of arrival `seq` (a fixed spread of the arrival numbers over 0..1).
    pub fn intent(&self, seq: usize) -> Intent {
        let b = &self.behaviour;
        let x = ((seq as u64).wrapping_mul(2_654_435_761) % 10_000) as f64 / 10_000.0;
        if x < b.pay {
            Intent::Pay
        } else if x < b.pay + b.cancel {
            Intent::Cancel
        } else if x < b.pay + b.cancel + b.pay_late {
            Intent::PayLate
        } else {
            Intent::Never
        }
    }

    /// Acts on an accepted order and records the state the shopper was told
    /// (`Outcome::settled`). A 503 or a dropped connection is retried on the next of
    /// `clients` (one per API instance), with the same webhook id or cancel key.
    pub async fn act(&self, clients: &[Client], seq: usize, outcome: &mut Outcome) {
        let Some(order) = outcome.order_id.clone().filter(|_| outcome.status == 202) else {
            return;
        };
        let intent = self.intent(seq);
        let wait = match intent {
            Intent::Never => return,
            Intent::PayLate => self.behaviour.late_after,
            Intent::Pay | Intent::Cancel => self.behaviour.pay_after,
        };
        tokio::time::sleep(wait).await;
        let webhook_id = format!("msg_{order}");
        let cancel_key = format!("cancel-{order}");
        for attempt in 0..20 {
            let client = &clients[(seq + attempt) % clients.len().max(1)];
            let req = match intent {
                Intent::Cancel => client.cancel_request(&order, &outcome.user, &cancel_key),
                Intent::Pay | Intent::PayLate | Intent::Never => {
                    payment_request(client, &self.secret, &webhook_id, &order, "succeeded")
                }
            };
            match send(req).await {
                Ok(a) if a.status == 503 => {}
                Ok(a) => {
                    outcome.settled = Some(told(&a));
                    return;
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        outcome.settled = Some("UNKNOWN".into());
    }
}

/// The state an answer tells (`paid`, `cancelled`, `expired`), else its code.
fn told(a: &Answer) -> String {
    match a.json()["state"].as_str() {
        Some(state) if a.status == 200 || a.code() == "ORDER_NOT_RESERVED" => state.to_owned(),
        _ => a.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_follow_the_shares() {
        let s = Settle {
            secret: String::new(),
            behaviour: Behaviour {
                pay: 0.5,
                cancel: 0.1,
                pay_late: 0.1,
                pay_after: Duration::ZERO,
                late_after: Duration::ZERO,
            },
        };
        let mut n = [0usize; 4];
        for seq in 0..10_000 {
            n[s.intent(seq) as usize] += 1;
        }
        let share = |i: usize| n[i] as f64 / 10_000.0;
        assert!((share(0) - 0.5).abs() < 0.03, "{n:?}");
        assert!((share(1) - 0.1).abs() < 0.02, "{n:?}");
        assert!((share(2) - 0.1).abs() < 0.02, "{n:?}");
        assert!((share(3) - 0.3).abs() < 0.03, "{n:?}");
        assert_eq!(s.intent(7), s.intent(7));
    }

    #[test]
    fn impossible_behaviours_are_refused() {
        let mut b = Behaviour {
            pay: 0.7,
            cancel: 0.2,
            pay_late: 0.2,
            pay_after: Duration::ZERO,
            late_after: Duration::from_secs(1),
        };
        let window = Duration::from_secs(2);
        assert!(
            b.check(window)
                .expect_err("refused")
                .to_string()
                .contains("at most 1")
        );
        b.pay_late = 0.1;
        assert!(
            b.check(window)
                .expect_err("refused")
                .to_string()
                .contains("late_after")
        );
        b.late_after = Duration::from_secs(3);
        assert!(b.check(window).is_ok());
    }
}
