//! Where the stores are when nothing says otherwise: the local stack of
//! `deploy/local/up.sh`, one set of defaults for every binary (`ingest-api`,
//! `inventory-worker`, `flashctl`, `loadtest`) and the test kit, so they all find the
//! same servers and the same topics (`docs/configuration.md`).

/// `REDIS_URL`.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// `REDIS_NAMESPACE`: the prefix of every Redis key.
pub const REDIS_NAMESPACE: &str = "fs";
/// `DATABASE_URL`: the local stack's application role and database, in plain text
/// (`sslmode=disable`; without it, `prefer`, libpq's default: TLS when the server offers it).
pub const DATABASE_URL: &str =
    "postgres://flashsale:flashsale@127.0.0.1:5432/flashsale?sslmode=disable";
/// `KAFKA_BROKERS`.
pub const KAFKA_BROKERS: &str = "127.0.0.1:9092";
/// `KAFKA_TOPIC`: accepted orders and ended reservations.
pub const KAFKA_TOPIC: &str = "orders";
/// `KAFKA_DLQ_TOPIC`: messages the worker could not use.
pub const KAFKA_DLQ_TOPIC: &str = "orders.dlq";
/// `KAFKA_GROUP`: the worker's consumer group.
pub const KAFKA_GROUP: &str = "inventory-worker";
/// Partitions of the order topic (`flashctl topics create`).
pub const ORDER_PARTITIONS: i32 = 6;
