//! `POST /order` and `GET /order/{id}`.
//!
//! The create handler reads as the request pipeline of the product brief, cheapest
//! check first: headers and size, signature, schema, the sold-out fast path, admission
//! (the one Redis call), publish, answer. Every answer then gets the rate-limit headers
//! of the one limiter that applied to it (see [`crate::order::rate`]).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use futures_util::StreamExt;
use shared::event::now_ms;
use shared::keys::Scope;
use shared::{IdempotencyKey, ProductId, UserId};
use uuid::Uuid;

use crate::order::violations::Context;
use crate::order::{
    Admission, AdmissionError, Admitted, Client, Decision, Handoff, OrderView, RateInfo,
    RateReport, SignatureError, SignedRequest, Ticket,
};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;

/// Largest accepted body (CONTRACT.md).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Registers the order routes; other methods on them answer 405 in problem+json.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/order")
            .route(web::post().to(create_order))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/order/{order_id}")
            .route(web::get().to(get_order))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed() -> HttpResponse {
    ApiError::MethodNotAllowed.to_response()
}

/// Any other path: 404 in problem+json.
pub async fn not_found() -> HttpResponse {
    ApiError::RouteNotFound.to_response()
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
            ApiError::Validation(vec![FieldError {
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

/// The client behind a request (peer, or `X-Forwarded-For` via trusted proxies).
fn identify(req: &HttpRequest, app: &AppState) -> Client {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    let ip = app.trusted_proxies.client_ip(peer, forwarded);
    Client::new(ip, header(req.headers(), "x-device-fingerprint"))
}

/// A successful answer.
enum Answer {
    Accepted {
        order_id: Uuid,
        body: String,
    },
    Replayed {
        status: StatusCode,
        order_id: Uuid,
        body: String,
    },
}

impl Answer {
    fn code(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "ACCEPTED",
            Self::Replayed { .. } => "REPLAYED",
        }
    }

    fn into_response(self) -> HttpResponse {
        let (status, order_id, body, replayed) = match self {
            Self::Accepted { order_id, body } => (StatusCode::ACCEPTED, order_id, body, false),
            Self::Replayed {
                status,
                order_id,
                body,
            } => (status, order_id, body, true),
        };
        let mut builder = HttpResponseBuilder::new(status);
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
}

/// What the pipeline learned on the way, for the limiter, the headers and the log.
struct Trace {
    /// What the script's limits said.
    rate: RateReport,
    /// The script already counted this violation in Redis.
    counted_in_redis: bool,
    product: Option<ProductId>,
    user: Option<UserId>,
}

async fn create_order(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
    admission: web::Data<Admission>,
    handoff: web::Data<Handoff>,
) -> HttpResponse {
    let started = Instant::now();
    let client = identify(&req, &app);
    let mut trace = Trace {
        rate: RateReport::NotEvaluated,
        counted_in_redis: false,
        product: None,
        user: None,
    };
    let mut result = place_order(
        &req, payload, &app, &admission, &handoff, &client, &mut trace,
    )
    .await;

    // Exactly one limiter per request: the script's, or this instance's when the request
    // did not reach the script's limits. A success is never turned into a refusal.
    let rate = match std::mem::replace(&mut trace.rate, RateReport::NotEvaluated) {
        RateReport::Limited(info) => Some(info),
        RateReport::Unlimited => None,
        RateReport::NotEvaluated if !app.limits_enabled => None,
        RateReport::NotEvaluated => {
            let local = app.order_limiter.check(&client.network);
            if !local.allowed && result.is_err() {
                result = Err(ApiError::RateLimited {
                    scope: Scope::Ip,
                    retry_after_secs: local.retry_after_secs,
                });
                trace.counted_in_redis = false;
            }
            Some(local.info)
        }
    };

    let (code, mut response) = match result {
        Ok(answer) => (answer.code(), answer.into_response()),
        Err(err) => {
            if let Some(kind) = err.violation() {
                let ctx = Context {
                    client_ip: client.ip.to_string(),
                    user: trace.user.as_ref().map(UserId::as_str),
                    fingerprint: client.fingerprint.as_ref().map(|f| f.as_str()),
                    product: trace.product.as_ref(),
                    path: req.path(),
                };
                app.violations.record(kind, &ctx, trace.counted_in_redis);
            }
            match &err {
                ApiError::Internal(_) | ApiError::Unavailable { .. } => {
                    tracing::error!(error = %err, code = err.code(), "order failed")
                }
                _ => tracing::debug!(code = err.code(), "order refused"),
            }
            (err.code(), err.to_response())
        }
    };
    if let Some(rate) = &rate {
        add_rate_headers(response.headers_mut(), rate);
    }
    app.metrics.decision(code, started.elapsed());
    response
}

/// The admission path, from headers to answer.
#[tracing::instrument(name = "order", skip_all, fields(product, user))]
async fn place_order(
    req: &HttpRequest,
    payload: web::Payload,
    app: &AppState,
    admission: &Admission,
    handoff: &Handoff,
    client: &Client,
    trace: &mut Trace,
) -> Result<Answer, ApiError> {
    let headers = OrderHeaders::parse(req.headers())?;
    let body = tokio::time::timeout(app.request_timeout, read_body(payload))
        .await
        .map_err(|_| ApiError::RequestTimeout)??;
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
    trace.product = Some(order.product_id.clone());
    trace.user = Some(order.user_id.clone());

    if app.sold_out.answers_for(&order.product_id, &order.user_id) {
        app.metrics.sold_out_fast_path();
        return Err(ApiError::SoldOut);
    }

    let pseudonyms = client.pseudonyms(&app.pseudonymizer);
    let ticket = Ticket::new(order, headers.idempotency_key, client, pseudonyms);
    let Admitted { decision, rate } = admit(app, admission, &ticket).await?;
    trace.rate = rate;
    answer(app, handoff, &ticket, decision, trace).await
}

/// The one Redis call, behind the circuit breaker. Fails closed.
async fn admit(
    app: &AppState,
    admission: &Admission,
    ticket: &Ticket<'_>,
) -> Result<Admitted, ApiError> {
    let unavailable = |outcome_unknown| ApiError::Unavailable {
        cause: "redis",
        outcome_unknown,
        retry_after_secs: 1,
    };
    if !app.breaker.allow() {
        app.metrics.redis_failure();
        return Err(unavailable(false));
    }
    let started = Instant::now();
    match admission.admit(ticket).await {
        Ok(admitted) => {
            app.breaker.success();
            app.metrics.redis_call(started.elapsed());
            Ok(admitted)
        }
        Err(AdmissionError::Unavailable(e)) => {
            // Any Redis failure fails closed and counts against the breaker. Only a
            // refused connection proves the script never ran; after a timeout, a dropped
            // connection or a server-side error it may have, and the same key tells.
            app.breaker.failure();
            app.metrics.redis_failure();
            let unknown = !e.is_connection_refusal();
            tracing::error!(error = %e, outcome_unknown = unknown, "admission failed; failing closed");
            Err(unavailable(unknown))
        }
        Err(e @ AdmissionError::BadReply(_)) => {
            // Redis is fine, but this build cannot read what the script decided.
            app.breaker.success();
            tracing::error!(error = %e, "unreadable admission reply");
            Err(unavailable(true))
        }
    }
}

/// Turns the script's decision into an answer; an acceptance is published first.
async fn answer(
    app: &AppState,
    handoff: &Handoff,
    ticket: &Ticket<'_>,
    decision: Decision,
    trace: &mut Trace,
) -> Result<Answer, ApiError> {
    let product = &ticket.event.product_id;
    match decision {
        Decision::Accepted {
            entry_id,
            remaining,
        } => {
            if remaining == 0 {
                app.sold_out.mark(product);
            }
            handoff
                .publish(&ticket.event, &ticket.event_json, &entry_id)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, order_id = %ticket.event.order_id, "publish failed; the relay will hand the order off");
                    ApiError::Unavailable {
                        cause: "kafka",
                        outcome_unknown: true,
                        retry_after_secs: 2,
                    }
                })?;
            Ok(Answer::Accepted {
                order_id: ticket.event.order_id,
                body: ticket.accepted_body.clone(),
            })
        }
        Decision::Replay {
            status,
            body,
            order_id,
        } => Ok(Answer::Replayed {
            status: StatusCode::from_u16(status).map_err(|e| anyhow::anyhow!(e))?,
            order_id: Uuid::parse_str(&order_id).map_err(|e| anyhow::anyhow!(e))?,
            body,
        }),
        Decision::InFlight => Err(ApiError::IdempotencyInFlight),
        Decision::KeyReused => {
            trace.counted_in_redis = true;
            Err(ApiError::IdempotencyKeyReused)
        }
        Decision::SaleNotFound => Err(ApiError::SaleNotFound),
        Decision::SaleNotOpen { state } => Err(ApiError::SaleNotOpen { state }),
        Decision::Blocked { scope } => {
            trace.counted_in_redis = true;
            Err(ApiError::Blocked { scope })
        }
        Decision::RateLimited {
            scope,
            retry_after_ms,
        } => {
            trace.counted_in_redis = true;
            Err(ApiError::RateLimited {
                scope,
                retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
            })
        }
        Decision::PurchaseLimitReached { bought, cap } => {
            Err(ApiError::PurchaseLimitReached { bought, cap })
        }
        Decision::SoldOut { remaining } => {
            if remaining == 0 {
                app.sold_out.mark(product);
            }
            Err(ApiError::SoldOut)
        }
    }
}

/// The IETF `RateLimit-Policy`/`RateLimit` pair and the `X-RateLimit-*` trio.
fn add_rate_headers(headers: &mut HeaderMap, rate: &RateInfo) {
    let pairs = [
        ("ratelimit-policy", rate.policy_header()),
        ("ratelimit", rate.state_header()),
        ("x-ratelimit-limit", rate.limit.to_string()),
        ("x-ratelimit-remaining", rate.remaining.to_string()),
        ("x-ratelimit-reset", rate.reset_secs().to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::HeaderName::from_static(name), v);
        }
    }
}

