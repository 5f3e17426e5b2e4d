//! `POST /order` and `GET /order/{id}`.
//!
//! The create handler reads as the request pipeline of the product brief, cheapest
//! check first: headers and size, body, signature, schema, identity; then placing the
//! order ([`Placer::place`]: the sold-out fast path, admission — the one Redis call — and
//! publish); then the answer, with the rate-limit headers of the one limiter that applied
//! to it (see [`crate::order::rate`]).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use shared::event::now_ms;
use shared::keys::Scope;
use shared::status::OrderStatus;
use shared::{IdempotencyKey, ProductId, UserId};
use uuid::Uuid;

use super::request::{body, header, json_within_limit, with_unread_body};
use crate::order::lookup::lookup;
use crate::order::violations::Context;
use crate::order::{
    Accepted, Client, OrderRequest, OrderSchema, Placed, Placer, RateInfo, RateReport, Refusal,
    SignedRequest, TrustedProxies, Verifier,
};
use crate::problem::ApiError;
use crate::state::AppState;

/// Registers the order routes; other methods on them answer 405 in problem+json.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/order")
            .route(web::post().to(create_order))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource("/order/{order_id}")
            .route(web::get().to(get_order))
            .route(web::head().to(get_order))
            .default_service(web::to(get_only)),
    );
}

/// 405 in problem+json for a resource that takes only `POST`.
pub(super) async fn post_only() -> HttpResponse {
    ApiError::MethodNotAllowed { allow: "POST" }.to_response()
}

/// 405 in problem+json for a resource that takes only `GET` (and so `HEAD`).
async fn get_only() -> HttpResponse {
    ApiError::MethodNotAllowed { allow: "GET, HEAD" }.to_response()
}

/// Any other path: 404 in problem+json.
pub async fn not_found() -> HttpResponse {
    ApiError::RouteNotFound.to_response()
}

/// The headers `POST /order` needs, parsed before the body is read.
pub struct OrderHeaders<'a> {
    /// The key, parsed (signed with the request).
    pub idempotency_key: IdempotencyKey,
    request_time: Option<&'a str>,
    key_id: Option<&'a str>,
    signature: Option<&'a str>,
}

