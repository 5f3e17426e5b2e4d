//! The `flashctl` binary against a running API and worker on real Redis, PostgreSQL and
//! Kafka: what an operator does during an incident, and that each change is recorded.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::process::Command;
use std::time::{Duration, Instant};
use stores::records::sale::field as sale_field;
use testkit::api::ApiStack;
use testkit::worker::WorkerStack;

use serde_json::Value;
use testkit::TestStack;
use testkit::api::RunningApi;
use testkit::client::Client;
use testkit::worker::RunningWorker;

struct Ctl<'a> {
    stack: &'a TestStack,
}

impl Ctl<'_> {
    /// Runs `flashctl --json --operator test-op ARGS`; returns (exit code, JSON output).
    fn run(&self, args: &[&str]) -> (i32, Value) {
        let s = self.stack;
        let out = Command::new(env!("CARGO_BIN_EXE_flashctl"))
            .args(["--json", "--operator", "test-op"])
            .args(args)
            .env("REDIS_URL", &s.env.redis_url)
            .env("REDIS_NAMESPACE", s.keys.namespace())
            .env("DATABASE_URL", &s.db.url)
            .env("KAFKA_BROKERS", &s.env.kafka_brokers)
            .env("KAFKA_TOPIC", &s.topics.orders)
            .env("KAFKA_GROUP", s.worker_settings().kafka_group)
            .output()
            .expect("flashctl runs");
        let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), json)
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Value {
        let (code, json) = self.run(args);
        assert_eq!(code, 0, "flashctl {args:?} failed: {json}");
        json
    }
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn order(api: &RunningApi, product: &str, user: &str) -> String {
    api.client
        .place(&Client::body(product, user, 1), &key())
        .await
        .expect("answer")
        .code()
}