/// `GET /order/{id}`: the status recorded at hand-off (`accepted`) or by the worker
/// (`persisted`). Limited per client network by this instance.
async fn get_order(
    req: HttpRequest,
    path: web::Path<String>,
    app: web::Data<AppState>,
) -> HttpResponse {
    let client = identify(&req, &app);
    let local = app
        .limits_enabled
        .then(|| app.lookup_limiter.check(&client.network));
    let result = match &local {
        Some(l) if !l.allowed => Err(ApiError::RateLimited {
            scope: Scope::Ip,
            retry_after_secs: l.retry_after_secs,
        }),
        _ => lookup(&path, &app).await,
    };
    let mut response = match result {
        Ok(view) => HttpResponse::Ok().json(view),
        Err(e) => e.to_response(),
    };
    if let Some(l) = local {
        add_rate_headers(response.headers_mut(), &l.info);
    }
    response
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
                outcome_unknown: false,
                retry_after_secs: 1,
            }
        })?;
    let field = |name: &str| fields.get(name).cloned().ok_or(ApiError::OrderNotFound);
    let parse = |e: shared::DomainError| ApiError::Internal(anyhow::anyhow!(e));
    Ok(OrderView {
        order_id,
        status: field("status")?,
        product_id: ProductId::parse(field("product_id")?).map_err(parse)?,
        user_id: UserId::parse(field("user_id")?).map_err(parse)?,
        quantity: field("quantity")?
            .parse::<u32>()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))
            .and_then(|q| shared::Quantity::new(q).map_err(parse))?,
    })
}
