//! Scenario files: what a load run does, in TOML.
//!
//! ```toml
//! name = "ci"
//! duration = "20s"
//! schedule = { kind = "spike", base = 100, peak = 600, at_s = 3, hold_s = 4 }
//!
//! [sale]
//! stock = 400
//! per_user = 1
//! limits = { ip = "10/s:20", fingerprint = "5/s:10", user = "2/s:5", global = "5000/s:10000" }
//! shards = 3              # optional: the stock spread over 3 shards (default 1)
//!
//! [crowd]
//! users = 20000
//! source_ips = 1000       # distinct 127.x.y.z source addresses
//! max_attempts = 5        # per order, while the outcome is unknown
//! attempt_timeout = "5s"
//!
//! [[bots]]
//! kind = "device_burst"   # one device and one address, many user ids
//! rate = 40
//!
//! [payments]              # with sale.payment_window = "2s": what shoppers do after a 202
//! pay = 0.6               # pay by the payment webhook pay_after later
//! cancel = 0.05           # cancel pay_after later
//! pay_late = 0.05         # pay late_after later, past the window (told `expired`)
//! pay_after = "500ms"     # the rest never pay: their units go back on sale
//! late_after = "4s"
//! ```
//!
//! Bot kinds: `device_burst`, `key_rotator` (one user, a fresh key each time),
//! `replayer` (one captured request sent again and again), `forger` (bad signatures),
//! `stale` (timestamps from the past), `malformed` (bodies that fail the schema).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::traffic::{BotKind, Schedule};

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, used in the results folder and the product id.
    pub name: String,
    /// Length of the arrival phase.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Shoppers' arrival rate over time.
    pub schedule: Schedule,
    /// The sale the run opens.
    pub sale: Sale,
    /// The shoppers.
    pub crowd: Crowd,
    /// The bots, each a separate arrival stream at a constant rate.
    #[serde(default)]
    pub bots: Vec<Bot>,
    /// What shoppers do after their 202 (needs `sale.payment_window`); absent: nothing,
    /// every reservation stays.
    #[serde(default)]
    pub payments: Option<crate::settle::Behaviour>,
}

/// The sale under load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sale {
    /// Units on sale.
    pub stock: u32,
    /// Most units per user (0 = none).
    #[serde(default)]
    pub per_user: u32,
    /// Limits per scope (`ip`, `fingerprint`, `user`, `global`): `RATE/PERIOD:BURST` or
    /// `off`; unlisted scopes get the defaults.
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
    /// Time an accepted order has to be paid before its units go back on sale
    /// (`flashctl sale open --payment-window`); absent: reservations never expire.
    #[serde(default, with = "humantime_serde::option")]
    pub payment_window: Option<Duration>,
    /// Shards the stock is spread over (`flashctl sale open --shards`; on a Redis Cluster
    /// each on a master of its own); absent: 1, unsharded.
    #[serde(default = "one")]
    pub shards: u32,
}

fn one() -> u32 {
    1
}

/// The shoppers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crowd {
    /// Distinct users (arrival `i` is user `i % users`).
    pub users: usize,
    /// Distinct loopback source addresses (0: one address).
    #[serde(default)]
    pub source_ips: usize,
    /// Send the client address in `X-Forwarded-For` instead of binding sockets (the API
    /// must trust 127.0.0.0/8 as a proxy).
    #[serde(default)]
    pub forwarded_for: bool,
    /// Attempts per order while the outcome is unknown.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// Per-attempt timeout.
    #[serde(default = "defaults::attempt_timeout", with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Most orders in flight.
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: usize,
}

/// One bot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bot {
    /// What it does.
    pub kind: BotKind,
    /// Requests per second, for the whole run.
    pub rate: f64,
}

mod defaults {
    use std::time::Duration;
    pub fn max_attempts() -> u32 {
        5
    }
    pub fn attempt_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn max_in_flight() -> usize {
        20_000
    }
}

