//! Building and running the API: connections, listeners, the relay, graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::{Cors, CorsError};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, Service, ServiceRequest, ServiceResponse};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use rdkafka::producer::{FutureProducer, Producer};
use stores::redis::{Conn, Target};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::order::breaker::Breaker;
use crate::order::sold_out::SoldOut;
use crate::order::violations::Violations;
use crate::order::{
    Admission, Handoff, LocalLimiter, OrderSchema, Placer, Replicas, Reservations, Sweeper,
    Verifier,
};
use crate::problem::ApiError;
use crate::routes;
use crate::settings::{Environment, Validated};
use crate::state::AppState;

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
        .allowed_headers([
            "content-type",
            "idempotency-key",
            "x-idempotency-key",
            "x-request-time",
            "x-key-id",
            "x-signature",
            "x-device-fingerprint",
        ])
        .expose_headers([
            "location",
            "idempotent-replayed",
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

/// A built, not yet running, API: both listeners are bound, so the ports are known.
pub struct Application {
    port: u16,
    admin_port: u16,
    server: Server,
    admin: Server,
    state: web::Data<AppState>,
    relay_idle: Duration,
}

/// The reconnecting Redis connection with the configured timeouts
/// ([`stores::redis::manager`]). It is lazy: the API starts (and reports not ready) while
/// Redis is down, and every order fails closed until it is back.
pub fn redis_connection(target: &Target, timeout: Duration) -> anyhow::Result<Conn> {
    stores::redis::manager(target, timeout)
        .context("REDIS_URL or REDIS_CLUSTER_NODES is not a valid Redis address")
}

/// The idempotent, `acks=all` producer, batching for up to `linger_ms`.
pub fn kafka_producer(brokers: &str, linger_ms: u64) -> anyhow::Result<FutureProducer> {
    stores::idempotent_producer(brokers)
        .set("client.id", "ingest-api")
        .set("linger.ms", linger_ms.to_string())
        .set("message.timeout.ms", "30000")
        .set("socket.keepalive.enable", "true")
        .create()
        .context("cannot create the Kafka producer")
}

impl Application {
    /// Connects, compiles and binds. Port 0 in the settings picks a free port.
    pub async fn build(settings: Validated) -> anyhow::Result<Self> {
        let raw = &settings.raw;
        let metrics = Metrics::new();
        let redis = redis_connection(&raw.redis_target(), raw.redis_timeout())?;
        let producer = kafka_producer(&raw.kafka_brokers, raw.kafka_linger_ms)?;
        let replicas = Replicas::new(raw.redis_min_replicas, raw.redis_replica_wait());
        let handoff = Handoff::new(
            producer,
            raw.kafka_topic.clone(),
            redis.clone(),
            settings.keyspace.clone(),
            Duration::from_millis(raw.kafka_publish_timeout_ms),
            raw.order_status_ttl_secs,
            replicas.clone(),
            metrics.clone(),
        );
        if !raw.rate_limit_enabled {
            tracing::warn!(
                environment = ?raw.environment,
                "RATE_LIMIT_ENABLED=false: NO RATE LIMITS ARE ENFORCED (blocklists still apply); never do this in production"
            );
        }
        let admission = Admission::new(
            redis.clone(),
            settings.keyspace.clone(),
            raw.idempotency_ttl_secs,
            raw.rate_limit_enabled,
            replicas.clone(),
        );
        let reservations = Reservations::new(
            redis.clone(),
            settings.keyspace.clone(),
            handoff.clone(),
            replicas,
            metrics.clone(),
        );
        let sweeper = Sweeper::new(
            redis.clone(),
            settings.keyspace.clone(),
            reservations.clone(),
            metrics.clone(),
        );
        let state = web::Data::new(AppState {
            schema: OrderSchema::compile()?,
            verifier: Verifier::new(settings.keyring.clone(), raw.signature_window_ms),
            placer: Placer::new(
                admission,
                handoff,
                Arc::new(Breaker::new(3, Duration::from_secs(1))),
                Arc::new(SoldOut::default()),
                settings.pseudonymizer.clone(),
                metrics.clone(),
            ),
            order_limiter: LocalLimiter::new(settings.fallback_ip_limit),
            lookup_limiter: LocalLimiter::new(settings.fallback_ip_limit),
            limits_enabled: raw.rate_limit_enabled,
            violations: Arc::new(Violations::new(metrics.clone())),
            trusted_proxies: settings.trusted_proxies.clone(),
            request_timeout: raw.request_timeout(),
            redis,
            keys: settings.keyspace.clone(),
            sweeper,
            reservations,
            webhook_secrets: settings.webhook_secrets.clone(),
            metrics,
        });

        let listener = TcpListener::bind(raw.listen_addr)
            .with_context(|| format!("cannot listen on LISTEN_ADDR {}", raw.listen_addr))?;
        let admin_listener = TcpListener::bind(raw.admin_addr)
            .with_context(|| format!("cannot listen on ADMIN_ADDR {}", raw.admin_addr))?;
        let port = listener.local_addr()?.port();
        let admin_port = admin_listener.local_addr()?.port();

        let data = state.clone();
        let origins = settings.allowed_origins.clone();
        let environment = raw.environment;
        let (redis_target, redis_timeout) = (raw.redis_target(), raw.redis_timeout());
        let mut server = HttpServer::new(move || {
            // This closure runs on each worker thread: give it its own Redis connection
            // for the admission and the hand-off's confirmations.
            let placer = match redis_connection(&redis_target, redis_timeout) {
                Ok(conn) => data.placer.with_connection(conn),
                Err(_) => data.placer.clone(),
            };
            App::new()
                .app_data(data.clone())
                .app_data(web::Data::new(placer))
                .configure(routes::order::config)
                .configure(routes::reservation::config)
                .default_service(web::to(routes::order::not_found))
                .wrap(cors(&origins, environment))
                .wrap_fn(cors_refusals_as_problems)
                .wrap(security_headers())
        })
        .disable_signals()
        .shutdown_timeout(10)
        // A head not complete in time is answered 408 and its connection closed (a body
        // is timed by the handlers, whose 408 closes too).
        .client_request_timeout(raw.request_timeout())
        // After an answer whose request body was not read to its end, the client gets this
        // long to read it before the connection is closed.
        .client_disconnect_timeout(Duration::from_millis(500))
        .backlog(4096)
        .max_connection_rate(1024);
        let workers = raw.http_workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        server = server
            .workers(workers)
            .max_connections(raw.max_connections.div_ceil(workers).max(1));
        let server = server.listen(listener)?.run();

        let data = state.clone();
        let admin = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(routes::admin::config)
                .default_service(web::to(routes::order::not_found))
                .wrap(security_headers())
        })
        .disable_signals()
        .workers(1)
        .shutdown_timeout(1)
        .listen(admin_listener)?
        .run();

        tracing::info!(
            listen = %raw.listen_addr, port, admin_port,
            topic = %raw.kafka_topic, namespace = %settings.keyspace.namespace(),
            signing_key_ids = ?settings.keyring.ids().collect::<Vec<_>>(),
            environment = ?raw.environment,
            "ingest-api built"
        );
        Ok(Self {
            port,
            admin_port,
            server,
            admin,
            state,
            relay_idle: Duration::from_millis(raw.relay_idle_ms),
        })
    }

    /// The public port (useful when built with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Runs until SIGTERM/SIGINT.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shared::shutdown::signal()).await
    }

    /// Runs until `stop` resolves, then drains: no new connections, in-flight requests
    /// finish (up to 10 s), the relay and the expiry sweeper stop, the producer flushes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self {
            server,
            admin,
            state,
            relay_idle,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let consumer = format!(
            "api-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let sweeper = tokio::spawn(state.sweeper.clone().run(consumer.clone(), stop_rx.clone()));
        let relay = tokio::spawn(state.placer.handoff().clone().run_relay(
            consumer,
            relay_idle,
            stop_rx.clone(),
        ));
        let sold_out = tokio::spawn(state.placer.sold_out().clone().run(
            state.redis.clone(),
            state.keys.clone(),
            stop_rx.clone(),
        ));
        let violations = {
            let v = state.violations.clone();
            let (conn, keys) = (state.redis.clone(), state.keys.clone());
            tokio::spawn(async move { v.run(conn, keys, stop_rx).await })
        };
        let server_handle: ServerHandle = server.handle();
        let admin_handle = admin.handle();
        let server_task = tokio::spawn(server);
        let admin_task = tokio::spawn(admin);
        tokio::pin!(stop);
        tokio::select! {
            () = &mut stop => tracing::info!("draining"),
            r = server_task => { r??; anyhow::bail!("HTTP server stopped unexpectedly") }
        }
        server_handle.stop(true).await;
        admin_handle.stop(true).await;
        let _ = stop_tx.send(true);
        let _ = relay.await;
        let _ = sweeper.await;
        let _ = sold_out.await;
        let _ = violations.await;
        let _ = admin_task.await;
        let producer = state.placer.handoff().producer().clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
        tracing::info!("ingest-api stopped");
        Ok(())
    }
}
