//! The states of a sale, as every process names them.
//!
//! [`SaleState`] is the sale record's `state` field (`stores::records::sale`) as
//! operators set it and `lua/admit.lua` reads it; [`NotOpen`] is why the script refused an
//! order for a sale that is not open.

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
}
