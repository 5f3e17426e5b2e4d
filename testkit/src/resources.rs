//! Isolated resources on the local stack (`deploy/local/up.sh`): a fresh PostgreSQL
//! database and a pair of Kafka topics, each with a unique name, so tests and benchmarks
//! run in parallel against the real servers without seeing each other.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// Where the stack runs (the variables `deploy/local/up.sh` writes to `.local/env`).
#[derive(Debug, Clone)]
pub struct StackEnv {
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `REDIS_CLUSTER_NODES` (empty: the single server of `REDIS_URL`).
    pub redis_cluster_nodes: String,
    /// `DATABASE_URL` of the main database; its role may create databases.
    pub database_url: String,
    /// `KAFKA_BROKERS`.
    pub kafka_brokers: String,
}

impl StackEnv {
    /// From the environment, with the local stack's defaults (`shared::defaults`).
    pub fn from_env() -> Self {
        use shared::defaults;
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
        Self {
            redis_url: var("REDIS_URL", defaults::REDIS_URL),
            redis_cluster_nodes: var("REDIS_CLUSTER_NODES", ""),
            database_url: var("DATABASE_URL", defaults::DATABASE_URL),
            kafka_brokers: var("KAFKA_BROKERS", defaults::KAFKA_BROKERS),
        }
    }
}

/// A short unique name: `{prefix}-{8 hex}`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A throwaway database with the migrations applied.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its name (`t_<unix seconds>_<hex>`).
    pub name: String,
    /// A connection URL for it.
    pub url: String,
}

/// Creates a fresh, migrated database, and drops test databases older than an hour
/// (left by earlier runs).
pub async fn database(env: &StackEnv) -> anyhow::Result<TestDatabase> {
    let client = stores::postgres::connect(&env.database_url)
        .await
        .context("connecting to DATABASE_URL (is the local stack up? deploy/local/up.sh)")?;
    let now = now_secs();
    for row in client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'",
            &[],
        )
        .await?
    {
        let name: String = row.get(0);
        let ts = name.split('_').nth(1).and_then(|t| t.parse::<u64>().ok());
        if ts.is_some_and(|ts| ts + 3600 < now) {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    let name = format!(
        "t_{now}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .context("creating a test database (the role needs CREATEDB)")?;
    let url = with_database(&env.database_url, &name);
    stores::migrate(&url).await?;
    Ok(TestDatabase { name, url })
}

/// `base` (a `postgres://` URL) with its database name replaced by `name`.
pub fn with_database(base: &str, name: &str) -> String {
    // postgres://user:pass@host:port/dbname?params → swap the path segment.
    let (head, query) = base
        .split_once('?')
        .map_or((base, None), |(h, q)| (h, Some(q)));
    let head = match head.rfind('/') {
        Some(i) if head[..i].contains("://") && i > head.find("://").unwrap_or(0) + 2 => &head[..i],
        _ => head,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

/// A pair of fresh topics, as `flashctl topics create` makes them (an order topic and its
/// dead-letter topic).
#[derive(Debug, Clone)]
pub struct TestTopics {
    /// Order topic.
    pub orders: String,
    /// Its dead-letter topic.
    pub dlq: String,
}

/// Creates `t-<unix seconds>-<hex>` and its `.dlq` with `partitions` partitions, and
/// deletes test topics older than an hour (left by earlier runs: every partition is a
/// log the broker must load when it restarts).
pub async fn topics(env: &StackEnv, partitions: i32) -> anyhow::Result<TestTopics> {
    let now = now_secs();
    let stale: Vec<String> = stores::list_topics(&env.kafka_brokers)
        .await
        .context("listing topics (is the broker up? deploy/local/up.sh)")?
        .into_iter()
        .filter(|t| test_topic_created(t).is_some_and(|ts| ts + 3600 < now))
        .collect();
    if !stale.is_empty() {
        let names: Vec<&str> = stale.iter().map(String::as_str).collect();
        // Best effort: another test run may be deleting the same ones.
        let _ = stores::delete_topics(&env.kafka_brokers, &names).await;
    }
    let orders = format!(
        "t-{now}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let dlq = format!("{orders}.dlq");
    stores::create_topics(&env.kafka_brokers, &[&orders, &dlq], partitions, 1)
        .await
        .context("creating test topics (is the broker up? deploy/local/up.sh)")?;
    Ok(TestTopics { orders, dlq })
}

/// When a topic made by [`topics`] was created (unix seconds); `None` for other topics.
fn test_topic_created(topic: &str) -> Option<u64> {
    let rest = topic.strip_prefix("t-")?;
    let (secs, tail) = rest.split_once('-')?;
    let hex = tail.strip_suffix(".dlq").unwrap_or(tail);
    (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| secs.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://a:b@h:1/x", "y"),
            "postgres://a:b@h:1/y"
        );
        assert_eq!(
            with_database("postgres://a:b@h:1/x?sslmode=disable", "y"),
            "postgres://a:b@h:1/y?sslmode=disable"
        );
        assert_eq!(with_database("postgres://a@h", "y"), "postgres://a@h/y");
    }

    #[test]
    fn recognises_test_topics_and_their_age() {
        assert_eq!(
            test_topic_created("t-1700000000-0a1b2c3d"),
            Some(1_700_000_000)
        );
        assert_eq!(
            test_topic_created("t-1700000000-0a1b2c3d.dlq"),
            Some(1_700_000_000)
        );
        assert_eq!(test_topic_created("orders"), None);
        assert_eq!(test_topic_created("t-abc-0a1b2c3d"), None);
        assert_eq!(test_topic_created("t-1700000000-0a1b2c3"), None);
        assert_eq!(test_topic_created("faults-1700000000-orders"), None);
    }
}
