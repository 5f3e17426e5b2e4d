//! `POST /order` and `GET /order/{id}`.
//!
//! The create handler reads as the request pipeline of the product brief, cheapest
//! check first: headers and size, signature, schema, admission (the one Redis call),
//! publish, answer.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use futures_util::StreamExt;
use shared::IdempotencyKey;
use shared::event::now_ms;
use uuid::Uuid;

use crate::order::{Decision, OrderView, SignatureError, SignedRequest, Ticket};
use crate::problem::ApiError;
use crate::state::AppState;

/// Largest accepted body (CONTRACT.md).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Registers the order routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/order").route(web::post().to(create_order)))
        .service(web::resource("/order/{order_id}").route(web::get().to(get_order)));
}

/// The headers `POST /order` needs, parsed before the body is read.
struct OrderHeaders<'a> {
    idempotency_key: IdempotencyKey,
    request_time: Option<&'a str>,
    key_id: Option<&'a str>,
    signature: Option<&'a str>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl<'a> OrderHeaders<'a> {
    /// Media type and declared size first (415/413, nothing read yet), then the key.
    fn parse(headers: &'a HeaderMap) -> Result<Self, ApiError> {
        let media_ok = header(headers, "content-type")
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mt| mt.trim().eq_ignore_ascii_case("application/json"));
        if !media_ok {
            return Err(ApiError::UnsupportedMediaType);
        }
        let declared = header(headers, "content-length").and_then(|l| l.parse::<usize>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        let raw_key = header(headers, "idempotency-key")
            .or_else(|| header(headers, "x-idempotency-key"))
            .ok_or(ApiError::MissingIdempotencyKey)?;
        let idempotency_key =
            IdempotencyKey::parse_header(raw_key).map_err(|_| ApiError::InvalidIdempotencyKey)?;
        Ok(Self {
            idempotency_key,
            request_time: header(headers, "x-request-time"),
            key_id: header(headers, "x-key-id"),
            signature: header(headers, "x-signature"),
        })
    }
}

/// Reads the body, refusing it as soon as it passes the limit (chunked bodies too).
async fn read_body(mut payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::Validation(vec![crate::problem::FieldError {
                pointer: String::new(),
                detail: "the body could not be read".into(),
            }])
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::Expired => ApiError::RequestExpired,
            SignatureError::Missing => ApiError::InvalidSignature {
                reason: "X-Signature is missing",
            },
            SignatureError::UnknownKey => ApiError::InvalidSignature {
                reason: "X-Key-Id does not name a configured key",
            },
            SignatureError::Mismatch => ApiError::InvalidSignature {
                reason: "the signature does not match the request",
            },
        }
    }
}

async fn create_order(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let (code, response) = match place_order(&req, payload, &app).await {
        Ok(answer) => answer,
        Err(err) => {
            match &err {
                ApiError::Internal(_) | ApiError::Unavailable { .. } => {
                    tracing::error!(error = %err, code = err.code(), "order failed")
                }
                _ => tracing::debug!(code = err.code(), "order refused"),
            }
            (err.code(), err.to_response())
        }
    };
    app.metrics.decision(code, started.elapsed());
    response
}

/// The admission path; returns the metric code and the answer.
#[tracing::instrument(name = "order", skip_all, fields(product, user))]
async fn place_order(
    req: &HttpRequest,
    payload: web::Payload,
    app: &AppState,
) -> Result<(&'static str, HttpResponse), ApiError> {
    let headers = OrderHeaders::parse(req.headers())?;
    let body = read_body(payload).await?;
    app.verifier.verify(
        &SignedRequest {
            key_id: headers.key_id,
            request_time: headers.request_time,
            signature: headers.signature,
            idempotency_key: &headers.idempotency_key,
            body: &body,
        },
        now_ms(),
    )?;
    let order = app.schema.parse(&body).map_err(ApiError::Validation)?;
    let span = tracing::Span::current();
    span.record("product", order.product_id.as_str());
    span.record("user", order.user_id.as_str());
    let ticket = Ticket::new(order, headers.idempotency_key);

    let redis_started = Instant::now();
    let decision = app.admission.admit(&ticket).await.map_err(|e| {
        tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "admission failed; nothing was taken");
        ApiError::Unavailable {
            cause: "redis",
            retry_after_secs: 1,
        }
    })?;
    app.metrics.redis_call(redis_started.elapsed());

    match decision {
        Decision::Accepted { entry_id, .. } => {
            app.handoff
                .publish(&ticket.event(), &entry_id)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, order_id = %ticket.order_id, "publish failed; the relay will hand the order off");
                    ApiError::Unavailable {
                        cause: "kafka",
                        retry_after_secs: 2,
                    }
                })?;
            Ok((
                "ACCEPTED",
                accepted(ticket.order_id, ticket.accepted_body(), false),
            ))
        }
        Decision::Replay {
            status,
            body,
            order_id,
        } => {
            let order_id = Uuid::parse_str(&order_id).map_err(|e| anyhow::anyhow!(e))?;
            let status = StatusCode::from_u16(status).map_err(|e| anyhow::anyhow!(e))?;
            let mut resp = accepted(order_id, body, true);
            *resp.status_mut() = status;
            Ok(("REPLAYED", resp))
        }
        Decision::InFlight => Err(ApiError::IdempotencyInFlight),
        Decision::KeyReused => Err(ApiError::IdempotencyKeyReused),
        Decision::SaleNotFound => Err(ApiError::SaleNotFound),
        Decision::SaleNotOpen { state } => Err(ApiError::SaleNotOpen { state }),
        Decision::PurchaseLimitReached { bought, cap } => {
            Err(ApiError::PurchaseLimitReached { bought, cap })
        }
        Decision::SoldOut { .. } => Err(ApiError::SoldOut),
    }
}

fn accepted(order_id: Uuid, body: String, replayed: bool) -> HttpResponse {
    let mut builder = HttpResponseBuilder::new(StatusCode::ACCEPTED);
    builder
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .insert_header((header::LOCATION, format!("/order/{order_id}")));
    if replayed {
        builder.insert_header(("Idempotent-Replayed", "true"));
    }
    builder.body(body)
}

/// `GET /order/{id}`: the status recorded at hand-off (`accepted`) or by the worker
/// (`persisted`).
async fn get_order(path: web::Path<String>, app: web::Data<AppState>) -> HttpResponse {
    match lookup(&path, &app).await {
        Ok(view) => HttpResponse::Ok().json(view),
        Err(e) => e.to_response(),
    }
}

async fn lookup(raw_id: &str, app: &AppState) -> Result<OrderView, ApiError> {
    let order_id = Uuid::parse_str(raw_id).map_err(|_| ApiError::OrderNotFound)?;
    let mut conn = app.redis.clone();
    let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(app.keys.order_status(&order_id))
        .query_async(&mut conn)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "order lookup failed");
            ApiError::Unavailable {
                cause: "redis",
                retry_after_secs: 1,
            }
        })?;
    let field = |name: &str| fields.get(name).cloned().ok_or(ApiError::OrderNotFound);
    let parse = |e: shared::DomainError| ApiError::Internal(anyhow::anyhow!(e));
    Ok(OrderView {
        order_id,
        status: field("status")?,
        product_id: shared::ProductId::parse(field("product_id")?).map_err(parse)?,
        user_id: shared::UserId::parse(field("user_id")?).map_err(parse)?,
        quantity: field("quantity")?
            .parse::<u32>()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))
            .and_then(|q| shared::Quantity::new(q).map_err(parse))?,
    })
}
