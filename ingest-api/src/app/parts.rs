//! The parts of a running API, built from its settings: the connections, the stages of
//! the order pipeline, the handlers' state, and the background tasks that run beside
//! them.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use rdkafka::producer::FutureProducer;
use stores::Replicas;
use stores::redis::{Conn, Target};

use super::background::Background;
use crate::metrics::Metrics;
use crate::order::admission::{Admission, Breaker, SoldOut};
use crate::order::front_door::{LocalLimiter, OrderSchema, Verifier, Violations};
use crate::order::handoff::Handoff;
use crate::order::handoff::publish::Publishing;
use crate::order::place::Placer;
use crate::order::reservations::{Reservations, Sweeper};
use crate::order::room::{Drain, RoomCache, RoomCalls};
use crate::routes::state::{AppState, FrontDoor, Limits, Lookup, RoomPart};
use crate::settings::Validated;

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

/// What [`parts`] builds.
pub struct Parts {
    /// The handlers' state.
    pub state: web::Data<AppState>,
    /// The tasks beside them.
    pub background: Background,
}

/// Connects and builds every part.
pub fn parts(settings: &Validated) -> anyhow::Result<Parts> {
    let raw = &settings.raw;
    let metrics = Metrics::new();
    let redis = redis_connection(&raw.redis_target(), raw.redis_timeout())?;
    if !raw.rate_limit_enabled {
        tracing::warn!(
            environment = ?raw.environment,
            "RATE_LIMIT_ENABLED=false: NO RATE LIMITS ARE ENFORCED (blocklists still apply); never do this in production"
        );
    }
    let replicas = Replicas::new(raw.redis_min_replicas, raw.redis_replica_wait());
    let handoff = handoff(settings, &redis, &replicas, &metrics)?;
    let reservations = Reservations::new(
        redis.clone(),
        settings.keyspace.clone(),
        handoff.clone(),
        replicas.clone(),
        metrics.clone(),
    );
    let placer = placer(settings, &redis, replicas.clone(), handoff, &metrics);
    let room_calls = RoomCalls::new(redis.clone(), replicas, raw.rate_limit_enabled);
    let room_cache = Arc::new(RoomCache::default());
    let background = background(
        settings,
        &redis,
        &placer,
        &reservations,
        (&room_calls, &room_cache),
        &metrics,
    );
    let state = AppState {
        front_door: front_door(settings)?,
        limits: Limits {
            enabled: raw.rate_limit_enabled,
            orders: LocalLimiter::new(settings.fallback_ip_limit),
            lookups: LocalLimiter::new(settings.fallback_ip_limit),
            violations: background.violations.clone(),
        },
        placer,
        lookup: Lookup {
            redis,
            keys: settings.keyspace.clone(),
        },
        reservations,
        room: RoomPart {
            calls: room_calls,
            cache: room_cache,
            tokens: settings.room_tokens.clone(),
        },
        metrics,
    };
    Ok(Parts {
        state: web::Data::new(state),
        background,
    })
}

/// The tasks beside the handlers: the sweeper, the relay, the sold-out refresher, the
/// sharded sales' upkeep, the violations' flusher and the waiting room's drain and cache
/// refresher.
fn background(
    settings: &Validated,
    redis: &Conn,
    placer: &Placer,
    reservations: &Reservations,
    room: (&RoomCalls, &Arc<RoomCache>),
    metrics: &Metrics,
) -> Background {
    Background {
        sweeper: Sweeper::new(
            redis.clone(),
            settings.keyspace.clone(),
            reservations.clone(),
            metrics.clone(),
        ),
        relay: placer.handoff().clone(),
        relay_idle: Duration::from_millis(settings.raw.relay_idle_ms),
        sold_out: placer.sold_out().clone(),
        restock: placer.restock().clone(),
        violations: Arc::new(Violations::new(metrics.clone())),
        drain: Drain::new(
            redis.clone(),
            settings.keyspace.clone(),
            room.0.clone(),
            metrics.clone(),
        ),
        rooms: room.1.clone(),
        redis: redis.clone(),
        keys: settings.keyspace.clone(),
    }
}

fn front_door(settings: &Validated) -> anyhow::Result<FrontDoor> {
    Ok(FrontDoor {
        schema: OrderSchema::compile()?,
        verifier: Verifier::new(settings.keyring.clone(), settings.raw.signature_window_ms),
        webhook_secrets: settings.webhook_secrets.clone(),
        proxies: settings.trusted_proxies.clone(),
        request_timeout: settings.raw.request_timeout(),
    })
}

fn handoff(
    settings: &Validated,
    redis: &Conn,
    replicas: &Replicas,
    metrics: &Metrics,
) -> anyhow::Result<Handoff> {
    let raw = &settings.raw;
    Ok(Handoff::new(
        kafka_producer(&raw.kafka_brokers, raw.kafka_linger_ms)?,
        Publishing {
            topic: raw.kafka_topic.clone(),
            publish_timeout: Duration::from_millis(raw.kafka_publish_timeout_ms),
            status_ttl_secs: raw.order_status_ttl_secs,
        },
        redis.clone(),
        settings.keyspace.clone(),
        replicas.clone(),
        metrics.clone(),
    ))
}

fn placer(
    settings: &Validated,
    redis: &Conn,
    replicas: Replicas,
    handoff: Handoff,
    metrics: &Metrics,
) -> Placer {
    let raw = &settings.raw;
    let admission = Admission::new(
        redis.clone(),
        settings.keyspace.clone(),
        raw.idempotency_ttl_secs,
        raw.rate_limit_enabled,
        replicas,
    );
    Placer::new(
        admission,
        handoff,
        Arc::new(Breaker::new(3, Duration::from_secs(1))),
        Arc::new(SoldOut::default()),
        settings.pseudonymizer.clone(),
        metrics.clone(),
    )
}
