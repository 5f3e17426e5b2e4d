//! The business side's errors as [`ApiError`]s: a [`Refusal`] of the order pipeline, a
//! [`SignatureError`] of the front door, a [`LookupError`] of `GET /order/{id}`, an
//! [`EndRefusal`] of a cancel or a payment, a [`RoomRefusal`] or [`RoomError`] of the
//! waiting room (and a token's error as the room's refusal).

use super::ApiError;
use crate::order::admission::{Dependency, Refusal};
use crate::order::front_door::SignatureError;
use crate::order::lookup::LookupError;
use crate::order::reservations::EndRefusal;
use crate::order::room::{RoomError, RoomRefusal};

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::InFlight => Self::IdempotencyInFlight,
            Refusal::KeyReused => Self::IdempotencyKeyReused,
            Refusal::SaleNotFound => Self::SaleNotFound,
            Refusal::SaleNotOpen { state } => Self::SaleNotOpen { state },
            Refusal::Blocked { scope } => Self::Blocked { scope },
            Refusal::RateLimited {
                scope,
                retry_after_ms,
            } => Self::RateLimited {
                scope,
                retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
            },
            Refusal::PurchaseLimitReached { bought, cap } => {
                Self::PurchaseLimitReached { bought, cap }
            }
            Refusal::SoldOut { .. } => Self::SoldOut,
            Refusal::Unavailable {
                dependency,
                outcome_unknown,
            } => Self::Unavailable {
                cause: dependency.as_str(),
                outcome_unknown,
                retry_after_secs: match dependency {
                    Dependency::Redis => 1,
                    Dependency::Kafka => 2,
                },
            },
            Refusal::NotAdmitted { why } => Self::Room(RoomRefusal::NotAdmitted { why }),
            Refusal::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::Expired => Self::RequestExpired,
            SignatureError::Missing => Self::InvalidSignature {
                reason: "X-Signature is missing",
            },
            SignatureError::UnknownKey => Self::InvalidSignature {
                reason: "X-Key-Id does not name a configured key",
            },
            SignatureError::Mismatch => Self::InvalidSignature {
                reason: "the signature does not match the request",
            },
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::Unavailable(_) => Self::Unavailable {
                cause: "redis",
                outcome_unknown: false,
                retry_after_secs: 1,
            },
            LookupError::Corrupt(e) => Self::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<EndRefusal> for ApiError {
    fn from(e: EndRefusal) -> Self {
        match e {
            EndRefusal::NotFound => Self::OrderNotFound,
            EndRefusal::NotReserved(state) => Self::OrderNotReserved { state },
            EndRefusal::InFlight => Self::Unavailable {
                cause: "handoff",
                outcome_unknown: false,
                retry_after_secs: 1,
            },
            EndRefusal::Unavailable(_) => Self::Unavailable {
                cause: "redis",
                outcome_unknown: true,
                retry_after_secs: 1,
            },
        }
    }
}

impl From<RoomRefusal> for ApiError {
    fn from(r: RoomRefusal) -> Self {
        Self::Room(r)
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::Room(r) => Self::Room(r),
            RoomError::Order(r) => r.into(),
        }
    }
}

impl From<shared::room::TokenError> for RoomRefusal {
    fn from(e: shared::room::TokenError) -> Self {
        match e {
            shared::room::TokenError::Invalid => Self::InvalidTicket,
            shared::room::TokenError::Expired => Self::TicketExpired,
            shared::room::TokenError::NotYours => Self::NotYourTicket,
        }
    }
}
