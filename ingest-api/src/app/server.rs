//! The two HTTP servers: the public port (orders, cancels, payments) with CORS and the
//! security headers, and the admin port (health, readiness, metrics, the OpenAPI
//! document).

use std::net::TcpListener;
use std::time::Duration;

use actix_cors::{Cors, CorsError};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use flashsale_client::headers;
use stores::redis::Target;

use crate::problem::ApiError;
use crate::routes;
use crate::routes::state::AppState;
use crate::settings::{Environment, Validated};

/// Security headers on every answer of both ports.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains",
        ))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cache-Control", "no-store"))
}

/// CORS: any origin in development when none is configured, else exactly the list.
/// Mismatching origins are not refused here (the browser withholds the answer), so every
/// answer stays one of ours.
fn cors(origins: &[String], environment: Environment) -> Cors {
    let mut cors = Cors::default()
        .block_on_origin_mismatch(false)
        .allowed_methods(["GET", "POST"])
        .allowed_headers(headers::SIGNED_REQUEST)
        .expose_headers([
            "location",
            headers::IDEMPOTENT_REPLAYED,
            "retry-after",
            "ratelimit",
            "ratelimit-policy",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ])
        .max_age(600);
    if origins.is_empty() && environment == Environment::Development {
        cors = cors.allow_any_origin();
    }
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// A preflight the CORS policy refuses (origin, method or headers) answers problem+json
/// `400 CORS_REJECTED`, like every other refusal, instead of the middleware's bare 400.
fn cors_refusals_as_problems<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let answer = service.call(req);
    async move {
        let response = answer.await?;
        let refusal = response
            .response()
            .error()
            .and_then(|e| e.as_error::<CorsError>())
            .map(|e| ApiError::CorsRejected {
                reason: e.to_string(),
            });
        Ok(match refusal {
            Some(refused) => {
                tracing::debug!(error = %refused, "CORS preflight refused");
                response.into_response(refused.to_response())
            }
            None => response.map_into_boxed_body(),
        })
    }
}

/// The public server on `listener`. Each HTTP worker thread gets its own Redis connection
/// for the admission and the hand-off's confirmations (made on that thread).
pub fn public(
    listener: TcpListener,
    state: web::Data<AppState>,
    settings: &Validated,
) -> anyhow::Result<Server> {
    let raw = &settings.raw;
    let origins = settings.allowed_origins.clone();
    let environment = raw.environment;
    let (target, timeout): (Target, Duration) = (raw.redis_target(), raw.redis_timeout());
    let server = HttpServer::new(move || {
        let placer = match super::parts::redis_connection(&target, timeout) {
            Ok(conn) => state.placer.with_connection(conn),
            Err(_) => state.placer.clone(),
        };
        App::new()
            .app_data(state.clone())
            .app_data(web::Data::new(placer))
            .configure(routes::order::config)
            .configure(routes::reservation::config)
            .configure(routes::queue::config)
            .default_service(web::to(routes::request::not_found))
            .wrap(cors(&origins, environment))
            .wrap_fn(cors_refusals_as_problems)
            .wrap(security_headers())
    })
    .disable_signals()
    .shutdown_timeout(10)
    // A head not complete in time is answered 408 and its connection closed (a body is
    // timed by the handlers, whose 408 closes too).
    .client_request_timeout(raw.request_timeout())
    // After an answer whose request body was not read to its end, the client gets this
    // long to read it before the connection is closed.
    .client_disconnect_timeout(Duration::from_millis(500))
    .backlog(4096)
    .max_connection_rate(1024);
    let workers = raw.http_workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    Ok(server
        .workers(workers)
        .max_connections(raw.max_connections.div_ceil(workers).max(1))
        .listen(listener)?
        .run())
}

/// The admin server on `listener`: one worker.
pub fn admin(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::admin::config)
            .default_service(web::to(routes::request::not_found))
            .wrap(security_headers())
    })
    .disable_signals()
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}
