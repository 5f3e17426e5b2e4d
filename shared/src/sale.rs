//! The states of a sale and the verdicts about it, as every process names them.
//!
//! [`SaleState`] is the sale hash's `state` field (see [`crate::keys::sale_field`]) as
//! operators set it and `lua/admit.lua` reads it; [`NotOpen`] is why the script refused an
//! order for a sale that is not open; [`Verdict`] is what `flashctl reconcile` concludes,
//! with its exit code.

use serde::Serialize;

use crate::DomainError;

/// The stored state of a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleState {
    /// Admitting orders (within its window, if it has one).
    Open,
    /// Refusing every order with `SALE_NOT_OPEN` until resumed.
    Halted,
    /// Ended for good.
    Closed,
}

impl SaleState {
    /// The value of the `state` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Halted => "halted",
            Self::Closed => "closed",
        }
    }

    /// The state stored as `s`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "open" => Ok(Self::Open),
            "halted" => Ok(Self::Halted),
            "closed" => Ok(Self::Closed),
            _ => Err(DomainError::UnknownState { what: "sale" }),
        }
    }
}

/// Why a sale that exists does not admit orders now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotOpen {
    /// An operator halted it.
    Halted,
    /// It was closed.
    Closed,
    /// Its window has not started.
    Scheduled,
    /// Its window is over.
    Ended,
}

impl NotOpen {
    /// The text in `lua/admit.lua`'s reply and in the `SALE_NOT_OPEN` answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Halted => "halted",
            Self::Closed => "closed",
            Self::Scheduled => "scheduled",
            Self::Ended => "ended",
        }
    }

    /// The reason named `s`; an unknown stored state counts as closed (never as open).
    pub fn parse(s: &str) -> Self {
        match s {
            "halted" => Self::Halted,
            "scheduled" => Self::Scheduled,
            "ended" => Self::Ended,
            _ => Self::Closed,
        }
    }
}

/// What a reconciliation of Redis with PostgreSQL concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every unit taken in Redis is persisted or still in the outbox.
    Consistent,
    /// Units taken that no order explains, or rows that disagree with `sales.sold`.
    Drift,
    /// Orders are still on their way (worker lag or pending hand-off).
    Settling,
    /// Redis has no state for the sale.
    RedisMissing,
}

impl Verdict {
    /// Its name in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consistent => "consistent",
            Self::Drift => "drift",
            Self::Settling => "settling",
            Self::RedisMissing => "redis-missing",
        }
    }

    /// `flashctl`'s exit code for it: 0 consistent, 3 drift (a missing Redis sale is
    /// drift too: the stores disagree), 6 still settling.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Consistent => 0,
            Self::Drift | Self::RedisMissing => 3,
            Self::Settling => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [SaleState::Open, SaleState::Halted, SaleState::Closed] {
            assert_eq!(SaleState::parse(s.as_str()), Ok(s));
        }
        assert!(SaleState::parse("opened").is_err());
        for n in [
            NotOpen::Halted,
            NotOpen::Closed,
            NotOpen::Scheduled,
            NotOpen::Ended,
        ] {
            assert_eq!(NotOpen::parse(n.as_str()), n);
        }
        assert_eq!(NotOpen::parse("???"), NotOpen::Closed);
    }

    #[test]
    fn verdicts_serialize_as_they_print() {
        for v in [
            Verdict::Consistent,
            Verdict::Drift,
            Verdict::Settling,
            Verdict::RedisMissing,
        ] {
            let json = serde_json::to_string(&v).expect("serializes");
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
    }
}