async fn until(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incident_with_flashctl() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let worker = RunningWorker::start(stack.worker_settings()).await?;
    let ctl = Ctl { stack: &stack };
    let opened = ctl.ok(&[
        "sale",
        "open",
        "--product",
        "drop",
        "--stock",
        "20",
        "--per-user",
        "2",
        "--ip",
        "off",
        "--fingerprint",
        "off",
        "--global",
        "off",
    ]);
    assert_eq!(opened["outcome"], "created");
    assert_eq!(opened["limits"]["user"], "2/s:5");
    assert_eq!(order(&api, "drop", "ann").await, "ACCEPTED");

    // Halt: refused without --yes when nobody can confirm, then effective within 1 s.
    let (code, _) = ctl.run(&["sale", "halt", "--product", "drop"]);
    assert_eq!(code, 2, "a halt needs --yes without a terminal");
    assert_eq!(
        order(&api, "drop", "bob").await,
        "ACCEPTED",
        "nothing changed"
    );
    ctl.ok(&["--yes", "sale", "halt", "--product", "drop"]);
    let halted = until(Duration::from_secs(1), async || {
        order(&api, "drop", "cat").await == "SALE_NOT_OPEN"
    })
    .await;
    assert!(halted.is_some(), "halt not effective within 1 s");
    ctl.ok(&["sale", "resume", "--product", "drop"]);
    assert_eq!(order(&api, "drop", "cat").await, "ACCEPTED");

    // A block with a TTL lifts by itself.
    ctl.ok(&[
        "block",
        "user",
        "dan",
        "--product",
        "drop",
        "--ttl",
        "1s",
        "--reason",
        "bot",
    ]);
    assert_eq!(order(&api, "drop", "dan").await, "BLOCKED");
    let lifted = until(Duration::from_secs(3), async || {
        order(&api, "drop", "dan").await == "ACCEPTED"
    })
    .await;
    assert!(lifted.is_some(), "the block did not expire");

    // Limits set: the next decision follows it.
    let now = ctl.ok(&["limits", "set", "--product", "drop", "--user", "1/m:1"]);
    assert_eq!(now["user"], "1/m:1");
    assert_eq!(order(&api, "drop", "eve").await, "ACCEPTED");
    assert_eq!(order(&api, "drop", "eve").await, "RATE_LIMIT_EXCEEDED");
    assert_eq!(
        ctl.ok(&["limits", "get", "--product", "drop"])["user"],
        "1/m:1"
    );

    // Violations per hour: the refused user limit and the block are there.
    let hours = ctl.ok(&["violations", "--product", "drop", "--hours", "2"]);
    let counts = &hours[1]["counts"];
    assert!(counts["rate_user"].as_u64() >= Some(1), "{hours}");
    assert!(counts["blocked_user"].as_u64() >= Some(1), "{hours}");

    // Suspicious: one device for four users.
    ctl.ok(&["limits", "set", "--product", "drop", "--user", "off"]);
    for u in ["fay", "gus", "hal", "ivy"] {
        let a = api
            .client
            .place_from(&Client::body("drop", u, 1), &key(), "one-phone")
            .await?;
        assert_eq!(a.code(), "ACCEPTED");
    }
    let settled = ctl.run(&["reconcile", "--product", "drop", "--wait", "30s"]);
    assert_eq!(settled.0, 0, "consistent once drained: {}", settled.1);
    assert_eq!(settled.1["verdict"], "consistent");
    let s = ctl.ok(&[
        "orders",
        "suspicious",
        "--product",
        "drop",
        "--since",
        "1h",
        "--min-users",
        "3",
    ]);
    let devices = s["shared_devices"].as_array().cloned().unwrap_or_default();
    assert_eq!(devices.len(), 1, "{s}");
    assert_eq!(devices[0][1], 4, "four users on one device: {s}");
    assert!(
        !s.to_string().contains("one-phone"),
        "only pseudonyms leave the database"
    );
    let networks = s["shared_networks"].as_array().cloned().unwrap_or_default();
    assert!(
        !networks.is_empty() && !s.to_string().contains("127.0.0.1"),
        "{s}"
    );

    // User erase: personal data gone, totals unchanged.
    let pg = stack.pg().await?;
    let sold_before: i32 = pg
        .query_one("SELECT sold FROM sales WHERE product_id = 'drop'", &[])
        .await?
        .get(0);
    let (code, _) = ctl.run(&["user", "erase", "--user", "gus"]);
    assert_eq!(code, 2, "an erase needs --yes without a terminal");
    let erased = ctl.ok(&["--yes", "user", "erase", "--user", "gus"]);
    assert_eq!(erased["orders"], 1);
    let sold_after: i32 = pg
        .query_one("SELECT sold FROM sales WHERE product_id = 'drop'", &[])
        .await?
        .get(0);
    assert_eq!(sold_after, sold_before, "sale totals unchanged");
    let left: i64 = pg
        .query_one("SELECT count(*) FROM orders WHERE user_id = 'gus'", &[])
        .await?
        .get(0);
    assert_eq!(left, 0);
    let pseudonym = erased["pseudonym"].as_str().unwrap_or_default().to_owned();
    let row = pg
        .query_one(
            "SELECT device_hash, ip_hash FROM orders WHERE user_id = $1",
            &[&pseudonym],
        )
        .await?;
    assert_eq!(
        (
            row.get::<_, Option<String>>(0),
            row.get::<_, Option<String>>(1)
        ),
        (None, None)
    );
    let mut redis = stack.redis().await?;
    let bought: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(stack.keys.sale(&"drop".parse()?).bought())
        .query_async(&mut redis)
        .await?;
    assert!(
        !bought.contains_key("gus") && bought.get(&pseudonym) == Some(&1),
        "{bought:?}"
    );
    let settled = ctl.run(&["reconcile", "--product", "drop"]);
    assert_eq!(
        settled.0, 0,
        "still consistent after the erase: {}",
        settled.1
    );

    // Reconcile notices a unit taken in Redis that no order explains.
    redis::cmd("HINCRBY")
        .arg(stack.keys.sale(&"drop".parse()?).sale())
        .arg(sale_field::REMAINING)
        .arg(-1)
        .exec_async(&mut redis)
        .await?;
    let (code, drift) = ctl.run(&["reconcile", "--product", "drop", "--wait", "1s"]);
    assert_eq!(code, 3, "{drift}");
    assert_eq!(drift["verdict"], "drift");
    assert_eq!(drift["drift"], 1);

    // Every change is in the audit trail, with its operator; the erased user is not.
    let log = ctl.ok(&["audit-log", "--limit", "50"]);
    let entries = log.as_array().cloned().unwrap_or_default();
    let commands: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["command"].as_str())
        .collect();
    for c in [
        "sale open",
        "sale halt",
        "sale resume",
        "block",
        "limits set",
        "user erase",
    ] {
        assert!(commands.contains(&c), "{c} missing from {commands:?}");
    }
    assert!(entries.iter().all(|e| e["operator"] == "test-op"));
    assert!(
        entries
            .iter()
            .any(|e| e["command"] == "sale halt" && e["outcome"] == "error"),
        "refused attempts are recorded"
    );
    assert!(
        !log.to_string().contains("\"gus\""),
        "erased from the trail too"
    );
    worker.stop().await?;
    api.stop().await
}

/// The URLs may come from files (`DATABASE_URL_FILE`, `REDIS_URL_FILE`: Docker and
/// Kubernetes secrets); a file next to the setting itself is refused (exit 2).
#[tokio::test]
async fn urls_from_files() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let dir = std::env::temp_dir().join(format!("flashctl-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (db, redis) = (dir.join("database-url"), dir.join("redis-url"));
    std::fs::write(&db, format!("{}\n", stack.db.url))?;
    std::fs::write(&redis, format!("{}\n", stack.env.redis_url))?;
    let flashctl = |both: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashctl"));
        cmd.args(["--json", "sale", "status", "--product", "nothing-here"])
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("REDIS_CLUSTER_NODES")
            .env("DATABASE_URL_FILE", &db)
            .env("REDIS_URL_FILE", &redis)
            .env("REDIS_NAMESPACE", stack.keys.namespace());
        if both {
            cmd.env("DATABASE_URL", &stack.db.url);
        }
        cmd.output().expect("flashctl runs")
    };
    let read = flashctl(false);
    let said = String::from_utf8_lossy(&read.stderr).into_owned();
    assert_eq!(
        read.status.code(),
        Some(4),
        "connected, no such sale: {said}"
    );
    let both = flashctl(true);
    let said = String::from_utf8_lossy(&both.stderr).into_owned();
    assert_eq!(both.status.code(), Some(2), "{said}");
    assert!(
        said.contains("DATABASE_URL and DATABASE_URL_FILE are both set"),
        "{said}"
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
