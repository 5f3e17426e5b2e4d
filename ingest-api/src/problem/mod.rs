//! Every way a request can fail, and the one place that turns it into HTTP.
//!
//! Each variant has a stable machine `code` (`ingest-api/API.md`), a status, and an
//! `application/problem+json` body (RFC 9457). The business side's errors — refusals,
//! signature and lookup errors — become an [`ApiError`] in `conversions` and nowhere
//! else. Every mapping is an exhaustive `match` without a catch-all arm, so a new
//! variant does not compile until it has an answer. A 500 body says nothing internal; the
//! log carries the full error chain.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use shared::ViolationKind;
use shared::keys::Scope;
use shared::sale::NotOpen;

use crate::order::front_door::FieldError;

mod catalog;
mod conversions;
mod parts;
mod room;
mod shape;

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
    MethodNotAllowed {
        /// The methods it takes, for the `Allow` header.
        allow: &'static str,
    },
    /// A CORS preflight the policy refuses (origin, method or headers not allowed).
    #[error("CORS preflight rejected: {reason}")]
    CorsRejected {
        /// For the log.
        reason: String,
    },
    /// An unknown (or expired) order, or, for a cancel, one of another user.
    #[error("order not found")]
    OrderNotFound,
    /// A payment or cancel for an order that already ended otherwise.
    #[error("order not reserved ({})", state.as_str())]
    OrderNotReserved {
        /// How it ended.
        state: shared::ReservationState,
    },
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
    /// The waiting room refused.
    #[error("waiting room: {0}")]
    Room(crate::order::room::RoomRefusal),
    /// A bug. The answer says nothing more than "internal error".
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        self.shape().code.as_str()
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.shape().status
    }

    /// The violation type this refusal counts as, if it is one (limits, blocks,
    /// signatures, replays).
    pub fn violation(&self) -> Option<ViolationKind> {
        self.shape().violation
    }

    /// The `application/problem+json` answer.
    pub fn to_response(&self) -> HttpResponse {
        let shape = self.shape();
        let mut body = serde_json::json!({
            "type": format!("https://flash-sale.dev/problems/{}", shape.code.as_str().to_ascii_lowercase().replace('_', "-")),
            "title": shape.title,
            "status": shape.status.as_u16(),
            "detail": self.detail(),
            "code": shape.code.as_str(),
        });
        for (member, value) in shape.extra {
            body[member] = value;
        }
        let mut builder = HttpResponseBuilder::new(shape.status);
        builder.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(secs) = shape.retry_after {
            builder.insert_header((header::RETRY_AFTER, secs));
        }
        if let Some(methods) = shape.allow {
            builder.insert_header((header::ALLOW, methods));
        }
        if shape.close {
            // The body may be unread: the connection cannot carry another request.
            builder.force_close();
        }
        builder.body(body.to_string())
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
