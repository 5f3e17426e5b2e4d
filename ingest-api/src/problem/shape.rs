//! Each error's answer, in two exhaustive matches: its [`Shape`] and its detail.

use actix_web::http::StatusCode;
use flashsale_client::ProblemCode;
use shared::ViolationKind;

use super::ApiError;
use super::parts::Shape;

impl ApiError {
    /// Status, code, title, `Retry-After`, `Allow`, closing, violation and extra member,
    /// in one exhaustive match.
    pub(super) fn shape(&self) -> Shape {
        use ProblemCode as C;
        use StatusCode as S;
        match self {
            Self::UnsupportedMediaType => Shape::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                C::UnsupportedMediaType,
                "Unsupported media type",
            ),
            Self::PayloadTooLarge { .. } => Shape::new(
                S::PAYLOAD_TOO_LARGE,
                C::PayloadTooLarge,
                "Payload too large",
            )
            .closes(),
            Self::RequestTimeout => {
                Shape::new(S::REQUEST_TIMEOUT, C::RequestTimeout, "Request timeout").closes()
            }
            Self::MissingIdempotencyKey => Shape::new(
                S::BAD_REQUEST,
                C::MissingIdempotencyKey,
                "Missing idempotency key",
            ),
            Self::InvalidIdempotencyKey => Shape::new(
                S::BAD_REQUEST,
                C::InvalidIdempotencyKey,
                "Invalid idempotency key",
            ),
            Self::InvalidSignature { .. } => {
                Shape::new(S::UNAUTHORIZED, C::InvalidSignature, "Invalid signature")
                    .violation(ViolationKind::InvalidSignature)
            }
            Self::RequestExpired => {
                Shape::new(S::UNAUTHORIZED, C::RequestExpired, "Request expired")
                    .violation(ViolationKind::RequestExpired)
            }
            Self::Validation(errors) => {
                Shape::new(S::BAD_REQUEST, C::ValidationFailed, "Validation failed")
                    .extra("errors", serde_json::json!(errors))
            }
            Self::Blocked { scope } => Shape::new(S::FORBIDDEN, C::Blocked, "Blocked")
                .violation(ViolationKind::Blocked(*scope))
                .extra("scope", scope.as_str()),
            Self::SaleNotFound => Shape::new(S::NOT_FOUND, C::SaleNotFound, "Sale not found"),
            Self::SaleNotOpen { .. } => Shape::new(S::CONFLICT, C::SaleNotOpen, "Sale not open"),
            Self::SoldOut => Shape::new(S::CONFLICT, C::SoldOut, "Sold out"),
            Self::PurchaseLimitReached { .. } => Shape::new(
                S::CONFLICT,
                C::PurchaseLimitReached,
                "Purchase limit reached",
            ),
            Self::IdempotencyInFlight => Shape::new(
                S::CONFLICT,
                C::IdempotencyInFlight,
                "Request with this key is in flight",
            )
            .retry_after(1),
            Self::IdempotencyKeyReused => Shape::new(
                S::UNPROCESSABLE_ENTITY,
                C::IdempotencyKeyReused,
                "Idempotency key reused",
            )
            .violation(ViolationKind::KeyReused),
            Self::RateLimited {
                scope,
                retry_after_secs,
            } => Shape::new(
                S::TOO_MANY_REQUESTS,
                C::RateLimitExceeded,
                "Rate limit exceeded",
            )
            .retry_after(*retry_after_secs)
            .violation(ViolationKind::RateLimited(*scope))
            .extra("scope", scope.as_str()),
            Self::OrderNotFound => Shape::new(S::NOT_FOUND, C::OrderNotFound, "Order not found"),
            Self::OrderNotReserved { state } => {
                Shape::new(S::CONFLICT, C::OrderNotReserved, "Order not reserved")
                    .extra("state", state.as_str())
            }
            Self::RouteNotFound => Shape::new(S::NOT_FOUND, C::RouteNotFound, "Not found"),
            Self::MethodNotAllowed { allow } => Shape {
                allow: Some(allow),
                ..Shape::new(
                    S::METHOD_NOT_ALLOWED,
                    C::MethodNotAllowed,
                    "Method not allowed",
                )
            },
            Self::CorsRejected { .. } => {
                Shape::new(S::BAD_REQUEST, C::CorsRejected, "CORS request rejected")
            }
            Self::Unavailable {
                outcome_unknown,
                retry_after_secs,
                ..
            } => Shape::new(
                S::SERVICE_UNAVAILABLE,
                C::Unavailable,
                "Service temporarily unavailable",
            )
            .retry_after(*retry_after_secs)
            .extra("outcomeUnknown", *outcome_unknown),
            Self::Room(r) => super::room::shape(r),
            Self::Internal(_) => Shape::new(
                S::INTERNAL_SERVER_ERROR,
                C::InternalError,
                "Internal server error",
            ),
        }
    }

    /// Human-readable detail for the answer; never internal.
    pub(super) fn detail(&self) -> String {
        match self {
            Self::UnsupportedMediaType => "Content-Type must be application/json".into(),
            Self::PayloadTooLarge { limit } => format!("the body must be at most {limit} bytes"),
            Self::RequestTimeout => "the body was not received in time".into(),
            Self::MissingIdempotencyKey => {
                "send an Idempotency-Key header (8 to 128 characters of [A-Za-z0-9_-])".into()
            }
            Self::InvalidIdempotencyKey => {
                "Idempotency-Key must be 8 to 128 characters of [A-Za-z0-9_-]".into()
            }
            Self::InvalidSignature { reason } => (*reason).into(),
            Self::RequestExpired => {
                "X-Request-Time must be the current Unix time in milliseconds".into()
            }
            Self::Validation(_) => "the body does not match the schema of this request".into(),
            Self::Blocked { scope } => format!("this {} is blocked for this sale", scope.as_str()),
            Self::SaleNotFound => "there is no sale for this product".into(),
            Self::SaleNotOpen { state } => format!("the sale is not open ({})", state.as_str()),
            Self::SoldOut => "not enough stock left for this order".into(),
            Self::PurchaseLimitReached { bought, cap } => {
                format!("this user already holds {bought} of at most {cap} units")
            }
            Self::IdempotencyInFlight => {
                "the first request with this key is still being processed; retry later".into()
            }
            Self::IdempotencyKeyReused => {
                "this Idempotency-Key was used for a different request".into()
            }
            Self::RateLimited { scope, .. } => {
                format!("too many requests for this {}", scope.as_str())
            }
            Self::OrderNotFound => "no order with this id".into(),
            Self::OrderNotReserved { state } => {
                format!("the order is {}: it can no longer be paid or cancelled", state.as_str())
            }
            Self::RouteNotFound => {
                "no such resource; see POST /order, GET /order/{id}, POST /order/{id}/cancel and POST /webhooks/payment".into()
            }
            Self::MethodNotAllowed { allow } => format!(
                "this resource takes {allow} (POST /order, GET /order/{{id}}, POST /order/{{id}}/cancel, POST /webhooks/payment)"
            ),
            Self::CorsRejected { .. } => {
                "this cross-origin request is outside the CORS policy (origin, method or headers)".into()
            }
            Self::Unavailable {
                outcome_unknown: false,
                ..
            } => "nothing was taken; try again later".into(),
            Self::Unavailable {
                outcome_unknown: true,
                ..
            } => "the outcome is not known yet; retry with the same Idempotency-Key to learn it"
                .into(),
            Self::Room(r) => super::room::detail(r),
            Self::Internal(_) => "internal error".into(),
        }
    }
}
