//! Every way a request can fail, and the one place that turns it into HTTP.
//!
//! Each variant has a stable machine `code` (`ingest-api/API.md`), a status, and an
//! `application/problem+json` body (RFC 9457). The business side's errors —
//! [`Refusal`], [`SignatureError`], [`LookupError`] — become an [`ApiError`] here and
//! nowhere else. Every mapping is an exhaustive `match` without a catch-all arm, so a new
//! variant does not compile until it has an answer. A 500 body says nothing internal; the
//! log carries the full error chain.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde::Serialize;
use shared::keys::Scope;
use shared::sale::NotOpen;

use crate::order::lookup::LookupError;
use crate::order::{Dependency, Refusal, SignatureError};

/// One JSON Schema violation, pointing into the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending value; `""` is the whole body.
    pub pointer: String,
    /// What is wrong, without echoing the value.
    pub detail: String,
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `Content-Type` is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body did not arrive within the request timeout.
    #[error("request body timed out")]
    RequestTimeout,
    /// The body is larger than the limit.
    #[error("payload larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No `Idempotency-Key` header.
    #[error("missing Idempotency-Key")]
    MissingIdempotencyKey,
    /// The key breaks the format rule.
    #[error("invalid Idempotency-Key")]
    InvalidIdempotencyKey,
    /// Signature absent, malformed, unknown key id, or wrong.
    #[error("invalid signature: {reason}")]
    InvalidSignature {
        /// For the log and the answer's detail; never includes secrets.
        reason: &'static str,
    },
    /// `X-Request-Time` missing, malformed or outside the window.
    #[error("request expired or not yet valid")]
    RequestExpired,
    /// The body does not match the schema.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A blocklist matched.
    #[error("blocked ({})", scope.as_str())]
    Blocked {
        /// What was blocked.
        scope: Scope,
    },
    /// No sale for this product.
    #[error("sale not found")]
    SaleNotFound,
    /// Halted, closed, or outside the window.
    #[error("sale not open ({})", state.as_str())]
    SaleNotOpen {
        /// Why.
        state: NotOpen,
    },
    /// No stock left for this quantity.
    #[error("sold out")]
    SoldOut,
    /// The user's cap would be exceeded.
    #[error("purchase limit reached ({bought} of {cap})")]
    PurchaseLimitReached {
        /// Units the user already holds.
        bought: u64,
        /// The cap.
        cap: u64,
    },
    /// Same key, first request still being handed off.
    #[error("idempotency key in flight")]
    IdempotencyInFlight,
    /// Same key, different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// A limit refused the request.
    #[error("rate limit exceeded ({})", scope.as_str())]
    RateLimited {
        /// Which limit.
        scope: Scope,
        /// When to try again.
        retry_after_secs: u64,
    },
    /// No such route.
    #[error("route not found")]
    RouteNotFound,
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `GET /order/{id}` for an unknown (or expired) order.
    #[error("order not found")]
    OrderNotFound,
    /// Redis or Kafka is unreachable. Either nothing was taken (Redis refused the
    /// connection, or the circuit breaker is open), or the outcome is unknown (Redis
    /// timed out and may still run the admission; Kafka did not confirm an accepted
    /// order) and a retry with the same key tells it.
    #[error("unavailable: {cause}")]
    Unavailable {
        /// For the log: which dependency failed.
        cause: &'static str,
        /// Whether the order may stand (retry with the same key to learn it).
        outcome_unknown: bool,
        /// When to try again.
        retry_after_secs: u64,
    },
    /// A bug. The answer says nothing more than "internal error".
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// Status, code and title, in one exhaustive match.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Unsupported media type",
            ),
            Self::PayloadTooLarge { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "Payload too large",
            ),
            Self::RequestTimeout => (S::REQUEST_TIMEOUT, "REQUEST_TIMEOUT", "Request timeout"),
            Self::MissingIdempotencyKey => (
                S::BAD_REQUEST,
                "MISSING_IDEMPOTENCY_KEY",
                "Missing idempotency key",
            ),
            Self::InvalidIdempotencyKey => (
                S::BAD_REQUEST,
                "INVALID_IDEMPOTENCY_KEY",
                "Invalid idempotency key",
            ),
            Self::InvalidSignature { .. } => {
                (S::UNAUTHORIZED, "INVALID_SIGNATURE", "Invalid signature")
            }
            Self::RequestExpired => (S::UNAUTHORIZED, "REQUEST_EXPIRED", "Request expired"),
            Self::Validation(_) => (S::BAD_REQUEST, "VALIDATION_FAILED", "Validation failed"),
            Self::Blocked { .. } => (S::FORBIDDEN, "BLOCKED", "Blocked"),
            Self::SaleNotFound => (S::NOT_FOUND, "SALE_NOT_FOUND", "Sale not found"),
            Self::SaleNotOpen { .. } => (S::CONFLICT, "SALE_NOT_OPEN", "Sale not open"),
            Self::SoldOut => (S::CONFLICT, "SOLD_OUT", "Sold out"),
            Self::PurchaseLimitReached { .. } => (
                S::CONFLICT,
                "PURCHASE_LIMIT_REACHED",
                "Purchase limit reached",
            ),
            Self::IdempotencyInFlight => (
                S::CONFLICT,
                "IDEMPOTENCY_IN_FLIGHT",
                "Request with this key is in flight",
            ),
            Self::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency key reused",
            ),
            Self::RateLimited { .. } => (
                S::TOO_MANY_REQUESTS,
                "RATE_LIMIT_EXCEEDED",
                "Rate limit exceeded",
            ),
            Self::OrderNotFound => (S::NOT_FOUND, "ORDER_NOT_FOUND", "Order not found"),
            Self::RouteNotFound => (S::NOT_FOUND, "ROUTE_NOT_FOUND", "Not found"),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "Method not allowed",
            ),
            Self::Unavailable { .. } => (
                S::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "Service temporarily unavailable",
            ),
            Self::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Internal server error",
            ),
        }
    }

    /// One error of every kind, for the test that every code is documented in
    /// `ingest-api/API.md` under its status (`ingest-api/tests/codes.rs`). The exhaustive
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
            Self::MethodNotAllowed,
            Self::OrderNotFound,
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
                | Self::MethodNotAllowed
                | Self::OrderNotFound
                | Self::Unavailable { .. }
                | Self::Internal(_) => {}
            }
        }
        all
    }

    /// Human-readable detail for the answer; never internal.
    fn detail(&self) -> String {
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
            Self::Validation(_) => "the body does not match the order schema".into(),
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
            Self::RouteNotFound => "no such resource; see POST /order and GET /order/{id}".into(),
            Self::MethodNotAllowed => "POST /order, GET /order/{id}".into(),
            Self::Unavailable {
                outcome_unknown: false,
                ..
            } => "nothing was taken; try again later".into(),
            Self::Unavailable {
                outcome_unknown: true,
                ..
            } => "the outcome is not known yet; retry with the same Idempotency-Key to learn it"
                .into(),
            Self::Internal(_) => "internal error".into(),
        }
    }

    /// The violation type this refusal counts as, if it is one (limits, blocks,
    /// signatures, replays).
    pub fn violation(&self) -> Option<&'static str> {
        match self {
            Self::RateLimited { scope, .. } => Some(match scope {
                Scope::Ip => "rate_ip",
                Scope::Fingerprint => "rate_fingerprint",
                Scope::User => "rate_user",
                Scope::Global => "rate_global",
            }),
            Self::Blocked { scope } => Some(match scope {
                Scope::Ip => "blocked_ip",
                Scope::Fingerprint => "blocked_fingerprint",
                Scope::User => "blocked_user",
                Scope::Global => "blocked_global",
            }),
            Self::InvalidSignature { .. } => Some("invalid_signature"),
            Self::RequestExpired => Some("request_expired"),
            Self::IdempotencyKeyReused => Some("key_reused"),
            Self::UnsupportedMediaType
            | Self::RequestTimeout
            | Self::PayloadTooLarge { .. }
            | Self::MissingIdempotencyKey
            | Self::InvalidIdempotencyKey
            | Self::Validation(_)
            | Self::SaleNotFound
            | Self::SaleNotOpen { .. }
            | Self::SoldOut
            | Self::PurchaseLimitReached { .. }
            | Self::IdempotencyInFlight
            | Self::RouteNotFound
            | Self::MethodNotAllowed
            | Self::OrderNotFound
            | Self::Unavailable { .. }
            | Self::Internal(_) => None,
        }
    }

    /// Seconds for `Retry-After`, where the answer calls for one.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::IdempotencyInFlight => Some(1),
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
            | Self::IdempotencyKeyReused
            | Self::RouteNotFound
            | Self::MethodNotAllowed
            | Self::OrderNotFound
            | Self::Internal(_) => None,
        }
    }

    /// Members of the problem body beyond the standard ones.
    fn extensions(&self, body: &mut serde_json::Value) {
        match self {
            Self::Validation(errors) => body["errors"] = serde_json::json!(errors),
            Self::RateLimited { scope, .. } | Self::Blocked { scope } => {
                body["scope"] = scope.as_str().into();
            }
            Self::Unavailable {
                outcome_unknown, ..
            } => body["outcomeUnknown"] = (*outcome_unknown).into(),
            Self::UnsupportedMediaType
            | Self::RequestTimeout
            | Self::PayloadTooLarge { .. }
            | Self::MissingIdempotencyKey
            | Self::InvalidIdempotencyKey
            | Self::InvalidSignature { .. }
            | Self::RequestExpired
            | Self::SaleNotFound
            | Self::SaleNotOpen { .. }
            | Self::SoldOut
            | Self::PurchaseLimitReached { .. }
            | Self::IdempotencyInFlight
            | Self::IdempotencyKeyReused
            | Self::RouteNotFound
            | Self::MethodNotAllowed
            | Self::OrderNotFound
            | Self::Internal(_) => {}
        }
    }

    /// The `application/problem+json` answer.
    pub fn to_response(&self) -> HttpResponse {
        let (status, code, title) = self.parts();
        let mut body = serde_json::json!({
            "type": format!("https://flash-sale.dev/problems/{}", code.to_ascii_lowercase().replace('_', "-")),
            "title": title,
            "status": status.as_u16(),
            "detail": self.detail(),
            "code": code,
        });
        self.extensions(&mut body);
        let mut builder = HttpResponseBuilder::new(status);
        builder.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(secs) = self.retry_after() {
            builder.insert_header((header::RETRY_AFTER, secs));
        }
        builder.body(body.to_string())
    }
}

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

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_say_nothing_internal() {
        let e = ApiError::Internal(anyhow::anyhow!("password=hunter2 in the chain"));
        let resp = e.to_response();
        assert_eq!(resp.status(), 500);
        let body = actix_web::body::to_bytes(resp.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .and_then(Result::ok)
            .expect("sync body");
        assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(ApiError::SoldOut.code(), "SOLD_OUT");
        assert_eq!(ApiError::SoldOut.status(), StatusCode::CONFLICT);
        let e = ApiError::RateLimited {
            scope: Scope::Ip,
            retry_after_secs: 2,
        };
        assert_eq!(e.code(), "RATE_LIMIT_EXCEEDED");
        let resp = e.to_response();
        assert_eq!(
            resp.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"2"[..])
        );
        assert_eq!(
            resp.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
    }
}
