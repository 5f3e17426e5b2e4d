//! The admin port: `/healthz`, `/readyz`, `/metrics`, `/openapi.yaml`.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use rdkafka::producer::Producer;

use super::request::get_only;
use super::state::AppState;

/// Registers the admin routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    let get = |path: &str, get: actix_web::Route, head: actix_web::Route| {
        web::resource(path)
            .route(get)
            .route(head)
            .default_service(web::to(get_only))
    };
    cfg.service(get(
        "/healthz",
        web::get().to(healthz),
        web::head().to(healthz),
    ))
    .service(get(
        "/readyz",
        web::get().to(readyz),
        web::head().to(readyz),
    ))
    .service(get(
        "/metrics",
        web::get().to(metrics),
        web::head().to(metrics),
    ))
    .service(get(
        "/openapi.yaml",
        web::get().to(openapi),
        web::head().to(openapi),
    ));
}

/// The API's OpenAPI 3.1 document (`ingest-api/openapi.yaml`), as built into this binary.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}

/// The process is alive.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Redis answers and the Kafka topic exists.
async fn readyz(app: web::Data<AppState>) -> HttpResponse {
    let redis = {
        let mut conn = app.lookup.redis.clone();
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("redis: {e}")),
        }
    };
    let kafka = kafka_topic_ready(&app).await;
    match shared::service::health::readiness(&[("redis", &redis), ("kafka", &kafka)]) {
        (true, body) => HttpResponse::Ok().json(body),
        (false, body) => HttpResponse::ServiceUnavailable().json(body),
    }
}

/// Checks that the order topic exists and has partitions.
pub async fn kafka_topic_ready(app: &AppState) -> Result<(), String> {
    let producer = app.placer.handoff().producer().clone();
    let topic = app.placer.handoff().topic().to_owned();
    tokio::task::spawn_blocking(move || {
        let md = producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
            .map_err(|e| format!("kafka: {e}"))?;
        match md.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
            _ => Err(format!(
                "kafka: topic {topic:?} does not exist (create it with `flashctl topics create`)"
            )),
        }
    })
    .await
    .map_err(|e| format!("kafka: {e}"))?
}

async fn metrics(app: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(app.metrics.encode())
}
