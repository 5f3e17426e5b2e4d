//! The waiting room over HTTP (`ingest-api/API.md`, "Waiting room"): `POST
//! /queue/{productId}/join` and `POST /queue/{productId}/claim`, signed like `POST /order`
//! over their own paths, and `GET /queue/{productId}/status`, answered from this
//! instance's cache of the room, limited per client network like `GET /order/{id}`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use flashsale_client::headers;
use serde::Deserialize;
use shared::event::now_ms;
use shared::room::{Claims, Kind};
use shared::{ProductId, UserId};

use super::answer::record;
use super::request::{
    add_rate_headers, body, get_only, header, identity, per_network, post_only, signature,
    signed_headers, with_unread_body,
};
use super::state::AppState;
use crate::order::admission::{RateReport, Refusal};
use crate::order::front_door::{Client, FieldError};
use crate::order::room::{RoomRefusal, Snapshot, view};
use crate::problem::ApiError;

/// How long a ticket is valid: a day.
const TICKET_TTL_S: u64 = 24 * 3600;

/// Registers the room's routes; other methods answer 405 in problem+json.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/queue/{product_id}/join")
            .route(web::post().to(join))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource("/queue/{product_id}/claim")
            .route(web::post().to(claim))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource("/queue/{product_id}/status")
            .route(web::get().to(status))
            .route(web::head().to(status))
            .default_service(web::to(get_only)),
    );
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserBody {
    user_id: String,
}

/// A signed request of the room: headers, body, the signature over this path, the user.
async fn signed_user(
    req: &HttpRequest,
    payload: &mut web::Payload,
    app: &AppState,
) -> Result<UserId, ApiError> {
    let door = &app.front_door;
    let headers = signed_headers(req.headers())?;
    let body = body(payload, door.request_timeout).await?;
    signature(&door.verifier, &headers, req.path(), &body)?;
    let UserBody { user_id } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Validation(vec![FieldError::at("", e.to_string())]))?;
    UserId::parse(user_id)
        .map_err(|e| ApiError::Validation(vec![FieldError::at("/userId", e.to_string())]))
}

fn product(raw: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(raw.to_owned()).map_err(|_| RoomRefusal::NotFound.into())
}

/// The ticket a request carries, verified for this product and device.
fn ticket(
    req: &HttpRequest,
    app: &AppState,
    product: &ProductId,
    client: &Client,
) -> Result<Claims, ApiError> {
    let token = header(req.headers(), headers::QUEUE_TICKET).ok_or(RoomRefusal::InvalidTicket)?;
    let claims = app
        .room
        .tokens
        .read(token, Kind::Ticket)
        .map_err(RoomRefusal::from)?;
    claims
        .check(
            now_ms() / 1000,
            product.as_str(),
            None,
            &claims.user,
            &client.fingerprint_id,
        )
        .map_err(RoomRefusal::from)?;
    Ok(claims)
}

/// The room's snapshot from this instance's cache (read from Redis on a miss).
async fn snapshot(app: &AppState, product: &ProductId) -> Result<Arc<Snapshot>, ApiError> {
    if let Some(s) = app.room.cache.get(product) {
        return Ok(s);
    }
    let mut conn = app.lookup.redis.clone();
    app.room
        .cache
        .load(&mut conn, &app.lookup.keys, product)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "room read failed");
            ApiError::from(Refusal::Unavailable {
                dependency: crate::order::admission::Dependency::Redis,
                outcome_unknown: false,
            })
        })?
        .ok_or_else(|| RoomRefusal::NotFound.into())
}

/// Counts a join's or a claim's answer by outcome.
fn count(app: &AppState, join: bool, result: &Result<HttpResponse, ApiError>) {
    let room = app.metrics.room();
    match (join, result) {
        (true, Ok(_)) => room.join("ticket"),
        (false, Ok(_)) => room.claim("admitted"),
        (true, Err(e)) => room.join(e.code()),
        (false, Err(e)) => room.claim(e.code()),
    }
}

fn jitter() -> f64 {
    f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0
}

/// Answers `result`, with the limits' headers when the script evaluated them, the
/// violation record and the log line of a refusal.
fn answer(
    req: &HttpRequest,
    app: &AppState,
    client: &Client,
    result: Result<HttpResponse, ApiError>,
    rate: RateReport,
) -> HttpResponse {
    let mut response = match result {
        Ok(r) => r,
        Err(err) => {
            record(req, app, client, None, true, &err, "room call failed");
            err.to_response()
        }
    };
    if let RateReport::Limited(info) = &rate {
        add_rate_headers(response.headers_mut(), info);
    }
    response
}

/// `POST /queue/{productId}/join`: a ticket, and the line as it stands.
async fn join(
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    app: web::Data<AppState>,
) -> HttpResponse {
    let client = identity(&req, &app.front_door.proxies);
    let (result, rate) = joined(&req, &path, &mut payload, &app, &client).await;
    count(&app, true, &result);
    with_unread_body(answer(&req, &app, &client, result, rate), payload)
}

