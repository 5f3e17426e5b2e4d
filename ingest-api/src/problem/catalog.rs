//! One error of every kind, for the test that every code is documented.

use shared::keys::Scope;
use shared::sale::NotOpen;

use super::ApiError;

impl ApiError {
    /// One error of every kind, for the tests that every code is documented in
    /// `ingest-api/API.md` and `ingest-api/openapi.yaml` under its status
    /// (`ingest-api/tests/codes.rs`, `ingest-api/tests/openapi.rs`). The exhaustive
    /// `match` makes a new variant a compile error here until it is listed.
    pub fn one_of_each() -> Vec<ApiError> {
        let all = vec![
            Self::UnsupportedMediaType,
            Self::RequestTimeout,
            Self::PayloadTooLarge { limit: 1 },
            Self::MissingIdempotencyKey,
            Self::InvalidIdempotencyKey,
            Self::InvalidSignature { reason: "test" },
            Self::RequestExpired,
            Self::Validation(vec![]),
            Self::Blocked { scope: Scope::Ip },
            Self::SaleNotFound,
            Self::SaleNotOpen {
                state: NotOpen::Halted,
            },
            Self::SoldOut,
            Self::PurchaseLimitReached { bought: 1, cap: 1 },
            Self::IdempotencyInFlight,
            Self::IdempotencyKeyReused,
            Self::RateLimited {
                scope: Scope::Ip,
                retry_after_secs: 1,
            },
            Self::RouteNotFound,
            Self::MethodNotAllowed { allow: "POST" },
            Self::CorsRejected {
                reason: "test".into(),
            },
            Self::OrderNotFound,
            Self::OrderNotReserved {
                state: shared::ReservationState::Expired,
            },
            Self::Unavailable {
                cause: "redis",
                outcome_unknown: false,
                retry_after_secs: 1,
            },
            Self::Internal(anyhow::anyhow!("test")),
        ];
        for e in &all {
            match e {
                Self::UnsupportedMediaType
                | Self::RequestTimeout
                | Self::PayloadTooLarge { .. }
                | Self::MissingIdempotencyKey
                | Self::InvalidIdempotencyKey
                | Self::InvalidSignature { .. }
                | Self::RequestExpired
                | Self::Validation(_)
                | Self::Blocked { .. }
                | Self::SaleNotFound
                | Self::SaleNotOpen { .. }
                | Self::SoldOut
                | Self::PurchaseLimitReached { .. }
                | Self::IdempotencyInFlight
                | Self::IdempotencyKeyReused
                | Self::RateLimited { .. }
                | Self::RouteNotFound
                | Self::MethodNotAllowed { .. }
                | Self::CorsRejected { .. }
                | Self::OrderNotFound
                | Self::OrderNotReserved { .. }
                | Self::Unavailable { .. }
                | Self::Internal(_) => {}
            }
        }
        all
    }
}
