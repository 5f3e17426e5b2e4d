//! `POST /order` and `GET /order/{id}`.
//!
//! The create handler reads as the request pipeline of the product brief, cheapest
//! check first: headers and size, body, signature, schema, identity; then placing the
//! order ([`Placer::place`]: the sold-out fast path, admission — the one Redis call — and
//! publish); then the answer ([`super::answer`]), with the rate-limit headers of the one
//! limiter that applied to it. The whole request runs in one `order` span that carries
//! the product and the user once the body is read.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use shared::IdempotencyKey;
use shared::status::OrderStatus;
use tracing::Instrument;
use tracing::field::Empty;
use uuid::Uuid;

use super::answer::{Outcome, answer};
use super::queue::admission;
use super::request::{
    body, get_only, identity, per_network, post_only, signature, signed_headers, with_unread_body,
};
use super::state::AppState;
use crate::order::front_door::{OrderRequest, OrderSchema};
use crate::order::lookup::lookup;
use crate::order::place::Placer;
use crate::problem::ApiError;

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

/// The create handler: the request pipeline of the product brief, cheapest check first,
/// one span per step inside the request's `order` span.
async fn create_order(
    req: HttpRequest,
    mut payload: web::Payload,
    app: web::Data<AppState>,
    placer: web::Data<Placer>,
) -> HttpResponse {
    let span = tracing::info_span!("order", product = Empty, user = Empty);
    async move {
        let started = Instant::now();
        let read = read(&req, &mut payload, &app).await;
        let client = identity(&req, &app.front_door.proxies);
        let admitted = read.order.and_then(|(key, order)| {
            let admission = admission(&req, &app, &order.product_id, &order.user_id, &client)?;
            Ok((key, order, admission))
        });
        let outcome = match admitted {
            Err(refused) => Outcome::Refused(refused),
            Ok((idempotency_key, order, admission)) => {
                let who = (order.product_id.clone(), order.user_id.clone());
                let placed = placer
                    .place(order, idempotency_key, &client, admission)
                    .await;
                Outcome::Placed(who, placed)
            }
        };
        let response = answer(&req, &app, &client, outcome, started);
        if read.to_end {
            response
        } else {
            with_unread_body(response, payload)
        }
    }
    .instrument(span)
    .await
}

/// What the front door made of a request.
struct Read {
    /// The order, or why it was refused.
    order: Result<(IdempotencyKey, OrderRequest), ApiError>,
    /// Whether the body was read to its end.
    to_end: bool,
}

/// Headers, body, signature and schema; the product and user go into the request's span.
async fn read(req: &HttpRequest, payload: &mut web::Payload, app: &AppState) -> Read {
    let door = &app.front_door;
    let mut to_end = false;
    let order = async {
        let headers = signed_headers(req.headers())?;
        let body = body(payload, door.request_timeout).await?;
        to_end = true;
        signature(&door.verifier, &headers, "/order", &body)?;
        let order = schema(&door.schema, &body)?;
        let span = tracing::Span::current();
        span.record("product", order.product_id.as_str());
        span.record("user", order.user_id.as_str());
        Ok((headers.idempotency_key, order))
    }
    .await;
    Read { order, to_end }
}

#[tracing::instrument(name = "schema", skip_all)]
fn schema(schema: &OrderSchema, body: &[u8]) -> Result<OrderRequest, ApiError> {
    schema.parse(body).map_err(ApiError::Validation)
}

/// `GET /order/{id}`: the status recorded at hand-off (`accepted`) or by the worker
/// (`persisted`). Limited per client network by this instance.
async fn get_order(
    req: HttpRequest,
    path: web::Path<String>,
    app: web::Data<AppState>,
) -> HttpResponse {
    let client = identity(&req, &app.front_door.proxies);
    per_network(&app.limits, &client, async {
        find(&path, &app)
            .await
            .map(|status| HttpResponse::Ok().json(status))
    })
    .await
}

async fn find(raw_id: &str, app: &AppState) -> Result<OrderStatus, ApiError> {
    let order_id = Uuid::parse_str(raw_id).map_err(|_| ApiError::OrderNotFound)?;
    match lookup(&app.lookup.redis, &app.lookup.keys, order_id).await {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(ApiError::OrderNotFound),
        Err(e) => {
            tracing::warn!(error = %e, "order lookup failed");
            Err(e.into())
        }
    }
}
