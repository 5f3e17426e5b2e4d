//! `POST /order/{id}/cancel` (the shopper, signed like `POST /order`) and `POST
//! /webhooks/payment` (the payment service, Standard Webhooks): the two ways to end a
//! reservation from outside (`ingest-api/API.md`). Both answer `200 {"orderId",
//! "state"}`, the same again on a repeat.

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, web};
use flashsale_client::headers;
use serde::Deserialize;
use shared::ReservationState::{Cancelled, Paid};
use shared::event::now_ms;
use shared::{ReservationState, UserId};
use uuid::Uuid;

use super::request::{
    body, header, identity, json_within_limit, per_network, post_only, signature, signed_headers,
    with_unread_body,
};
use super::state::AppState;
use crate::order::front_door::FieldError;
use crate::problem::ApiError;

/// Registers both routes; other methods answer 405 in problem+json.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/order/{order_id}/cancel")
            .route(web::post().to(cancel_order))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource("/webhooks/payment")
            .route(web::post().to(payment_webhook))
            .default_service(web::to(post_only)),
    );
}

fn ended(order_id: Uuid, state: ReservationState) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"orderId": order_id, "state": state.as_str()}))
}

fn invalid(pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::at(pointer, detail)])
}

/// Reads a small JSON object, naming the first problem as the schema check would.
fn json_body<T: for<'de> Deserialize<'de>>(raw: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(raw).map_err(|e| invalid("", e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CancelBody {
    user_id: String,
}

/// `POST /order/{id}/cancel`: headers, body, signature over this very path, the buyer,
/// then the move. Limited per client network like `GET /order/{id}`.
async fn cancel_order(
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    app: web::Data<AppState>,
) -> HttpResponse {
    let client = identity(&req, &app.front_door.proxies);
    let response = per_network(
        &app.limits,
        &client,
        cancel(&req, &path, &mut payload, &app),
    )
    .await;
    with_unread_body(response, payload)
}

async fn cancel(
    req: &HttpRequest,
    raw_id: &str,
    payload: &mut web::Payload,
    app: &AppState,
) -> Result<HttpResponse, ApiError> {
    let headers = signed_headers(req.headers())?;
    let body = body(payload, app.front_door.request_timeout).await?;
    signature(&app.front_door.verifier, &headers, req.path(), &body)?;
    let CancelBody { user_id } = json_body(&body)?;
    let user = UserId::parse(user_id).map_err(|e| invalid("/userId", e.to_string()))?;
    let order_id = Uuid::parse_str(raw_id).map_err(|_| ApiError::OrderNotFound)?;
    let state = app
        .reservations
        .end(order_id, Some(&user), Cancelled, "shopper")
        .await?;
    Ok(ended(order_id, state))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody {
    order_id: String,
    status: String,
}

/// `POST /webhooks/payment`: a succeeded payment of an order. Answers 401 unless signed
/// by a configured secret within five minutes; idempotent per `webhook-id` because the
/// answer is the order's state, final once it left `reserved`.
async fn payment_webhook(
    req: HttpRequest,
    mut payload: web::Payload,
    app: web::Data<AppState>,
) -> HttpResponse {
    let response = pay(req.headers(), &mut payload, &app)
        .await
        .unwrap_or_else(|e| e.to_response());
    with_unread_body(response, payload)
}

async fn pay(
    headers: &HeaderMap,
    payload: &mut web::Payload,
    app: &AppState,
) -> Result<HttpResponse, ApiError> {
    json_within_limit(headers)?;
    let body = body(payload, app.front_door.request_timeout).await?;
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header(headers, headers::WEBHOOK_ID).filter(|id| !id.is_empty()),
        header(headers, headers::WEBHOOK_TIMESTAMP),
        header(headers, headers::WEBHOOK_SIGNATURE),
    ) else {
        return Err(ApiError::InvalidSignature {
            reason: "webhook-id, webhook-timestamp and webhook-signature are required",
        });
    };
    if !app
        .front_door
        .webhook_secrets
        .verify(id, timestamp, &body, signatures, now_ms() / 1000)
    {
        return Err(ApiError::InvalidSignature {
            reason: "no webhook-signature matches, or webhook-timestamp is more than 5 minutes off",
        });
    }
    let PaymentBody { order_id, status } = json_body(&body)?;
    if status != "succeeded" {
        return Err(invalid(
            "/status",
            "only \"succeeded\" payments are sent here",
        ));
    }
    let order_id =
        Uuid::parse_str(&order_id).map_err(|_| invalid("/orderId", "not an order id (uuid)"))?;
    let state = app
        .reservations
        .end(order_id, None, Paid, "payment")
        .await?;
    Ok(ended(order_id, state))
}
