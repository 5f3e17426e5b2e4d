//! The kinds of violation: refusals that say something about the client (a limit, a
//! block, a bad signature, a stale or replayed request), as the API logs and counts them
//! (`ingest_violations_total{kind}`), `lua/admit.lua` counts them per hour in Redis and
//! `flashctl violations` reports them (`ingest-api/API.md`, "Violations").

use crate::keys::Scope;

/// One kind of violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A rate limit of this scope refused (`rate_<scope>`).
    RateLimited(Scope),
    /// A block of this scope matched (`blocked_<scope>`).
    Blocked(Scope),
    /// The signature is missing, names an unknown key or does not match.
    InvalidSignature,
    /// `X-Request-Time` is missing or outside the window (a replay, or a bad clock).
    RequestExpired,
    /// An idempotency key reused for a different request.
    KeyReused,
}

impl ViolationKind {
    /// The name in logs, metrics, the Redis counters and `flashctl violations`; the
    /// admission script writes the same names (`'rate_' .. scope`, `'blocked_' .. scope`,
    /// `'key_reused'`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited(Scope::Ip) => "rate_ip",
            Self::RateLimited(Scope::Fingerprint) => "rate_fingerprint",
            Self::RateLimited(Scope::User) => "rate_user",
            Self::RateLimited(Scope::Global) => "rate_global",
            Self::Blocked(Scope::Ip) => "blocked_ip",
            Self::Blocked(Scope::Fingerprint) => "blocked_fingerprint",
            Self::Blocked(Scope::User) => "blocked_user",
            Self::Blocked(Scope::Global) => "blocked_global",
            Self::InvalidSignature => "invalid_signature",
            Self::RequestExpired => "request_expired",
            Self::KeyReused => "key_reused",
        }
    }
}

impl std::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_scripts_scheme() {
        for scope in Scope::ALL {
            assert_eq!(
                ViolationKind::RateLimited(scope).as_str(),
                format!("rate_{}", scope.as_str())
            );
            assert_eq!(
                ViolationKind::Blocked(scope).as_str(),
                format!("blocked_{}", scope.as_str())
            );
        }
    }
}
