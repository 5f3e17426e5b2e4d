//! What `flashctl reconcile` concludes about a sale, and the exit code it reports.

use serde::Serialize;

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