impl<'a> OrderHeaders<'a> {
    /// Media type and declared size first (415/413, nothing read yet), then the key.
    fn parse(headers: &'a HeaderMap) -> Result<Self, ApiError> {
        json_within_limit(headers)?;
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

/// The create handler: the request pipeline of the product brief, cheapest check first,
/// one span per step.
async fn create_order(
    req: HttpRequest,
    mut payload: web::Payload,
    app: web::Data<AppState>,
    placer: web::Data<Placer>,
) -> HttpResponse {
    let started = Instant::now();
    let mut read_to_end = false;
    let read = async {
        let headers = headers(req.headers())?;
        let body = body(&mut payload, app.request_timeout).await?;
        read_to_end = true;
        signature(&app.verifier, &headers, "/order", &body)?;
        let order = schema(&app.schema, &body)?;
        Ok::<_, ApiError>((headers.idempotency_key, order))
    };
    let read = read.await;
    let client = identity(&req, &app.trusted_proxies);
    let outcome = match read {
        Err(refused) => Outcome::Refused(refused),
        Ok((idempotency_key, order)) => {
            let who = (order.product_id.clone(), order.user_id.clone());
            Outcome::Placed(who, placer.place(order, idempotency_key, &client).await)
        }
    };
    let response = answer(&req, &app, &client, outcome, started);
    if read_to_end {
        response
    } else {
        with_unread_body(response, payload)
    }
}

/// Media type, declared size and idempotency key of a signed request (415, 413, 400),
/// before its body is read.
#[tracing::instrument(name = "headers", skip_all)]
pub fn headers(headers: &HeaderMap) -> Result<OrderHeaders<'_>, ApiError> {
    OrderHeaders::parse(headers)
}

#[tracing::instrument(name = "signature", skip_all)]
pub(super) fn signature(
    verifier: &Verifier,
    headers: &OrderHeaders<'_>,
    path: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let request = SignedRequest {
        path,
        key_id: headers.key_id,
        request_time: headers.request_time,
        signature: headers.signature,
        idempotency_key: &headers.idempotency_key,
        body,
    };
    Ok(verifier.verify(&request, now_ms())?)
}

#[tracing::instrument(name = "schema", skip_all, fields(product, user))]
fn schema(schema: &OrderSchema, body: &[u8]) -> Result<OrderRequest, ApiError> {
    let order = schema.parse(body).map_err(ApiError::Validation)?;
    let span = tracing::Span::current();
    span.record("product", order.product_id.as_str());
    span.record("user", order.user_id.as_str());
    Ok(order)
}

/// The client behind a request (peer, or `X-Forwarded-For` via trusted proxies).
#[tracing::instrument(name = "identity", skip_all)]
pub(super) fn identity(req: &HttpRequest, proxies: &TrustedProxies) -> Client {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    let ip = proxies.client_ip(peer, forwarded);
    Client::new(ip, header(req.headers(), "x-device-fingerprint"))
}

/// Where the pipeline stopped.
enum Outcome {
    /// At the front door (headers, body, signature or schema).
    Refused(ApiError),
    /// Placed: for this (product, user), with this outcome.
    Placed((ProductId, UserId), Placed),
}

/// The answer, with the rate-limit headers of exactly one limiter — the script's, or this
/// instance's when the request did not reach the script's limits — the violation record,
/// the log line and the metrics. A success is never turned into a refusal.
#[tracing::instrument(name = "answer", skip_all)]
fn answer(
    req: &HttpRequest,
    app: &AppState,
    client: &Client,
    outcome: Outcome,
    started: Instant,
) -> HttpResponse {
    let (who, result, rate, counted_in_redis) = match outcome {
        Outcome::Refused(e) => (None, Err(e), RateReport::NotEvaluated, false),
        Outcome::Placed(who, Placed { outcome, rate }) => {
            let counted = outcome
                .as_ref()
                .err()
                .is_some_and(Refusal::counted_by_script);
            (Some(who), outcome.map_err(ApiError::from), rate, counted)
        }
    };
    let (rate, result, counted_in_redis) = match rate {
        RateReport::Limited(info) => (Some(info), result, counted_in_redis),
        RateReport::Unlimited => (None, result, counted_in_redis),
        RateReport::NotEvaluated if !app.limits_enabled => (None, result, counted_in_redis),
        RateReport::NotEvaluated => {
            let local = app.order_limiter.check(&client.network);
            match result {
                // This instance's limiter refuses in the script's stead: its violation
                // is not in Redis yet.
                Err(_) if !local.allowed => {
                    let limited = ApiError::RateLimited {
                        scope: Scope::Ip,
                        retry_after_secs: local.retry_after_secs,
                    };
                    (Some(local.info), Err(limited), false)
                }
                other => (Some(local.info), other, counted_in_redis),
            }
        }
    };
    let (code, mut response) = match result {
        Ok(accepted) => (accepted_code(&accepted), accepted_response(accepted)),
        Err(err) => {
            if let Some(kind) = err.violation() {
                let ctx = Context {
                    client_ip: client.ip.to_string(),
                    user: who.as_ref().map(|(_, u)| u.as_str()),
                    fingerprint: client.fingerprint.as_ref().map(|f| f.as_str()),
                    product: who.as_ref().map(|(p, _)| p),
                    path: req.path(),
                };
                app.violations.record(kind, &ctx, counted_in_redis);
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

fn accepted_code(accepted: &Accepted) -> &'static str {
    match accepted {
        Accepted::New { .. } => "ACCEPTED",
        Accepted::Replayed { .. } => "REPLAYED",
    }
}

/// `202` with the order, or the replayed original answer byte for byte.
fn accepted_response(accepted: Accepted) -> HttpResponse {
    let (status, order_id, body, replayed) = match accepted {
        Accepted::New { order_id, body } => (StatusCode::ACCEPTED, order_id, body, false),
        Accepted::Replayed {
            status,
            order_id,
            body,
        } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED),
            order_id,
            body,
            true,
        ),
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

/// The IETF `RateLimit-Policy`/`RateLimit` pair and the `X-RateLimit-*` trio.
pub(super) fn add_rate_headers(headers: &mut HeaderMap, rate: &RateInfo) {
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
    let client = identity(&req, &app.trusted_proxies);
    let local = app
        .limits_enabled
        .then(|| app.lookup_limiter.check(&client.network));
    let result = match &local {
        Some(l) if !l.allowed => Err(ApiError::RateLimited {
            scope: Scope::Ip,
            retry_after_secs: l.retry_after_secs,
        }),
        _ => find(&path, &app).await,
    };
    let mut response = match result {
        Ok(status) => HttpResponse::Ok().json(status),
        Err(e) => e.to_response(),
    };
    if let Some(l) = local {
        add_rate_headers(response.headers_mut(), &l.info);
    }
    response
}

async fn find(raw_id: &str, app: &AppState) -> Result<OrderStatus, ApiError> {
    let order_id = Uuid::parse_str(raw_id).map_err(|_| ApiError::OrderNotFound)?;
    match lookup(&app.redis, &app.keys, order_id).await {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(ApiError::OrderNotFound),
        Err(e) => {
            tracing::warn!(error = %e, "order lookup failed");
            Err(e.into())
        }
    }
}
