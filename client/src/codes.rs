//! The stable `code` of every refusal the API answers (`ingest-api/API.md`, "Errors"):
//! one vocabulary for the API, which answers with them, and its clients.

/// Every stable `code` the API answers with. New codes may appear in later versions of the
/// API: an unknown one reads as [`ProblemCode::Unknown`] (the text stays in
/// [`Problem::raw_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemCode {
    /// 400: the body does not match the schema (see [`Problem::errors`]).
    ValidationFailed,
    /// 400: no `Idempotency-Key`.
    MissingIdempotencyKey,
    /// 400: the key breaks the format rule.
    InvalidIdempotencyKey,
    /// 400: a CORS preflight outside the policy.
    CorsRejected,
    /// 401: the signature is missing, names an unknown key or does not match.
    InvalidSignature,
    /// 401: `X-Request-Time` is missing or outside the window.
    RequestExpired,
    /// 403: a blocklist matched (see [`Problem::scope`]).
    Blocked,
    /// 404: no sale for this product.
    SaleNotFound,
    /// 404: no such order (or, for a cancel, not this user's).
    OrderNotFound,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route takes other methods.
    MethodNotAllowed,
    /// 408: the request was not received in time.
    RequestTimeout,
    /// 409: not enough stock left.
    SoldOut,
    /// 409: the sale is halted, closed or outside its window.
    SaleNotOpen,
    /// 409: the user's cap would be exceeded.
    PurchaseLimitReached,
    /// 409: the first request with this key is still being processed: retry.
    IdempotencyInFlight,
    /// 409: the order already ended otherwise (see [`Problem::state`]).
    OrderNotReserved,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: not `application/json`.
    UnsupportedMediaType,
    /// 422: the key was used for a different request.
    IdempotencyKeyReused,
    /// 429: a rate limit refused (see [`Problem::scope`], [`Problem::retry_after`]).
    RateLimitExceeded,
    /// 500: a bug on the server.
    InternalError,
    /// 503: a store is unavailable; retry with the same key (see
    /// [`Problem::outcome_unknown`]).
    Unavailable,
    /// 400: a waiting room's join needs `X-Device-Fingerprint`.
    FingerprintRequired,
    /// 401: the queue ticket or admission token is not valid.
    InvalidTicket,
    /// 401: the queue ticket or admission token has expired.
    TicketExpired,
    /// 403: the token was issued to another user, device or sale.
    NotYourTicket,
    /// 403: the product has a waiting room and the order brought no valid admission.
    NotAdmitted,
    /// 404: the product has no waiting room.
    RoomNotFound,
    /// 409: the waiting room is closed.
    RoomClosed,
    /// 409: the waiting room does not take joins yet.
    RoomNotOpen,
    /// 409: another user holds this device's ticket.
    DeviceHasTicket,
    /// 409: the waiter's turn has not come yet.
    NotYetAdmitted,
    /// 409: the waiter's turn came and the claim window passed.
    ClaimExpired,
    /// 409: the user's admission was used already.
    AdmissionUsed,
    /// 429: claims come faster than the room's rate.
    RoomThrottled,
    /// A code this version of the client does not know.
    Unknown,
}

impl ProblemCode {
    /// Every known code (not [`ProblemCode::Unknown`]).
    pub const ALL: [Self; 36] = [
        Self::ValidationFailed,
        Self::MissingIdempotencyKey,
        Self::InvalidIdempotencyKey,
        Self::CorsRejected,
        Self::InvalidSignature,
        Self::RequestExpired,
        Self::Blocked,
        Self::SaleNotFound,
        Self::OrderNotFound,
        Self::RouteNotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::SoldOut,
        Self::SaleNotOpen,
        Self::PurchaseLimitReached,
        Self::IdempotencyInFlight,
        Self::OrderNotReserved,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::IdempotencyKeyReused,
        Self::RateLimitExceeded,
        Self::InternalError,
        Self::Unavailable,
        Self::FingerprintRequired,
        Self::InvalidTicket,
        Self::TicketExpired,
        Self::NotYourTicket,
        Self::NotAdmitted,
        Self::RoomNotFound,
        Self::RoomClosed,
        Self::RoomNotOpen,
        Self::DeviceHasTicket,
        Self::NotYetAdmitted,
        Self::ClaimExpired,
        Self::AdmissionUsed,
        Self::RoomThrottled,
    ];

    /// The code as it appears in the answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::MissingIdempotencyKey => "MISSING_IDEMPOTENCY_KEY",
            Self::InvalidIdempotencyKey => "INVALID_IDEMPOTENCY_KEY",
            Self::CorsRejected => "CORS_REJECTED",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::RequestExpired => "REQUEST_EXPIRED",
            Self::Blocked => "BLOCKED",
            Self::SaleNotFound => "SALE_NOT_FOUND",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::RouteNotFound => "ROUTE_NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::SoldOut => "SOLD_OUT",
            Self::SaleNotOpen => "SALE_NOT_OPEN",
            Self::PurchaseLimitReached => "PURCHASE_LIMIT_REACHED",
            Self::IdempotencyInFlight => "IDEMPOTENCY_IN_FLIGHT",
            Self::OrderNotReserved => "ORDER_NOT_RESERVED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::Unavailable => "UNAVAILABLE",
            Self::FingerprintRequired => "FINGERPRINT_REQUIRED",
            Self::InvalidTicket => "INVALID_TICKET",
            Self::TicketExpired => "TICKET_EXPIRED",
            Self::NotYourTicket => "NOT_YOUR_TICKET",
            Self::NotAdmitted => "NOT_ADMITTED",
            Self::RoomNotFound => "ROOM_NOT_FOUND",
            Self::RoomClosed => "ROOM_CLOSED",
            Self::RoomNotOpen => "ROOM_NOT_OPEN",
            Self::DeviceHasTicket => "DEVICE_HAS_TICKET",
            Self::NotYetAdmitted => "NOT_YET_ADMITTED",
            Self::ClaimExpired => "CLAIM_EXPIRED",
            Self::AdmissionUsed => "ADMISSION_USED",
            Self::RoomThrottled => "ROOM_THROTTLED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// The code named `raw` ([`ProblemCode::Unknown`] for any other text).
    pub fn parse(raw: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == raw)
            .unwrap_or(Self::Unknown)
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in ProblemCode::ALL {
            assert_eq!(ProblemCode::parse(code.as_str()), code);
        }
        assert_eq!(ProblemCode::parse("NEW_CODE"), ProblemCode::Unknown);
    }
}