/// `humantime` strings (`20s`, `2m`) for durations in TOML.
pub(crate) mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let raw = String::deserialize(d)?;
        humantime::parse_duration(&raw).map_err(serde::de::Error::custom)
    }

    /// The same for an optional duration.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let s: Self =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        s.check()?;
        Ok(s)
    }

    /// Rejects scenarios that cannot run.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.duration.is_zero(), "duration must be positive");
        anyhow::ensure!(self.crowd.users > 0, "crowd.users must be positive");
        anyhow::ensure!(
            self.crowd.max_attempts > 0,
            "crowd.max_attempts must be positive"
        );
        for (scope, limit) in &self.sale.limits {
            anyhow::ensure!(
                shared::keys::Scope::parse(scope).is_some(),
                "sale.limits: unknown scope {scope:?}"
            );
            flashctl::guard::parse_limit(limit)
                .map_err(|e| anyhow::anyhow!("sale.limits.{scope}: {e}"))?;
        }
        match (&self.payments, self.sale.payment_window) {
            (Some(p), Some(window)) if !window.is_zero() => p.check(window)?,
            (Some(_), _) => anyhow::bail!("[payments] needs a sale.payment_window"),
            (None, _) => {}
        }
        for b in &self.bots {
            anyhow::ensure!(
                b.rate > 0.0,
                "bot {} needs a positive rate",
                b.kind.as_str()
            );
        }
        Ok(())
    }

    /// The sale's limits as `flashctl` applies them.
    pub fn limits(&self) -> anyhow::Result<flashctl::guard::Limits> {
        let mut all = flashctl::guard::Limits::defaults();
        for (scope, limit) in &self.sale.limits {
            let scope = shared::keys::Scope::parse(scope)
                .ok_or_else(|| anyhow::anyhow!("unknown scope {scope}"))?;
            all.0.insert(scope, flashctl::guard::parse_limit(limit)?);
        }
        Ok(all)
    }
}

impl Scenario {
    /// The most one bot may buy under this sale's rules during the run (`None`:
    /// unbounded, the relevant limits are off).
    pub fn allowance(&self, kind: BotKind) -> anyhow::Result<Option<i64>> {
        use shared::keys::Scope;
        let limits = self.limits()?;
        let within = |scope: Scope| -> Option<i64> {
            let l = (*limits.0.get(&scope)?)?;
            let t = l.emission_interval_us();
            Some(i64::from(l.burst) + (self.duration.as_micros() as u64 / t) as i64 + 1)
        };
        let cap = (self.sale.per_user > 0).then_some(i64::from(self.sale.per_user));
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(match kind {
            // One device from one address: its tightest limit.
            BotKind::DeviceBurst => min(within(Scope::Ip), within(Scope::Fingerprint)),
            // One user: the cap, or the user's limit.
            BotKind::KeyRotator => min(cap, within(Scope::User)),
            // One request, replayed: one order at most.
            BotKind::Replayer => Some(1),
            BotKind::Forger | BotKind::Stale | BotKind::Malformed => Some(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scenarios_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("scenarios folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            // Waiting-room scenarios (`loadtest room`) are a type of their own.
            if path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.starts_with("waiting-room"))
            {
                crate::room::RoomScenario::load(&path).expect("valid room scenario");
            } else {
                let s = Scenario::load(&path).expect("valid scenario");
                assert!(s.limits().is_ok());
            }
            n += 1;
        }
        assert!(n >= 2);
    }

    #[test]
    fn allowances_follow_the_rules() {
        let s: Scenario = toml::from_str(
            r#"
            name = "x"
            duration = "10s"
            schedule = { kind = "constant", rate = 10 }
            [sale]
            stock = 1
            per_user = 2
            limits = { ip = "1/s:5", fingerprint = "2/s:3" }
            [crowd]
            users = 1
        "#,
        )
        .expect("parses");
        // ip: 5 + 10 s × 1/s (+1 for the edge); fingerprint: 3 + 20 + 1. The smaller wins.
        assert_eq!(s.allowance(BotKind::DeviceBurst).expect("ok"), Some(16));
        assert_eq!(s.allowance(BotKind::KeyRotator).expect("ok"), Some(2));
        assert_eq!(s.allowance(BotKind::Forger).expect("ok"), Some(0));
    }

    #[test]
    fn mistakes_are_named() {
        let bad = r#"
            name = "x"
            duration = "1s"
            schedule = { kind = "constant", rate = 10 }
            [sale]
            stock = 1
            limits = { planet = "1/s:1" }
            [crowd]
            users = 1
        "#;
        let s: Scenario = toml::from_str(bad).expect("parses");
        assert!(
            s.check()
                .expect_err("unknown scope")
                .to_string()
                .contains("planet")
        );
        let typo = bad.replace("users = 1", "userz = 1");
        assert!(toml::from_str::<Scenario>(&typo).is_err());
    }
}
