//! The worker's admin port: `/healthz`, `/readyz` (PostgreSQL and Kafka), `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use rdkafka::consumer::Consumer;

use crate::consumer::OrderConsumer;
use crate::metrics::Metrics;

/// What the admin handlers need.
pub struct AdminState {
    /// PostgreSQL.
    pub pool: Pool,
    /// The consumer (for topic metadata).
    pub consumer: Arc<OrderConsumer>,
    /// The order topic.
    pub topic: String,
    /// Metrics.
    pub metrics: Metrics,
}

/// Registers the admin routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AdminState>) -> HttpResponse {
    let pg = crate::db::ping(&state.pool)
        .await
        .map_err(|e| format!("postgres: {e}"));
    let consumer = state.consumer.clone();
    let topic = state.topic.clone();
    let kafka = tokio::task::spawn_blocking(move || topic_exists(&consumer, &topic))
        .await
        .unwrap_or_else(|e| Err(format!("kafka: {e}")));
    match shared::service::health::readiness(&[("postgres", &pg), ("kafka", &kafka)]) {
        (true, body) => HttpResponse::Ok().json(body),
        (false, body) => HttpResponse::ServiceUnavailable().json(body),
    }
}

/// Whether `topic` exists with at least one partition (blocking call).
pub fn topic_exists(consumer: &OrderConsumer, topic: &str) -> Result<(), String> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(2))
        .map_err(|e| format!("kafka: {e}"))?;
    match md.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
        _ => Err(format!(
            "kafka: topic {topic:?} does not exist (create it with `flashctl topics create`)"
        )),
    }
}

async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}
