//! The answer to `POST /order`, in steps: what the pipeline decided, the one limiter
//! whose headers it carries, the violation record and the log line of a refusal, the
//! metrics. A success is never turned into a refusal.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use flashsale_client::headers;
use shared::{ProductId, UserId};

use super::request::{add_rate_headers, locally_limited};
use super::state::AppState;
use crate::order::admission::{Accepted, RateReport, Refusal};
use crate::order::front_door::violations::Context;
use crate::order::front_door::{Client, RateInfo};
use crate::order::place::Placed;
use crate::problem::ApiError;

/// Where the pipeline stopped.
pub enum Outcome {
    /// At the front door (headers, body, signature or schema).
    Refused(ApiError),
    /// Placed: for this (product, user), with this outcome.
    Placed((ProductId, UserId), Placed),
}

/// An answer in the making.
struct Decided {
    /// Who ordered, once the body was read.
    who: Option<(ProductId, UserId)>,
    /// The order stands, or why not.
    result: Result<Accepted, ApiError>,
    /// What the admission script said about the limits.
    rate: RateReport,
    /// Whether the admission script already counted the refusal as a violation.
    counted_in_redis: bool,
}

/// The answer, with the rate-limit headers of exactly one limiter — the script's, or this
/// instance's when the request did not reach the script's limits — the violation record,
/// the log line and the metrics.
pub fn answer(
    req: &HttpRequest,
    app: &AppState,
    client: &Client,
    outcome: Outcome,
    started: Instant,
) -> HttpResponse {
    let (decided, rate) = one_limiter(app, client, decided(outcome));
    let (code, mut response) = match decided.result {
        Ok(accepted) => (accepted_code(&accepted), accepted_response(accepted)),
        Err(err) => {
            let who = decided.who.as_ref();
            record(
                req,
                app,
                client,
                who,
                decided.counted_in_redis,
                &err,
                "order failed",
            );
            (err.code(), err.to_response())
        }
    };
    if let Some(rate) = &rate {
        add_rate_headers(response.headers_mut(), rate);
    }
    app.metrics.decision(code, started.elapsed());
    response
}

fn decided(outcome: Outcome) -> Decided {
    match outcome {
        Outcome::Refused(e) => Decided {
            who: None,
            result: Err(e),
            rate: RateReport::NotEvaluated,
            counted_in_redis: false,
        },
        Outcome::Placed(who, Placed { outcome, rate }) => Decided {
            who: Some(who),
            counted_in_redis: outcome
                .as_ref()
                .err()
                .is_some_and(Refusal::counted_by_script),
            result: outcome.map_err(ApiError::from),
            rate,
        },
    }
}

/// The limiter that applies: the script's when it evaluated its limits, else this
/// instance's, which may refuse a refusal in the script's stead (its violation is then
/// not in Redis yet); a success stands whatever this instance's limiter says.
fn one_limiter(app: &AppState, client: &Client, mut d: Decided) -> (Decided, Option<RateInfo>) {
    let rate = match std::mem::replace(&mut d.rate, RateReport::NotEvaluated) {
        RateReport::Limited(info) => Some(info),
        RateReport::Unlimited => None,
        RateReport::NotEvaluated if !app.limits.enabled => None,
        RateReport::NotEvaluated => {
            let local = app.limits.orders.check(&client.network);
            if d.result.is_err() && !local.allowed {
                d.result = Err(locally_limited(&local));
                d.counted_in_redis = false;
            }
            Some(local.info)
        }
    };
    (d, rate)
}

/// A refusal's violation record (when it is one) and its log line (`failed` says what
/// failed, when a store did).
pub fn record(
    req: &HttpRequest,
    app: &AppState,
    client: &Client,
    who: Option<&(ProductId, UserId)>,
    counted_in_redis: bool,
    err: &ApiError,
    failed: &'static str,
) {
    if let Some(kind) = err.violation() {
        let ctx = Context {
            client_ip: client.ip.to_string(),
            user: who.map(|(_, u)| u.as_str()),
            fingerprint: client.fingerprint.as_ref().map(|f| f.as_str()),
            product: who.map(|(p, _)| p),
            path: req.path(),
        };
        app.limits.violations.record(kind, &ctx, counted_in_redis);
    }
    if let ApiError::Internal(_) | ApiError::Unavailable { .. } = err {
        tracing::error!(error = %err, code = err.code(), "{failed}");
    } else {
        tracing::debug!(code = err.code(), "refused");
    }
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
        builder.insert_header((headers::IDEMPOTENT_REPLAYED, "true"));
    }
    builder.body(body)
}