async fn joined(
    req: &HttpRequest,
    raw: &str,
    payload: &mut web::Payload,
    app: &AppState,
    client: &Client,
) -> (Result<HttpResponse, ApiError>, RateReport) {
    let prepared = async {
        let user = signed_user(req, payload, app).await?;
        let product = product(raw)?;
        if client.fingerprint.is_none() {
            return Err(ApiError::from(RoomRefusal::FingerprintRequired));
        }
        Ok((user, product))
    };
    let (user, product) = match prepared.await {
        Ok(v) => v,
        Err(e) => return (Err(e), RateReport::NotEvaluated),
    };
    let keys = app.lookup.keys.sale(&product);
    let (result, rate) = app.room.calls.join(&keys, user.as_str(), client).await;
    let answer = async {
        let joined = result.map_err(ApiError::from)?;
        let snapshot = snapshot(app, &product).await?;
        let now = now_ms();
        let mut claims = Claims {
            kind: Kind::Ticket,
            product: product.to_string(),
            epoch: joined.epoch,
            user: user.to_string(),
            device: client.fingerprint_id.clone(),
            arrival: joined.arrival,
            id: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
            issued_s: now / 1000,
            expires_s: now / 1000 + TICKET_TTL_S,
            eta_s: 0,
        };
        let wait = view(&snapshot, &claims, now, jitter());
        claims.eta_s = wait.eta_seconds.map_or(0, |s| s.round() as u64);
        let token =
            app.room.tokens.sign(&claims).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("ROOM_TOKEN_KEYS holds no key"))
            })?;
        Ok(HttpResponse::Ok().json(serde_json::json!({
            "ticket": token,
            "wait": wait,
        })))
    };
    (answer.await, rate)
}

/// `GET /queue/{productId}/status`: the line for this ticket, from memory.
async fn status(
    req: HttpRequest,
    path: web::Path<String>,
    app: web::Data<AppState>,
) -> HttpResponse {
    let client = identity(&req, &app.front_door.proxies);
    app.metrics.room().poll();
    per_network(&app.limits, &client, async {
        let product = product(&path)?;
        let claims = ticket(&req, &app, &product, &client)?;
        let snapshot = snapshot(&app, &product).await?;
        if snapshot.room.epoch != claims.epoch {
            return Err(RoomRefusal::NotYourTicket.into());
        }
        let wait = view(&snapshot, &claims, now_ms(), jitter());
        Ok(HttpResponse::Ok().json(serde_json::json!({ "wait": wait })))
    })
    .await
}

/// `POST /queue/{productId}/claim`: the admission of a ticket whose turn has come.
async fn claim(
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    app: web::Data<AppState>,
) -> HttpResponse {
    let client = identity(&req, &app.front_door.proxies);
    let (result, rate) = claimed(&req, &path, &mut payload, &app, &client).await;
    count(&app, false, &result);
    with_unread_body(answer(&req, &app, &client, result, rate), payload)
}

async fn claimed(
    req: &HttpRequest,
    raw: &str,
    payload: &mut web::Payload,
    app: &AppState,
    client: &Client,
) -> (Result<HttpResponse, ApiError>, RateReport) {
    let prepared = async {
        let user = signed_user(req, payload, app).await?;
        let product = product(raw)?;
        let claims = ticket(req, app, &product, client)?;
        if claims.user != user.as_str() {
            return Err(ApiError::from(RoomRefusal::NotYourTicket));
        }
        Ok((product, claims, user))
    };
    let (product, ticket, user) = match prepared.await {
        Ok(v) => v,
        Err(e) => return (Err(e), RateReport::NotEvaluated),
    };
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let (result, rate) = app
        .room
        .calls
        .claim(
            (&app.lookup.keys, &product),
            &user,
            client,
            (ticket.epoch, ticket.arrival),
            &id,
        )
        .await;
    let answer = result.map_err(ApiError::from).and_then(|claimed| {
        let now = now_ms();
        app.metrics.room().eta(
            ticket.eta_s as f64,
            (now / 1000).saturating_sub(ticket.issued_s) as f64,
        );
        let admission = Claims {
            kind: Kind::Admission,
            arrival: 0,
            id: claimed.id,
            issued_s: now / 1000,
            expires_s: claimed.expires_ms.div_ceil(1000),
            eta_s: 0,
            ..ticket
        };
        let token =
            app.room.tokens.sign(&admission).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("ROOM_TOKEN_KEYS holds no key"))
            })?;
        Ok(HttpResponse::Ok().json(serde_json::json!({
            "admissionToken": token,
            "expiresAt": shared::status::deadline_text(claimed.expires_ms),
        })))
    });
    (answer, rate)
}

/// The admission an order presents (`X-Admission-Token`), verified for its product, user
/// and device: its id, which `lua/admit.lua` compares with the user's admission record;
/// `Ok(None)` when the order brings none.
pub fn admission(
    req: &HttpRequest,
    app: &AppState,
    product: &ProductId,
    user: &UserId,
    client: &Client,
) -> Result<Option<String>, ApiError> {
    let Some(token) = header(req.headers(), headers::ADMISSION_TOKEN) else {
        return Ok(None);
    };
    let claims = app
        .room
        .tokens
        .read(token, Kind::Admission)
        .map_err(RoomRefusal::from)?;
    claims
        .check(
            now_ms() / 1000,
            product.as_str(),
            None,
            user.as_str(),
            &client.fingerprint_id,
        )
        .map_err(RoomRefusal::from)?;
    Ok(Some(claims.id))
}
