//! One error of every kind, for the test that every code is documented.

use shared::keys::Scope;
use shared::sale::NotOpen;

use super::ApiError;
use crate::order::room::RoomRefusal;

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
        let mut all = all;
        all.extend(rooms().into_iter().map(Self::Room));
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
                | Self::Room(_)
                | Self::Internal(_) => {}
            }
        }
        all
    }
}

/// One refusal of the waiting room of every kind (the exhaustive `match` keeps the list
/// whole).
fn rooms() -> Vec<RoomRefusal> {
    let all = vec![
        RoomRefusal::NotFound,
        RoomRefusal::Closed,
        RoomRefusal::NotOpenYet {
            retry_after_secs: 1,
        },
        RoomRefusal::FingerprintRequired,
        RoomRefusal::DeviceHasTicket,
        RoomRefusal::InvalidTicket,
        RoomRefusal::TicketExpired,
        RoomRefusal::NotYourTicket,
        RoomRefusal::NotYetAdmitted {
            position: 2,
            served: 1,
        },
        RoomRefusal::ClaimExpired,
        RoomRefusal::AdmissionUsed,
        RoomRefusal::NotAdmitted {
            why: "missing".into(),
        },
        RoomRefusal::Throttled { retry_after_ms: 1 },
    ];
    for r in &all {
        match r {
            RoomRefusal::NotFound
            | RoomRefusal::Closed
            | RoomRefusal::NotOpenYet { .. }
            | RoomRefusal::FingerprintRequired
            | RoomRefusal::DeviceHasTicket
            | RoomRefusal::InvalidTicket
            | RoomRefusal::TicketExpired
            | RoomRefusal::NotYourTicket
            | RoomRefusal::NotYetAdmitted { .. }
            | RoomRefusal::ClaimExpired
            | RoomRefusal::AdmissionUsed
            | RoomRefusal::NotAdmitted { .. }
            | RoomRefusal::Throttled { .. } => {}
        }
    }
    all
}
